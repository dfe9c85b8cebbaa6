#!/usr/bin/env bash
# A long-lived host: BLOBS distinct blobs pulled one after another through
# one bay-proxy (with a bay-tracker as origin), memory, file descriptors,
# threads and peer connections of both processes sampled every ROUND
# blobs; then REST_MIN minutes at rest, counting the requests the tracker
# gets a minute (its access log: one line per request).
#
#   bench/scripts/soak.sh      # BLOBS=1000 ROUND=100 BLOB_KIB=64 REST_MIN=8
#
# At rest means after every blob's own announcing (2 min after it
# completed) has ended, so the default rest is 8 minutes and the rate is
# that of its last WINDOW_MIN=5. SOAK_JSON=path keeps the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=target/release
[ -x "$bin/bay-proxy" ] && [ -x "$bin/bay-tracker" ] ||
  cargo build --release -p bay-tracker -p bay-proxy 2>&1 | tail -1

source scripts/loopback.sh
loopback_init bay-soak

echo "== registry, bay-tracker, bay-proxy"
start_registry warn
tport=$(free_port)
RUST_LOG=warn,bay::access=info "$bin/bay-tracker" serve --listen "127.0.0.1:$tport" \
  --peer-listen 127.0.0.1:0 --root "$work/tracker" \
  --allow-registry "$registry" --insecure-registry "$registry" \
  >"$work/tracker.log" 2>&1 &
tracker=$!
pids+=($tracker)
pport=$(free_port)
RUST_LOG=warn "$bin/bay-proxy" serve --listen "127.0.0.1:$pport" --peer-listen 127.0.0.1:0 \
  --root "$work/proxy" --tracker "http://127.0.0.1:$tport" --upstream "$registry" \
  --allow-registry "$registry" --insecure-registry "$registry" --access-log off \
  >"$work/proxy.log" 2>&1 &
proxy=$!
pids+=($proxy)
wait_port "$tport"
wait_port "$pport"

python3 bench/scripts/soak.py "$registry" "127.0.0.1:$pport" "127.0.0.1:$tport" \
  "$proxy" "$tracker" "$work/tracker.log"
