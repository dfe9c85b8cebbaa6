#!/usr/bin/env bash
# Cold time-to-first-byte of a blob GET: through bay-proxy (with a
# bay-tracker as origin) against directly from the registry. Each round
# pushes two fresh single-layer images of LAYER_MIB MiB, one read directly
# and one through the proxy, so neither path finds anything cached.
#
#   bench/scripts/ttfb.sh        # ROUNDS=5 LAYER_MIB=64
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-5}
LAYER_MIB=${LAYER_MIB:-64}
bin=target/release
[ -x "$bin/bay-proxy" ] && [ -x "$bin/bay-tracker" ] ||
  cargo build --release -p bay-tracker -p bay-proxy 2>&1 | tail -1

source scripts/loopback.sh
loopback_init bay-ttfb

echo "== registry, bay-tracker, bay-proxy"
start_registry warn

tport=$(free_port)
RUST_LOG=warn "$bin/bay-tracker" serve --listen "127.0.0.1:$tport" --peer-listen 127.0.0.1:0 \
  --root "$work/tracker" --allow-registry "$registry" --insecure-registry "$registry" \
  >"$work/tracker.log" 2>&1 &
pids+=($!)
pport=$(free_port)
RUST_LOG=warn "$bin/bay-proxy" serve --listen "127.0.0.1:$pport" --peer-listen 127.0.0.1:0 \
  --root "$work/proxy" --tracker "http://127.0.0.1:$tport" --upstream "$registry" \
  --allow-registry "$registry" --insecure-registry "$registry" \
  >"$work/proxy.log" 2>&1 &
pids+=($!)
wait_port "$tport"
wait_port "$pport"

push() { # repo -> prints "digest size" of its one layer as the registry holds it
  rm -rf "$work/image"
  python3 scripts/make-image.py "$work/image" "$LAYER_MIB" >/dev/null
  timeout 120 skopeo copy --quiet --dest-tls-verify=false "oci:$work/image:demo" "docker://$registry/$1:1"
  curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$registry/v2/$1/manifests/1" |
    python3 -c 'import json,sys; l=json.load(sys.stdin)["layers"][0]; print(l["digest"], l["size"])'
}
fetch() { # url size -> prints time_starttransfer, checks the whole blob came
  local out
  out=$(timeout 120 curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_starttransfer} %{time_total}' "$1")
  read -r code got ttfb total <<<"$out"
  if [ "$code" != 200 ] || [ "$got" != "$2" ]; then
    echo "GET $1 answered $code with $got of $2 bytes" >&2
    return 1
  fi
  echo "$ttfb $total"
}

: >"$work/results"
for r in $(seq 1 "$ROUNDS"); do
  read -r d_digest d_size < <(push "bench/direct$r")
  read -r p_digest p_size < <(push "bench/proxied$r")
  sync
  direct=$(fetch "http://$registry/v2/bench/direct$r/blobs/$d_digest" "$d_size")
  proxied=$(fetch "http://127.0.0.1:$pport/v2/bench/proxied$r/blobs/$p_digest" "$p_size")
  echo "   round $r: direct ttfb/total $direct s, via bay-proxy $proxied s"
  echo "$direct $proxied" >>"$work/results"
done

echo "== bay-proxy counters after the run (where its bytes came from)"
curl -s "http://127.0.0.1:$pport/metrics" | grep -v '^#' | grep -E 'bytes|hits|swarm|direct|registry' || true

python3 - "$work/results" "$LAYER_MIB" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
d_ttfb = statistics.median(r[0] for r in rows)
d_total = statistics.median(r[1] for r in rows)
p_ttfb = statistics.median(r[2] for r in rows)
p_total = statistics.median(r[3] for r in rows)
print()
print(f"  cold GET of a fresh {sys.argv[2]} MiB blob, median of {len(rows)} rounds")
print(f"  {'path':<14}{'ttfb ms':>10}{'total ms':>10}")
print(f"  {'direct':<14}{d_ttfb * 1000:>10.1f}{d_total * 1000:>10.1f}")
print(f"  {'bay-proxy':<14}{p_ttfb * 1000:>10.1f}{p_total * 1000:>10.1f}")
ratio = p_ttfb / d_ttfb
print(f"\n  ttfb ratio bay-proxy / direct: {ratio:.2f}x (goal <= 1.5x: {'met' if ratio <= 1.5 else 'missed'})")
PY
