#!/usr/bin/env bash
# Serves the same 1 GiB file from bay's httpd-file-server and from nginx
# (sendfile on) over loopback and compares wrk throughput, 1 and 32
# connections, with bay on io_uring and on epoll.
#
#   bench/scripts/httpd-vs-nginx.sh [DURATION_SECONDS]
#
# Needs nginx (Debian nginx-light) and wrk. Prints a Markdown table.
set -euo pipefail

duration=${1:-15}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/bay-httpd-vs-nginx.XXXXXX)
nginx_port=18180
bay_port=18181
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "building httpd-file-server (release)..." >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p bay-bench --bin httpd-file-server
server="$root/target/release/httpd-file-server"

# nginx workers drop to an unprivileged user: let them read the file.
chmod 755 "$work"
file="$work/blob.bin"
# Random bytes: a sparse or constant file would flatter both servers.
head -c 1G /dev/urandom >"$file"
chmod 644 "$file"

mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/tmp;
    proxy_temp_path $work/nginx/tmp;
    fastcgi_temp_path $work/nginx/tmp;
    uwsgi_temp_path $work/nginx/tmp;
    scgi_temp_path $work/nginx/tmp;
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            root $work;
            try_files /blob.bin =404;
            default_type application/octet-stream;
        }
    }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)

wait_port() {
    for _ in $(seq 100); do
        curl -s -o /dev/null -r 0-0 "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1" >&2
    return 1
}

# Prints throughput in MiB/s for one wrk run.
run_wrk() {
    local port=$1 conns=$2 threads=2 out
    [ "$conns" -lt 2 ] && threads=1
    out=$(wrk -t"$threads" -c"$conns" -d"${duration}s" --timeout 30s "http://127.0.0.1:$port/blob")
    echo "$out" >>"$work/wrk.log"
    if echo "$out" | grep -q "Non-2xx\|Socket errors"; then
        echo "wrk reported errors against port $port:" >&2
        echo "$out" >&2
    fi
    echo "$out" | awk '/^Transfer\/sec/ {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v);
        f = (u == "GB") ? 1024 : (u == "MB") ? 1 : (u == "KB") ? 1/1024 : 1/1048576;
        printf "%.0f", v * f }'
}

wait_port $nginx_port
# Warm the page cache so both servers read from memory.
cat "$file" >/dev/null

declare -A nginx_rate
for c in 1 32; do
    nginx_rate[$c]=$(run_wrk $nginx_port $c)
done

printf '| server | driver | connections | MiB/s | bay/nginx |\n|---|---|---|---|---|\n'
for c in 1 32; do
    printf '| nginx | epoll | %s | %s | |\n' "$c" "${nginx_rate[$c]}"
done
for driver in uring legacy; do
    "$server" --listen "127.0.0.1:$bay_port" --file "$file" --driver "$driver" >"$work/bay-$driver.log" 2>&1 &
    bay=$!
    pids+=($bay)
    wait_port $bay_port
    for c in 1 32; do
        rate=$(run_wrk $bay_port $c)
        ratio=$(awk -v a="$rate" -v b="${nginx_rate[$c]}" 'BEGIN { printf "%.2f", a / b }')
        printf '| bay | %s | %s | %s | %s |\n' "$driver" "$c" "$rate" "$ratio"
    done
    kill -TERM $bay
    wait $bay || true
done
