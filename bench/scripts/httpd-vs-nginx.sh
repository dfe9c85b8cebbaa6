#!/usr/bin/env bash
# Serves the same 1 GiB file from bay's httpd-file-server and from nginx
# (sendfile on) over loopback and compares wrk throughput, 1 and 32
# connections, with bay on io_uring and on epoll.
#
#   bench/scripts/httpd-vs-nginx.sh [DURATION_SECONDS] [ROUNDS]
#
# The three servers run side by side and the runs are interleaved round by
# round, each figure being the median of its rounds, so that load from
# other processes drifting during the run hits every server alike.
# Needs nginx (Debian nginx-light) and wrk. Prints a Markdown table.
set -euo pipefail

duration=${1:-15}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/bay-httpd-vs-nginx.XXXXXX)
nginx_port=18180
uring_port=18181
legacy_port=18182
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

for driver in uring legacy; do
    port_var=${driver}_port
    "$server" --listen "127.0.0.1:${!port_var}" --file "$file" --driver "$driver" >"$work/bay-$driver.log" 2>&1 &
    pids+=($!)
done
for port in $nginx_port $uring_port $legacy_port; do wait_port $port; done
# Warm the page cache so every server reads from memory.
cat "$file" >/dev/null

declare -A runs
for round in $(seq "$rounds"); do
    for c in 1 32; do
        for name in nginx uring legacy; do
            port_var=${name}_port
            runs[$name.$c]+="$(run_wrk "${!port_var}" "$c") "
        done
    done
    echo "round $round of $rounds done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '| server | driver | connections | MiB/s (median of %s) | all runs | bay/nginx |\n|---|---|---|---|---|---|\n' "$rounds"
for c in 1 32; do
    base=$(echo "${runs[nginx.$c]}" | median)
    printf '| nginx | epoll | %s | %s | %s | |\n' "$c" "$base" "${runs[nginx.$c]}"
    for driver in uring legacy; do
        rate=$(echo "${runs[$driver.$c]}" | median)
        ratio=$(awk -v a="$rate" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
        printf '| bay | %s | %s | %s | %s | %s |\n' "$driver" "$c" "$rate" "${runs[$driver.$c]}" "$ratio"
    done
done
