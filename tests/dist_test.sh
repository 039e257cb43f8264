#!/usr/bin/env bash
# tape::dist across processes, under mpirun (tools/test.sh runs it after the
# release tests): the collective and DDP tests on 2 ranks and on 3 (more ranks
# than cores: --oversubscribe), the failure cases (a rank that throws, dies or
# hangs must end the job, non-zero and promptly, naming the rank), and the
# trainers' --distributed against a single process.
# Ends with "tests: N passed, M failed, K skipped".
#   tests/dist_test.sh [BUILD_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
passed=0
failed=0
skipped=0
ok() { echo "  ok: $1"; passed=$((passed + 1)); }
bad() { echo "  FAILED: $1"; failed=$((failed + 1)); }

if [ ! -x "$build/tests/tape_dist_tests" ] || ! command -v mpirun > /dev/null; then
  echo "dist: libtape was built without MPI or mpirun is missing; skipped"
  echo "tests: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
# root in CI: Open MPI refuses root unless told; one thread per rank unless a test says otherwise
mpi=(mpirun --allow-run-as-root)
export TAPE_NUM_THREADS=1 OMP_NUM_THREADS=1
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# run_mpi NAME NP ARGS...: the doctest binary under mpirun; adds its summary line
run_mpi() {
  local name=$1 np=$2
  shift 2
  echo "== $name"
  TAPE_DIST_TIMEOUT=120 timeout 600 "${mpi[@]}" --oversubscribe -np "$np" "$@" > "$log/$name.txt" 2>&1
  local rc=$?
  grep -vE '^\[doctest\]' "$log/$name.txt" | grep -E 'ERROR|FAILED|failed:|tests:|ranks;' | head -40
  local line
  line=$(grep -E '^tests: [0-9]+ passed, [0-9]+ failed' "$log/$name.txt" | tail -1)
  if [ -z "$line" ] || [ $rc -ne 0 ]; then
    tail -30 "$log/$name.txt"
    bad "$name (exit $rc)"
    return
  fi
  passed=$((passed + $(echo "$line" | sed -E 's/^tests: ([0-9]+) passed.*/\1/')))
  failed=$((failed + $(echo "$line" | sed -E 's/^tests: [0-9]+ passed, ([0-9]+) failed.*/\1/')))
}
run_mpi "collectives and DDP, 2 ranks" 2 "$build/tests/tape_dist_tests"
run_mpi "collectives and DDP, 3 ranks" 3 "$build/tests/tape_dist_tests"

# fault MODE EXPECTED_TEXT [ENV...]: rank 1 fails; the job must end non-zero within 60 s
fault() {
  local mode=$1 want=$2
  shift 2
  local t0=$SECONDS
  env "$@" timeout 90 "${mpi[@]}" -np 2 "$build/tests/tape_dist_fault" "$mode" > "$log/fault.txt" 2>&1
  local rc=$? took=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then bad "fault $mode: the job exited 0"
  elif [ $rc -eq 124 ]; then bad "fault $mode: the job hung (killed after 90 s)"
  elif [ $took -gt 60 ]; then bad "fault $mode: the job took ${took} s to end"
  elif ! grep -qE "$want" "$log/fault.txt"; then cat "$log/fault.txt"; bad "fault $mode: no '$want' in the output"
  else ok "fault $mode: exit $rc after ${took} s, '$(grep -m1 -oE "$want" "$log/fault.txt")'"
  fi
}
echo "== a failing rank ends the job"
"${mpi[@]}" -np 2 "$build/tests/tape_dist_fault" ok > "$log/ok.txt" 2>&1 && grep -q "rank 1: sum 2" "$log/ok.txt" &&
  grep -q "rank 1: bias grad 3" "$log/ok.txt" &&
  ok "fault ok: both ranks finish, a DDP outliving finalize included (exit 0)" || { cat "$log/ok.txt"; bad "fault ok"; }
fault throw "rank 1 failed: uncaught exception: rank 1 could not read its shard"
fault kill "rank 1 .*exited on signal 9|process rank 1"
fault hang "rank 0 failed: rank 0: all_reduce of \[4\] Float32 did not complete within 3 s" TAPE_DIST_TIMEOUT=3

# --distributed: 2 ranks, each half of every batch, give the single process's curve
echo "== mnist_mlp --distributed against one process"
if [ ! -f data/mnist/train-images-idx3-ubyte ]; then
  echo "  skipped: no MNIST in data/mnist"
  skipped=$((skipped + 1))
