#!/usr/bin/env bash
# Moves the same 1 GiB blob over loopback peer to peer and compares:
#   - bay -> bay: `bay-peer seed` and `bay-peer get` (release build);
#   - libtorrent -> libtorrent: tests/py/lt_peer.py seed and get
#     (python3-libtorrent 2.0, high_performance_seed settings, TCP only,
#     no encryption);
#   - one bay seed -> 4 bay leechers started together (each also dials the
#     leechers started before it);
# and sets bay's rate against one core's SHA-256 throughput
# (`openssl speed -evp sha256 -bytes 16384`): a leecher must hash every
# byte at least once, so that is the ceiling of a single-threaded
# verifier. Each leecher's CPU seconds (user + system) are counted too.
#
#   bench/scripts/p2p-compare.sh [SIZE [ROUNDS]]   (SIZE for head -c, default 1G;
#                                                  ROUNDS default 3)
#   ENCRYPT=1 bench/scripts/p2p-compare.sh ...     also bay -> bay in keyed mode
#                                                  with encrypted links, each round
#
# bay -> bay and libtorrent -> libtorrent alternate for ROUNDS rounds, so
# that load from other programs on the machine falls on both alike; the
# table gives the best and the median round of each. MB = 10^6 bytes.
# Prints a Markdown table on stdout, progress on stderr.
set -euo pipefail
shopt -s inherit_errexit

size=${1:-1G}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/bay-p2p-compare.XXXXXX)
py=/usr/bin/python3
lt="$root/tests/py/lt_peer.py"
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

log() { echo "$*" >&2; }

# Waits (with a deadline) for a line matching $2 in file $1.
wait_line() {
    local file=$1 pattern=$2 i
    for ((i = 0; i < 600; i++)); do
        if grep -q "$pattern" "$file" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "timed out waiting for '$pattern' in $file"; cat "$file" >&2; return 1
}

field() { sed -n "s|.*[[:space:]]$1=\([^[:space:]]*\).*|\1|p" | head -1; }

log "building bay-peer (release)..."
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p bay-bench --bin bay-peer
peer="$root/target/release/bay-peer"

mkdir -p "$work/src"
file="$work/src/blob"
# Random bytes: nothing compresses or dedups.
head -c "$size" /dev/urandom >"$file"
bytes=$(stat -c %s "$file")
log "making a v2 torrent with libtorrent (1 MiB pieces)..."
$py "$root/tests/py/lt_driver.py" make "$file" "$work/blob.torrent" 1048576 >/dev/null

# ---- seeds: bay and libtorrent, both kept running for every round
"$peer" seed --torrent "$work/blob.torrent" --file "$file" --listen 127.0.0.1:0 \
    --root "$work/seed-root" >"$work/seed.out" 2>"$work/seed.err" &
pids+=($!)
bay_seed_pid=$!
wait_line "$work/seed.out" "^seeding"
seed_addr=$(field listen <"$work/seed.out")
digest=$(field digest <"$work/seed.out")

encrypt=${ENCRYPT:-0}
if [ "$encrypt" = 1 ]; then
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/fleet.key"
    keyed=(--fleet-key-file "$work/fleet.key" --encrypt)
    "$peer" seed --torrent "$work/blob.torrent" --file "$file" --listen 127.0.0.1:0 \
        --root "$work/tls-seed-root" "${keyed[@]}" >"$work/tls-seed.out" 2>"$work/tls-seed.err" &
    pids+=($!)
    wait_line "$work/tls-seed.out" "^seeding"
    tls_seed_addr=$(field listen <"$work/tls-seed.out")
fi

# lt_peer seed stops when its stdin closes: keep a pipe open on fd 3.
mkfifo "$work/lt.stdin"
$py "$lt" --fast --timeout 3600 seed "$work/blob.torrent" "$work/src" \
    <"$work/lt.stdin" >"$work/lt-seed.out" 2>"$work/lt-seed.err" &
