#!/usr/bin/env bash
# bay's main job, on one machine over loopback: a real registry
# (docker-registry), one bay-tracker, three bay-proxies, and three real
# clients (skopeo) pulling the same fresh image at the same moment, each
# through its own proxy. Prints how many layer bytes left the registry
# against how many the clients received.
#
#   sudo scripts/demo.sh            # defaults: 3 proxies, ~96 MiB image
#   PROXIES=5 LAYER_MIB="64 32 8" scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PROXIES=${PROXIES:-3}
LAYER_MIB=${LAYER_MIB:-"64 24 8"}

scripts/install-deps.sh >/dev/null
echo "== building bay (release)"
cargo build --release --locked --bins -p bay-tracker -p bay-proxy 2>&1 | tail -1
bin=target/release

source scripts/loopback.sh
loopback_init bay-demo
[ -n "${BAY_DEMO_KEEP:-}" ] && trap - EXIT

echo "== starting the registry"
start_registry info

echo "== building and pushing a fresh image (layers of $LAYER_MIB MiB)"
python3 scripts/make-image.py "$work/image" $LAYER_MIB
skopeo copy --quiet --preserve-digests --dest-tls-verify=false "oci:$work/image:demo" "docker://$registry/demo/app:1"
image_bytes=$(python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(open(sys.argv[1]))["layers"]))' "$work/image/manifest.json")
pushed_lines=$(wc -l <"$work/registry.log")

echo "== starting bay-tracker and $PROXIES bay-proxies"
tport=$(free_port)
RUST_LOG=warn "$bin/bay-tracker" serve --listen "127.0.0.1:$tport" --peer-listen 127.0.0.1:0 \
  --root "$work/tracker" --allow-registry "$registry" --insecure-registry "$registry" \
  >"$work/tracker.log" 2>&1 &
pids+=($!)
wait_port "$tport"
proxy_ports=()
for i in $(seq 1 "$PROXIES"); do
  p=$(free_port)
  RUST_LOG=warn "$bin/bay-proxy" serve --listen "127.0.0.1:$p" --peer-listen 127.0.0.1:0 \
    --root "$work/proxy$i" --tracker "http://127.0.0.1:$tport" --upstream "$registry" \
    --allow-registry "$registry" --insecure-registry "$registry" \
    >"$work/proxy$i.log" 2>&1 &
  pids+=($!)
  proxy_ports+=("$p")
done
for p in "${proxy_ports[@]}"; do wait_port "$p"; done

echo "== $PROXIES skopeo pulls at once, each through its own proxy"
start=$(date +%s.%N)
pull_pids=()
for i in "${!proxy_ports[@]}"; do
  skopeo copy --quiet --src-tls-verify=false \
    "docker://127.0.0.1:${proxy_ports[$i]}/demo/app:1" "dir:$work/pulled$i" &
  pull_pids+=($!)
done
for p in "${pull_pids[@]}"; do wait "$p"; done
secs=$(python3 -c "import time; print(f'{time.time()-$start:.2f}')")

# Every blob a client received must hash to its name.
for i in "${!proxy_ports[@]}"; do
  for f in "$work/pulled$i"/*; do
    name=$(basename "$f")
    [[ $name =~ ^[0-9a-f]{64}$ ]] || continue
    echo "$name  $f" | sha256sum --check --quiet
  done
done

delivered=0
for p in "${proxy_ports[@]}"; do
  n=$(curl -s "http://127.0.0.1:$p/metrics" | awk '/^bay_proxy_bytes_to_clients_total/ {print $2}')
  delivered=$((delivered + ${n:-0}))
done
# distribution logs one line per request; count blob GET bytes since the push.
from_registry=$(tail -n +"$((pushed_lines + 1))" "$work/registry.log" \
  | awk '/response completed/ && /http.request.method=GET/ && /\/blobs\/sha256:/ {
           if (match($0, /http.response.written=[0-9]+/)) s += substr($0, RSTART + 22, RLENGTH - 22)
         } END { print s + 0 }')

python3 - "$PROXIES" "$image_bytes" "$from_registry" "$delivered" "$secs" <<'EOF'
import sys
proxies, image, registry, delivered, secs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
mib = lambda n: f"{n / 2**20:8.1f} MiB"
print()
print(f"  image layers            {mib(image)}")
print(f"  pulled by {proxies} clients      {mib(image * proxies)}  in {secs} s")
print(f"  delivered by bay-proxy  {mib(delivered)}")
print(f"  left the registry       {mib(registry)}  ({registry / image:.2f}x the image, "
      f"{registry / max(delivered, 1):.0%} of what was delivered)")
EOF
