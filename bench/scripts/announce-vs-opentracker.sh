#!/usr/bin/env bash
# Tracker announce throughput: `bay-tracker serve` (open tracker, 2 HTTP
# threads) against Debian's opentracker (whitelist of the same hashes),
# same load from wrk: keep-alive, 1000 info hashes, random peer ids and
# ports, compact=1. Run as root (opentracker chroots and drops to nobody).
#
#   bench/scripts/announce-vs-opentracker.sh     # DURATION=10s CONNS=50 WRK_THREADS=2
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
WRK_THREADS=${WRK_THREADS:-2}
HASHES=${HASHES:-1000}
bin=target/release
[ -x "$bin/bay-tracker" ] || cargo build --release -p bay-tracker 2>&1 | tail -1

work=$(mktemp -d /tmp/bay-announce.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# The hashes: hex for opentracker's whitelist, percent-encoded for wrk.
python3 - "$work" "$HASHES" <<'PY'
import os, sys
work, n = sys.argv[1], int(sys.argv[2])
hashes = [os.urandom(20) for _ in range(n)]
with open(f"{work}/whitelist", "w") as f:
    f.writelines(h.hex() + "\n" for h in hashes)
enc = lambda b: "".join(f"%{x:02X}" for x in b)
with open(f"{work}/announce.lua", "w") as f:
    f.write("local hashes = {\n")
    f.writelines(f'  "{enc(h)}",\n' for h in hashes)
    f.write("}\n")
    f.write(r'''
math.randomseed(os.time())
local function peer_id()
  local t = {}
  for i = 1, 20 do t[i] = string.format("%%%02X", math.random(0, 255)) end
  return table.concat(t)
end
request = function()
  local h = hashes[math.random(1, #hashes)]
  local path = "/announce?info_hash=" .. h .. "&peer_id=" .. peer_id() ..
    "&port=" .. math.random(1024, 65535) ..
    "&uploaded=0&downloaded=0&left=1000&compact=1&event=started&numwant=50"
  return wrk.format("GET", path)
end
local bad = 0
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, "peers", 1, true) then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f mean_ms=%.2f errors=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.mean / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write +
      summary.errors.status + summary.errors.timeout,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
''')
PY

run_wrk() { # name url
  timeout 60 wrk -t "$WRK_THREADS" -c "$CONNS" -d "$DURATION" --latency -s "$work/announce.lua" "$2" \
    >"$work/wrk-$1.txt" 2>&1 || true
  # a quick check that a real announce answer comes back
  grep -q "^RESULT" "$work/wrk-$1.txt" || cat "$work/wrk-$1.txt" >&2
  sed -n "s/^RESULT //p" "$work/wrk-$1.txt"
}

echo "== bay-tracker (open tracker, threads = 2)"
tport=$(free_port)
cat >"$work/tracker.toml" <<TOML
listen = "127.0.0.1:$tport"
peer_listen = "127.0.0.1:0"
root = "$work/tracker"
threads = 2
open_tracker = true
TOML
RUST_LOG=warn "$bin/bay-tracker" serve --config "$work/tracker.toml" >"$work/tracker.log" 2>&1 &
pids+=($!)
wait_port "$tport"
bay=$(run_wrk bay "http://127.0.0.1:$tport")
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
echo "   $bay"

echo "== opentracker (Debian build, whitelist, one HTTP thread)"
ot=$(command -v opentracker || echo /usr/sbin/opentracker)
oport=$(free_port)
echo "access.whitelist /whitelist" >"$work/opentracker.conf"
chmod 644 "$work/whitelist" "$work/opentracker.conf"
"$ot" -i 127.0.0.1 -p "$oport" -P "$oport" -f "$work/opentracker.conf" -d "$work" -u nobody \
  >"$work/opentracker.log" 2>&1 &
pids+=($!)
wait_port "$oport"
# The whitelist is loaded by a thread after start: wait until a hash is accepted.
first=$(head -1 "$work/whitelist" | sed 's/../%&/g')
for _ in $(seq 1 100); do
  curl -s "http://127.0.0.1:$oport/announce?info_hash=$first&peer_id=-BB0000-000000000000&port=1&left=0&compact=1" \
    | grep -q peers && break
  sleep 0.1
done
otr=$(run_wrk opentracker "http://127.0.0.1:$oport")
echo "   $otr"

python3 - "$bay" "$otr" <<'PY'
import sys
def parse(s):
    return dict(kv.split("=") for kv in s.split()) if s else {}
rows = [("bay-tracker (2 threads)", parse(sys.argv[1])), ("opentracker (1 thread)", parse(sys.argv[2]))]
print()
print(f"  {'server':<26}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'errors':>8}")
for name, r in rows:
    print(f"  {name:<26}{r.get('rps','-'):>10}{r.get('p50_ms','-'):>9}{r.get('p99_ms','-'):>9}"
          f"{r.get('mean_ms','-'):>9}{r.get('errors','-'):>8}")
b, o = float(rows[0][1].get("rps", 0)), float(rows[1][1].get("rps", 0) or 1)
print(f"\n  bay-tracker / opentracker: {b / o:.2f}x")
for name, r in rows:
    print(f"  {name} errors: " + " ".join(f"{k}={r.get(k, '-')}" for k in ("connect", "read", "write", "status", "timeout")))
PY