pids+=($!)
exec 3>"$work/lt.stdin"
wait_line "$work/lt-seed.out" '"port"'
lt_port=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['port'])" "$work/lt-seed.out")

# Runs a command with stdout to $1 and stderr to $2, and prints the CPU
# seconds (user + system) it took, from bash's `times` in a subshell
# whose only child it is.
cpu_of() {
    local out=$1 err=$2
    shift 2
    ( "$@" >"$out" 2>"$err"; times ) | tail -1 | python3 -c "
import re, sys
parts = re.findall(r'(\d+)m([\d.]+)s', sys.stdin.read())
print(f'{sum(int(m) * 60 + float(s) for m, s in parts):.2f}')"
}

# Each round prints "seconds cpu-seconds".
bay_round() {
    local cpu
    cpu=$(cpu_of "$work/get.out" "$work/get.err" "$peer" get --torrent "$work/blob.torrent" \
        --digest "$digest" --out "$work/out.bay" --peer "$seed_addr" --root "$work/get-root")
    cmp "$file" "$work/out.bay"
    rm -rf "$work/get-root" "$work/out.bay"
    echo "$(field seconds <"$work/get.out") $cpu"
}

bay_tls_round() {
    local cpu
    cpu=$(cpu_of "$work/tls-get.out" "$work/tls-get.err" "$peer" get --torrent "$work/blob.torrent" \
        --digest "$digest" --out "$work/out.tls" --peer "$tls_seed_addr" --root "$work/tls-get-root" \
        "${keyed[@]}")
    cmp "$file" "$work/out.tls"
    rm -rf "$work/tls-get-root" "$work/out.tls"
    echo "$(field seconds <"$work/tls-get.out") $cpu"
}

lt_round() {
    local cpu
    cpu=$(cpu_of "$work/lt-get.out" "$work/lt-get.err" $py "$lt" --fast --timeout 900 get \
        "$work/blob.torrent" "$work/lt-dl" "127.0.0.1:$lt_port")
    cmp "$file" "$work/lt-dl/blob"
    rm -rf "$work/lt-dl"
    echo "$(python3 -c "import json,sys; print(f\"{json.load(open(sys.argv[1]))['seconds']:.3f}\")" "$work/lt-get.out") $cpu"
}

bay_secs=()
lt_secs=()
bay_cpu=()
lt_cpu=()
tls_secs=()
tls_cpu=()
for ((r = 1; r <= rounds; r++)); do
    log "round $r: bay -> bay..."
    read -r secs cpu <<<"$(bay_round)"
    bay_secs+=("$secs")
    bay_cpu+=("$cpu")
    log "round $r: libtorrent -> libtorrent..."
    read -r secs cpu <<<"$(lt_round)"
    lt_secs+=("$secs")
    lt_cpu+=("$cpu")
    if [ "$encrypt" = 1 ]; then
        log "round $r: bay -> bay, keyed, encrypted links..."
        read -r secs cpu <<<"$(bay_tls_round)"
        tls_secs+=("$secs")
        tls_cpu+=("$cpu")
    fi
done
exec 3>&-

# ---- one bay seed -> 4 bay leechers
log "bay seed -> 4 bay leechers..."
base_port=$((20000 + RANDOM % 20000))
swarm_pids=()
for i in 0 1 2 3; do
    args=(--peer "$seed_addr")
    for ((j = 0; j < i; j++)); do args+=(--peer "127.0.0.1:$((base_port + j))"); done
    "$peer" get --torrent "$work/blob.torrent" --digest "$digest" --out "$work/out.$i" \
        --listen "127.0.0.1:$((base_port + i))" --root "$work/root.$i" "${args[@]}" \
        >"$work/swarm.$i.out" 2>"$work/swarm.$i.err" &
    swarm_pids+=($!)
