#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root), builds tape, fetches MNIST and runs
# the whole test suite twice: a release build, then AddressSanitizer +
# UndefinedBehaviorSanitizer; then the fuzzers (tools/fuzz.sh, about 60 s each;
# TAPE_FUZZ_SECONDS=N or --fuzz-seconds N for longer, 0 to only replay their
# corpus). Ends with "tests: N passed, M failed, K skipped" (skipped: tests that
# cannot run here, e.g. without MNIST).
# Usage: tools/test.sh [--fuzz-seconds N]
set -uo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds=${TAPE_FUZZ_SECONDS:-60}
while [ $# -gt 0 ]; do
  case $1 in
    --fuzz-seconds) fuzz_seconds=$2; shift 2 ;;
    *) echo "test.sh: unknown argument '$1' (usage: tools/test.sh [--fuzz-seconds N])"; exit 2 ;;
  esac
done
source tools/setup.sh
set +e

tape_install_packages || { echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
echo "== build (release)"
tape_build build || { echo "build failed"; echo "tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
echo "== fetch MNIST"
bash tools/fetch_mnist.sh || echo "warning: MNIST unavailable; tests that need it are skipped"

passed=0
failed=0
skipped=0
count() {  # reads a log, adds its "tests: N passed, M failed[, K skipped]" line to the totals
  local line
  line=$(grep -E '^tests: [0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
  if [ -z "$line" ]; then
    failed=$((failed + 1))
    return
  fi
  passed=$((passed + $(echo "$line" | sed -E 's/^tests: ([0-9]+) passed.*/\1/')))
  failed=$((failed + $(echo "$line" | sed -E 's/^tests: [0-9]+ passed, ([0-9]+) failed.*/\1/')))
  if [[ $line =~ ", "([0-9]+)" skipped" ]]; then skipped=$((skipped + BASH_REMATCH[1])); fi
}

log=$(mktemp)
echo "== tests (release)"
./build/tests/tape_tests --no-version 2>&1 | tee "$log" | grep -vE '^\[doctest\]|^tests:'
count "$log"

echo "== install (headers, pkg-config, CMake, tutorial)"
bash tests/install_test.sh build 2>&1 | tee "$log" | grep -vE '^tests:'
count "$log"

echo "== distributed (tests/dist_test.sh: mpirun with 2 and 3 ranks)"
bash tests/dist_test.sh build 2>&1 | tee "$log" | grep -vE '^tests:'
count "$log"

echo "== build (address + undefined sanitizers)"
if tape_build build-asan -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false; then
  echo "== tests (sanitizers; the slow training tests are left to the release run)"
  # tests/lsan.supp: fontconfig's caches (kept for the process's life; cairo holds references into them)
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ./build-asan/tests/tape_tests --no-version --test-suite-exclude=slow 2>&1 | tee "$log" | grep -vE '^\[doctest\]|^tests:'
  count "$log"
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
    echo "sanitizer reported errors (see above)"
    failed=$((failed + 1))
  fi
else
  echo "sanitizer build failed"
  failed=$((failed + 1))
fi

echo "== fuzzers (tools/fuzz.sh, ${fuzz_seconds} s each)"
bash tools/fuzz.sh --seconds "$fuzz_seconds" 2>&1 | tee "$log" | grep -vE '^tests:'
count "$log"
rm -f "$log"

echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
