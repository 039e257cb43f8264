#!/usr/bin/env bash
# Builds tape's libFuzzer harnesses (tests/fuzz, clang + ASan + UBSan) and, for
# each one: replays every committed corpus and regression file, then fuzzes for
# a bounded time from a scratch copy of the corpus. Any crash, sanitizer report,
# leak, timeout or out-of-memory fails that harness; the input is kept in
# BUILD/fuzz-artifacts/<name>/ and dumped here. Called by tools/test.sh; runs
# alone too. Ends with "tests: N passed, M failed, K skipped". See docs/fuzzing.md.
#
# Usage: tools/fuzz.sh [--seconds N] [--only NAME[,NAME...]] [--build DIR] [--no-install]
#   --seconds N  fuzzing time per harness (default $TAPE_FUZZ_SECONDS, else 60; 0 = replay only)
#   --only       run only these harnesses (idx, checkpoint, checkpoint_payload, image, model_spec)
#   --build DIR  the clang build directory (default build-fuzz)
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${TAPE_FUZZ_SECONDS:-60}
build=build-fuzz
only=""
install=1
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --no-install) install=0; shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (see the header of tools/fuzz.sh)"; exit 2 ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seconds wants a whole number, got '$seconds'"; exit 2; }

harnesses=(idx checkpoint checkpoint_payload image model_spec)
if [ -n "$only" ]; then IFS=, read -r -a harnesses <<<"$only"; fi

source tools/setup.sh
set +e
if [ "$install" -eq 1 ]; then
  tape_install_packages "${TAPE_FUZZ_PACKAGES[@]}" || { echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
fi

echo "== build (fuzzers: clang, libFuzzer + address + undefined sanitizers)"
start=$SECONDS
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$build" -Dfuzz=true -Dbuildtype=debugoptimized -Ddefault_library=static -Ddistributed=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false >/dev/null ||
    { echo "fuzz build: meson setup failed"; echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
fi
if ! ninja -C "$build" fuzzers >"$build/ninja-fuzz.log" 2>&1; then
  tail -40 "$build/ninja-fuzz.log"
  echo "tests: 0 passed, 1 failed, 0 skipped"
  exit 1
fi
echo "built in $((SECONDS - start)) s"

scratch=$(mktemp -d -p "$([ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")" tape-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
export TAPE_FUZZ_TMPDIR=$scratch TAPE_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/fuzz/ubsan.supp
limits=(-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10)
passed=0
failed=0

# report NAME WHAT LOG STATUS: one line per run; on failure the end of the log and the input.
report() {
  local name=$1 what=$2 log=$3 rc=$4
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    return
  fi
  failed=$((failed + 1))
  echo "FAILED: $name: $what (exit $rc); the end of its log:"
  grep -vE '^#[0-9]+|^INFO:|^Running:|^Executed ' "$log" | tail -60
  local f
  for f in "$build/fuzz-artifacts/$name"/*; do
    [ -f "$f" ] || continue
    echo "input kept in $f ($(stat -c %s "$f") bytes; add it to tests/fuzz/regressions/$name/ once fixed):"
    od -A d -t x1z "$f" | head -16
  done
}

for name in "${harnesses[@]}"; do
  bin=$build/tests/fuzz/fuzz_$name
  if [ ! -x "$bin" ]; then
    echo "FAILED: no harness $bin"
    failed=$((failed + 1))
    continue
  fi
  artifacts=$build/fuzz-artifacts/$name
  rm -rf "$artifacts"
  mkdir -p "$artifacts" "$scratch/$name"
  log=$scratch/$name/log

  # 1. Replay: each committed seed and regression file once (file arguments = run each).
  mapfile -t files < <(find "tests/fuzz/corpus/$name" "tests/fuzz/regressions/$name" -type f 2>/dev/null | sort)
  if [ ${#files[@]} -eq 0 ]; then  # with no file arguments, libFuzzer would fuzz forever
    echo "FAILED: fuzz_$name: no seed files in tests/fuzz/corpus/$name"
    failed=$((failed + 1))
    continue
  fi
  "$bin" "${limits[@]}" -artifact_prefix="$artifacts/" "${files[@]}" >"$log" 2>&1
  rc=$?
  echo "fuzz_$name: replayed ${#files[@]} corpus and regression files: $([ $rc -eq 0 ] && echo ok || echo FAILED)"
  report "$name" "replay of the committed files" "$log" "$rc"
  [ "$seconds" -gt 0 ] || continue
  if [ "$rc" -ne 0 ]; then
    echo "fuzz_$name: not fuzzed (it would stop at the same input)"
    continue
  fi

  # 2. Fuzz from a scratch copy of the corpus, so new inputs stay out of the repository.
  corpus=$scratch/$name/corpus
  mkdir -p "$corpus"
  cp "${files[@]}" "$corpus/" 2>/dev/null
  "$bin" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
  echo "fuzz_$name: ${seconds} s, ${execs:-?} execs (${speed:-?}/s), $cov, peak RSS ${rss:-?} MB:" \
    "$([ $rc -eq 0 ] && echo clean || echo FAILED)"
  report "$name" "fuzzing" "$log" "$rc"
done

echo "tests: $passed passed, $failed failed, 0 skipped"
[ "$failed" -eq 0 ]