done
swarm_start=$(date +%s.%N)
for p in "${swarm_pids[@]}"; do wait "$p"; done
swarm_end=$(date +%s.%N)
for i in 0 1 2 3; do
    cmp "$file" "$work/out.$i"
    rm -rf "$work/root.$i" "$work/out.$i"
done
swarm_wall=$(python3 -c "print(f'{$swarm_end - $swarm_start:.3f}')")
load=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- one core's SHA-256
sha_kbps=$(openssl speed -evp sha256 -bytes 16384 -seconds 3 2>/dev/null | awk '/^sha256/ {v=$NF} END {sub(/k$/, "", v); print v}')
sha_mbps=$(python3 -c "print(f'{$sha_kbps * 1000 / 1e6:.1f}')")

# Best and median of a list of seconds, as "seconds MB/s".
stats() {
    python3 - "$bytes" "$@" <<'PY'
import statistics, sys
size = int(sys.argv[1]); secs = sorted(float(x) for x in sys.argv[2:])
best, med = secs[0], statistics.median(secs)
print(f"{best:.3f} {size / best / 1e6:.1f} {med:.3f} {size / med / 1e6:.1f}")
PY
}
read -r bay_best bay_best_mbps bay_med bay_med_mbps <<<"$(stats "${bay_secs[@]}")"
read -r lt_best lt_best_mbps lt_med lt_med_mbps <<<"$(stats "${lt_secs[@]}")"
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

echo "| run | best s | best MB/s | median s | median MB/s |"
echo "|---|---|---|---|---|"
echo "| bay -> bay ($rounds rounds: ${bay_secs[*]} s) | $bay_best | $bay_best_mbps | $bay_med | $bay_med_mbps |"
echo "| libtorrent -> libtorrent ($rounds rounds: ${lt_secs[*]} s) | $lt_best | $lt_best_mbps | $lt_med | $lt_med_mbps |"
if [ "$encrypt" = 1 ]; then
    read -r tls_best tls_best_mbps tls_med tls_med_mbps <<<"$(stats "${tls_secs[@]}")"
    echo "| bay -> bay, encrypted ($rounds rounds: ${tls_secs[*]} s) | $tls_best | $tls_best_mbps | $tls_med | $tls_med_mbps |"
fi
for i in 0 1 2 3; do
    echo "| bay seed -> 4 leechers: leecher $i | $(field seconds <"$work/swarm.$i.out") | $(field 'MB/s' <"$work/swarm.$i.out") | | |"
done
echo "| bay seed -> 4 leechers: 4 x size / wall time | $swarm_wall | $(python3 -c "print(f'{4 * $bytes / $swarm_wall / 1e6:.1f}')") | | |"
echo "| one core's SHA-256 (openssl, 16 KiB blocks) | | $sha_mbps | | |"
echo
echo "bay / libtorrent (medians): $(ratio "$bay_med_mbps" "$lt_med_mbps")x (goal >= 5)"
echo "bay / one core's SHA-256 (median): $(ratio "$bay_med_mbps" "$sha_mbps") (goal >= 0.7)"
per_gib() {
    python3 - "$bytes" "$@" <<'PY'
import statistics, sys
size = int(sys.argv[1]); cpu = [float(x) for x in sys.argv[2:]]
print(f"{statistics.median(cpu) * 2**30 / size:.2f}")
PY
}
if [ "$encrypt" = 1 ]; then
    echo "encrypted leecher CPU-s per GiB (median; rounds: ${tls_cpu[*]}): $(per_gib "${tls_cpu[@]}")"
fi
echo "leecher CPU-s per GiB (median; rounds: bay ${bay_cpu[*]}, libtorrent ${lt_cpu[*]}): bay $(per_gib "${bay_cpu[@]}"), libtorrent $(per_gib "${lt_cpu[@]}") (goal for bay <= 1.8)"
echo "size: $bytes bytes; $(nproc) cores; load average at the 4-leecher run: $load"
