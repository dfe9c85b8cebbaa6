#!/usr/bin/env bash
# Runs every fuzz target for a while: `scripts/fuzz.sh SECONDS [TARGET...]`.
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP lets this stable
# toolchain build them. Crashes are left in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  # Committed seeds: hostile inputs found by hand, kept in every run.
  if [ -d "seeds/$t" ]; then cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true; fi
  echo "-- $t (${seconds}s)"
  log=$(mktemp)
  status=0
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY)" "$log" || true
  if [ "$status" != 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed (exit $status): see fuzz/artifacts/$t" >&2
    exit 1
  fi
  rm -f "$log"
done
