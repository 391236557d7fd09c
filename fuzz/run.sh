#!/usr/bin/env bash
# Builds the libFuzzer targets on stable Rust and runs each for a while.
#
#   fuzz/run.sh [seconds-per-target] [target...]
#
# Default: 20 seconds for each of all targets. Each target runs on a fresh copy of its seeds
# (fuzz/seeds/<target>/ -> fuzz/corpus/<target>/, which keeps what the run found); a crash
# is written to fuzz/artifacts/<target>/. Prints one line per target and exits non-zero if
# any target crashed.
#
# Environment: FUZZ_JOBS (cargo build jobs, default 1), FUZZ_ARGS (more libFuzzer flags),
# FUZZ_KEEP_CORPUS=1 (grow fuzz/corpus/<target>/ across runs instead of starting afresh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

all_targets=(credentials params tokens paths config)
secs="${1:-20}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [[ "$secs" -lt 1 ]]; then
  echo "usage: fuzz/run.sh [seconds-per-target] [target...]  (targets: ${all_targets[*]})" >&2
  exit 2
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=("${all_targets[@]}"); fi
for t in "${targets[@]}"; do
  if [[ ! -f "fuzz_targets/$t.rs" ]]; then
    echo "unknown target: $t (targets: ${all_targets[*]})" >&2
    exit 2
  fi
done

if ! command -v c++ >/dev/null 2>&1; then
  echo "fuzz/run.sh: libfuzzer-sys builds libFuzzer from C++: install a C++ compiler" \
    "(Debian: apt-get install build-essential)" >&2
  exit 2
fi

# SanitizerCoverage instrumentation as `cargo fuzz build -s none` sets it, all stable flags:
# no sanitizer (that needs nightly), but libFuzzer gets edge counters and comparison traces.
# Passing --target keeps the flags off build scripts and proc macros.
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="--cfg fuzzing \
-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions \
-Coverflow-checks \
-Cforce-frame-pointers=yes"
export CARGO_TARGET_DIR="$here/target"
build_start=$(date +%s)
bin_args=()
for t in "${targets[@]}"; do bin_args+=(--bin "$t"); done
cargo build --release --locked --target "$host" -j "${FUZZ_JOBS:-1}" "${bin_args[@]}"
echo "build: $(( $(date +%s) - build_start ))s"

failed=0
for t in "${targets[@]}"; do
  corpus="$here/corpus/$t"
  artifacts="$here/artifacts/$t"
  if [[ "${FUZZ_KEEP_CORPUS:-0}" != 1 ]]; then rm -rf "$corpus"; fi
  mkdir -p "$corpus" "$artifacts"
  cp -r "$here/seeds/$t/." "$corpus/"
  dict=()
  if [[ -f "$here/dicts/$t.dict" ]]; then dict=("-dict=$here/dicts/$t.dict"); fi
  log="$artifacts/last-run.log"
  before="$(ls -1 "$artifacts" | grep -E '^(crash|leak|timeout|oom)-' || true)"
  set +e
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags.
  "$CARGO_TARGET_DIR/$host/release/$t" "$corpus" "${dict[@]}" \
    -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} >"$log" 2>&1
  rc=$?
  set -e
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
  after="$(ls -1 "$artifacts" | grep -E '^(crash|leak|timeout|oom)-' || true)"
  new="$(comm -13 <(echo "$before") <(echo "$after") | sed "s|^|$artifacts/|" | paste -sd' ' -)"
  if [[ $rc -ne 0 || -n "$new" ]]; then
    failed=1
    printf '%-12s execs=%-10s crashes=%s (exit %d; log %s)\n' \
      "$t" "${execs:-?}" "${new:-none-written}" "$rc" "$log"
    grep -m3 -E "panicked at|ERROR: libFuzzer|SUMMARY" "$log" | sed 's/^/    /' || true
  else
    printf '%-12s execs=%-10s crashes=0\n' "$t" "${execs:-?}"
  fi
done
exit "$failed"
