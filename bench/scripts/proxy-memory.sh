#!/usr/bin/env bash
# bay-proxy memory while CLIENTS clients stream one cached blob of
# LAYER_MIB MiB: registry + bay-proxy (no tracker), the blob fetched once
# through the proxy to cache it, then CLIENTS concurrent curl downloads
# to /dev/null while RssAnon of the proxy is sampled every 100 ms.
#
#   bench/scripts/proxy-memory.sh        # CLIENTS=16 LAYER_MIB=1024
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${CLIENTS:-16}
LAYER_MIB=${LAYER_MIB:-1024}
bin=target/release
[ -x "$bin/bay-proxy" ] || cargo build --release -p bay-proxy 2>&1 | tail -1

source scripts/loopback.sh
loopback_init bay-proxymem

echo "== registry"
start_registry warn

echo "== pushing a $LAYER_MIB MiB single-layer image"
python3 scripts/make-image.py "$work/image" "$LAYER_MIB"
timeout 300 skopeo copy --quiet --dest-tls-verify=false "oci:$work/image:demo" "docker://$registry/bench/mem:1"
# skopeo may re-encode layers on push: take the digest the registry holds.
curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://$registry/v2/bench/mem/manifests/1" >"$work/manifest.json"
digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"])' "$work/manifest.json")
size=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["size"])' "$work/manifest.json")
rm -rf "$work/image"

echo "== bay-proxy (upstream $registry, no tracker)"
pport=$(free_port)
RUST_LOG=warn "$bin/bay-proxy" serve --listen "127.0.0.1:$pport" --peer-listen 127.0.0.1:0 \
  --root "$work/proxy" --upstream "$registry" \
  --allow-registry "$registry" --insecure-registry "$registry" \
  >"$work/proxy.log" 2>&1 &
proxy=$!
pids+=($proxy)
wait_port "$pport"
url="http://127.0.0.1:$pport/v2/bench/mem/blobs/$digest"

echo "== first GET (caches the blob)"
got=$(timeout 300 curl -s -o /dev/null -w "%{http_code} %{size_download}" "$url" || true)
got=${got#200 }
[ "$got" = "$size" ] || { echo "first GET returned $got of $size bytes" >&2; curl -si "$url" | head -c 600 >&2; curl -si "http://$registry/v2/bench/mem/blobs/$digest" -o /dev/null -w "registry %{http_code}\n" >&2; tail "$work/proxy.log" >&2; exit 1; }
base_anon=$(awk '/^RssAnon/ {print $2}' "/proc/$proxy/status")

echo "== $CLIENTS concurrent GETs, sampling RssAnon every 100 ms"
: >"$work/samples"
( while kill -0 "$proxy" 2>/dev/null; do
    awk '/^RssAnon/ {print $2}' "/proc/$proxy/status" >>"$work/samples" 2>/dev/null || true
    sleep 0.1
  done ) &
sampler=$!
pids+=($sampler)
start=$(date +%s.%N)
cpids=()
for i in $(seq 1 "$CLIENTS"); do
  timeout 600 curl -sf -o /dev/null -w '%{size_download}\n' "$url" >"$work/client$i" &
  cpids+=($!)
done
fail=0
for p in "${cpids[@]}"; do wait "$p" || fail=$((fail + 1)); done
end=$(date +%s.%N)
kill "$sampler" 2>/dev/null || true
total=$(cat "$work"/client* | python3 -c 'import sys; print(sum(int(l) for l in sys.stdin if l.strip()))')

python3 - "$CLIENTS" "$size" "$total" "$start" "$end" "$base_anon" "$fail" "$work/samples" <<'PY'
import sys
clients, size, total = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
secs = float(sys.argv[5]) - float(sys.argv[4])
base, fail = int(sys.argv[6]), int(sys.argv[7])
samples = [int(l) for l in open(sys.argv[8]) if l.strip()]
peak = max(samples) if samples else 0
print()
print(f"  blob                      {size / 2**20:10.1f} MiB")
print(f"  clients                   {clients:10d}  ({fail} failed)")
print(f"  delivered                 {total / 2**20:10.1f} MiB  (expected {clients * size / 2**20:.1f})")
print(f"  time                      {secs:10.2f} s")
print(f"  total throughput          {total / secs / 2**20:10.1f} MiB/s")
print(f"  RssAnon before            {base / 1024:10.1f} MiB")
print(f"  RssAnon peak ({len(samples)} samples) {peak / 1024:8.1f} MiB  (goal < 64 MiB: {'met' if peak < 64 * 1024 else 'missed'})")
PY