else
  flags=(--limit-train 6000 --epochs 2 --batch-size 200 --hidden 64 --threads 1)
  "$build/examples/mnist_mlp" "${flags[@]}" --csv "$log/one.csv" --save "$log/one.ckpt" > "$log/one.txt" 2>&1 ||
    cat "$log/one.txt"
  "${mpi[@]}" -np 2 "$build/examples/mnist_mlp" --distributed "${flags[@]}" --csv "$log/two.csv" \
    --save "$log/two.ckpt" > "$log/two.txt" 2>&1 || cat "$log/two.txt"
  # same columns; losses and accuracy equal up to float rounding (seconds differ)
  if python3 - "$log/one.csv" "$log/two.csv" <<'EOF'
import csv, sys
a = list(csv.DictReader(open(sys.argv[1])))
b = list(csv.DictReader(open(sys.argv[2])))
assert len(a) == len(b) == 2, (len(a), len(b))
for x, y in zip(a, b):
    for k in ("train_loss", "test_loss"):
        assert abs(float(x[k]) - float(y[k])) < 2e-4 * max(1.0, abs(float(x[k]))), (k, x[k], y[k])
    assert abs(float(x["test_accuracy"]) - float(y["test_accuracy"])) <= 0.0005, (x["test_accuracy"], y["test_accuracy"])
print("  same curve:", [(x["train_loss"], y["train_loss"], x["test_accuracy"], y["test_accuracy"]) for x, y in zip(a, b)])
EOF
  then ok "2 ranks follow the single-process curve"; else bad "2 ranks differ from one process"; fi
  [ "$(grep -c '^epoch' "$log/two.txt")" -eq 2 ] && ok "only rank 0 prints (2 epoch lines)" ||
    { cat "$log/two.txt"; bad "epoch lines from more than rank 0"; }
  # resume: a distributed checkpoint in one process, and in 2 ranks again
  "$build/examples/mnist_mlp" --resume "$log/two.ckpt" --epochs 3 --threads 1 > "$log/r1.txt" 2>&1 &&
    grep -q "resumed from .* after epoch 2" "$log/r1.txt" && grep -q "^epoch  3/3" "$log/r1.txt" &&
    ok "a distributed checkpoint resumes in one process" || { cat "$log/r1.txt"; bad "resume in one process"; }
  "${mpi[@]}" -np 2 "$build/examples/mnist_mlp" --distributed --resume "$log/two.ckpt" --epochs 3 --threads 1 \
    > "$log/r2.txt" 2>&1 && grep -q "^epoch  3/3" "$log/r2.txt" &&
    ok "a distributed checkpoint resumes in 2 ranks" || { cat "$log/r2.txt"; bad "resume in 2 ranks"; }
  "${mpi[@]}" -np 2 "$build/examples/mnist_mlp" --distributed --resume "$log/one.ckpt" --epochs 3 --threads 1 \
    > "$log/r3.txt" 2>&1 && grep -q "resumed from .* after epoch 2" "$log/r3.txt" && grep -q "^epoch  3/3" "$log/r3.txt" &&
    ok "a single-process checkpoint resumes in 2 ranks" || { cat "$log/r3.txt"; bad "single-process checkpoint in 2 ranks"; }
  # mpirun without --distributed is refused (each rank would train alone)
  if "${mpi[@]}" -np 2 "$build/examples/mnist_mlp" --epochs 1 --limit-train 100 > "$log/nd.txt" 2>&1; then
    bad "mpirun without --distributed ran"
  elif grep -q "without --distributed" "$log/nd.txt"; then ok "mpirun without --distributed is refused"
  else cat "$log/nd.txt"; bad "mpirun without --distributed: no message"
  fi
  # an odd global batch cannot be split evenly
  if "${mpi[@]}" -np 2 "$build/examples/mnist_mlp" --distributed --batch-size 201 --epochs 1 > "$log/odd.txt" 2>&1; then
    bad "--batch-size 201 on 2 ranks ran"
  elif grep -qE "rank [01] failed: mnist_mlp: error: --batch-size 201 is not divisible by the 2 ranks" "$log/odd.txt"; then
    ok "--batch-size 201 on 2 ranks: one clear error"
  else cat "$log/odd.txt"; bad "--batch-size 201 on 2 ranks: no clear error"
  fi
fi

echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
