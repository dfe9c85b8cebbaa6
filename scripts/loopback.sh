# Sourced by the demo and the loopback benchmarks: a work folder removed
# on exit with every started process, free ports, and the real registry.
#
#   source scripts/loopback.sh; loopback_init bay-demo
#   start_registry info        # sets $registry (127.0.0.1:PORT), logs to $work/registry.log

loopback_init() {
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  trap loopback_cleanup EXIT
}

loopback_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

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

# Starts docker-registry with log level $1 (text format: one line per
# request with http.response.written, which the demo counts).
start_registry() {
  local rport
  rport=$(free_port)
  mkdir -p "$work/registry"
  cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: $1
  formatter: text
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$rport
YML
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  pids+=($!)
  wait_port "$rport"
  registry="127.0.0.1:$rport"
}
