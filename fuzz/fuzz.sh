#!/usr/bin/env bash
# Fuzz lgsp's decoders, adapter mappings and configuration loader with cargo fuzz
# (libFuzzer, AddressSanitizer).
#
#   fuzz/fuzz.sh smoke [SECONDS]     every target for SECONDS (default 10): what CI runs
#   fuzz/fuzz.sh run TARGET SECONDS  one target; its corpus grows in fuzz/corpus/TARGET
#   fuzz/fuzz.sh list                the targets
#
# cargo fuzz needs unstable compiler flags (-Zsanitizer); RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them. A crash is written to fuzz/artifacts/TARGET/ and the
# script exits non-zero; `cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...` replays it.
set -euo pipefail
cd "$(dirname "$0")"

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lgsp-target}/fuzz"
TARGETS=(decode_xml decode_json map_bizreg map_tax map_finance map_emis config)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install --locked cargo-fuzz --version 0.13.2
fi

# Seed a target's corpus from the repository's own files (samples, configurations).
seed() {
  local target=$1 dir=corpus/$1
  mkdir -p "$dir"
  case $target in
    decode_xml) cp -n ../adapters/*/samples/*.xml "$dir"/ ;;
    decode_json) cp -n ../adapters/*/samples/*.json "$dir"/ ;;
    config) for f in ../config/*.yaml ../deploy/compose/*.yaml; do cp -n "$f" "$dir/$(basename "$f")"; done ;;
    map_*)
      # The first byte picks the adapter's message type; the rest is the body.
      local adapter=${target#map_}
      for f in ../adapters/"$adapter"/samples/*.*; do
        [ -f "$f" ] || continue
        for i in 0 1 2 3 4 5 6 7; do
          local out="$dir/$i-$(basename "$f")"
          [ -e "$out" ] || { printf "\\x0$i" >"$out"; cat "$f" >>"$out"; }
        done
      done ;;
  esac
}

run() {
  local target=$1 seconds=$2
  seed "$target"
  cargo fuzz run -O "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144 -timeout=10 \
    -print_final_stats=1
}

case "${1:-}" in
  list) printf '%s\n' "${TARGETS[@]}" ;;
  smoke)
    cargo fuzz build -O
    for t in "${TARGETS[@]}"; do
      echo "== fuzz $t for ${2:-10} s"
      run "$t" "${2:-10}"
    done ;;
  run) run "$2" "$3" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
