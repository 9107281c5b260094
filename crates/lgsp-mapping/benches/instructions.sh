#!/usr/bin/env bash
# Instructions per message of the mapping engine, counted by callgrind: repeatable for the
# same binary and inputs whatever else the machine is doing, so progress shows on a noisy
# machine where timings do not.
#
#   crates/lgsp-mapping/benches/instructions.sh [ADAPTER...]
#
# For every sample a test case of the adapter names (the first case of each file directly
# under samples/, with its message type), it prints instructions per message of
#   raw     quick-xml's bare event loop over the bytes (XML only): the parser's floor,
#   decode  the whole-tree decoder,
#   map     `map_message` as the router runs it (projection, fields, Rust steps, schema
#           validation, JSON encoding),
# each the count inside `map_loop::run` over N messages divided by N, after one message
# outside it (examples/map_loop.rs; jemalloc, as the `lgsp` binary allocates).
# N defaults to 50 (LGSP_BENCH_N). Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/../../.."

n="${LGSP_BENCH_N:-50}"
target="${CARGO_TARGET_DIR:-target}"
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
cargo build -q --release -p lgsp-mapping --example map_loop
bin="$target/release/examples/map_loop"

# Instructions per message of one run: ADAPTER FILE TYPE MODE.
count() {
  local out
  out=$(mktemp)
  if valgrind --tool=callgrind --toggle-collect='map_loop::run' --callgrind-out-file="$out" \
      "$bin" "$1" "$2" "$3" "$4" "$n" >/dev/null 2>&1; then
    awk -v n="$n" '/^summary:/ { printf "%.0f", $2 / n / 1000 }' "$out"
    printf ' k'
  else
    printf 'failed'
  fi
  rm -f "$out"
}

adapters=("$@")
[ ${#adapters[@]} -gt 0 ] || adapters=(bizreg emis finance tax)

printf '| adapter | sample | bytes | type | raw | decode | map | map / raw |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for adapter in "${adapters[@]}"; do
  cases="adapters/$adapter/tests/cases.yaml"
  [ -f "$cases" ] || { echo "no test cases at $cases" >&2; exit 2; }
  # "file type" of the first case of each sample directly under samples/.
  awk '
    /^[[:space:]]+input:/ { input = $2 }
    /^[[:space:]]+type:/ && input != "" {
      if (input ~ /^samples\/[^\/]+$/ && !(input in seen)) { seen[input] = 1; print substr(input, 9), $2 }
      input = ""
    }' "$cases" |
  while read -r file type; do
    bytes=$(wc -c <"adapters/$adapter/samples/$file")
    raw='–'
    if [[ "$file" == *.xml ]]; then raw=$(count "$adapter" "$file" "$type" raw); fi
    decode=$(count "$adapter" "$file" "$type" decode)
    map=$(count "$adapter" "$file" "$type" auto)
    ratio='–'
    if [[ "$raw" == *' k' && "$map" == *' k' ]]; then
      ratio=$(awk -v r="${raw% k}" -v m="${map% k}" 'BEGIN { printf "%.1f", m / r }')
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' \
      "$adapter" "$file" "$bytes" "$type" "$raw" "$decode" "$map" "$ratio"
  done
done
