#!/usr/bin/env bash
# The cluster comparison run: N pulling hosts (network namespaces, every
# link shaped with tc), a registry host and a tracker host; cold, warm and
# direct pulls of a fresh image by every host at once. Prints the table,
# writes JSON and a PNG plot of per-host completion times. Needs root.
#
#   sudo bench/scripts/cluster.sh                       # 8 hosts, 200 Mbit/s, 128 MiB
#   sudo bench/scripts/cluster.sh --sweep 2,4,8,16      # time ratio against N
#   sudo bench/scripts/cluster.sh --hosts 4 --image-mib 64 --rate-mbit 100
#
# OUT (default bench/results) receives cluster-<stamp>.json and .png;
# every other flag goes to bay-cluster-bench (see its source for the list).
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${OUT:-bench/results}
stamp=$(date -u +%Y%m%dT%H%M%SZ)

scripts/install-deps.sh >/dev/null
echo "== building bay-proxy, bay-tracker and bay-cluster-bench (release)" >&2
cargo build --release --locked -p bay-proxy -p bay-tracker 2>&1 | tail -1 >&2
cargo build --release --locked -p bay-tests --bin bay-cluster-bench 2>&1 | tail -1 >&2

mkdir -p "$OUT"
json="$OUT/cluster-$stamp.json"
png="$OUT/cluster-$stamp.png"
target/release/bay-cluster-bench --bin-dir target/release --json "$json" "$@"
/usr/bin/python3 bench/scripts/plot-cluster.py "$json" "$png"
/usr/bin/python3 bench/scripts/plot-cluster-links.py "$json" "${png%.png}-links.png"
echo "wrote $json and $png" >&2
