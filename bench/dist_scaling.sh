#!/usr/bin/env bash
# Data-parallel scaling (docs/distributed.md): training samples/s of
# `mpirun -np 2 ... --distributed` with one thread per rank against one process
# with one thread, same global batch and flags, for LeNet-5 (batch 2500, the
# report's recipe) and mlp4 (784-370-115-50-10, batch 1000). Epoch 1 (primitive
# creation) is left out of the mean. Also prints both runs' final test accuracy.
#   bench/dist_scaling.sh [BUILD_DIR [EPOCHS]]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
epochs=${2:-4}
mpi=(mpirun --allow-run-as-root -np 2)
command -v mpirun > /dev/null || { echo "dist_scaling: mpirun not found (apt-get install openmpi-bin)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 TAPE_NUM_THREADS=1

# mean samples/s over epochs 2.. and the final accuracy of a trainer's output
summarise() {
  awk '/^epoch/ { n++; if (n > 1) { v = $(NF - 1); gsub(",", "", v); s += v; k++ } }
       /^final test accuracy/ { acc = $4 }
       END { printf "%.0f %s\n", k ? s / k : 0, acc }' "$1"
}

run() {  # NAME PROGRAM FLAGS...
  local name=$1 prog=$2
  shift 2
  echo "== $name: load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$build/examples/$prog" --threads 1 --epochs "$epochs" "$@" > "$tmp/one.txt"
  "${mpi[@]}" "$build/examples/$prog" --distributed --threads 1 --epochs "$epochs" "$@" > "$tmp/two.txt"
  grep '^epoch' "$tmp/one.txt" | sed 's/^/  1 process: /'
  grep '^epoch' "$tmp/two.txt" | sed 's/^/  2 ranks:   /'
  read -r one acc1 < <(summarise "$tmp/one.txt")
  read -r two acc2 < <(summarise "$tmp/two.txt")
  printf "%-8s %12s %12s %8s %10s %10s\n" "$name" "$one" "$two" "$(echo "scale=2; $two / $one" | bc)x" "$acc1" "$acc2" \
    >> "$tmp/table"
}

run lenet5 mnist_lenet5 --batch-size 2500
run mlp4 mnist_mlp --hidden 370,115,50 --batch-size 1000
echo "== samples/s (mean of epochs 2-$epochs), 1 thread per process"
printf "%-8s %12s %12s %8s %10s %10s\n" model "1 process" "2 ranks" speedup "acc 1" "acc 2"
cat "$tmp/table"
