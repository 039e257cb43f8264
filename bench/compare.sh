#!/usr/bin/env bash
# Runs the same networks and micro-benchmarks in PyTorch (Debian's python3-torch,
# installed if missing; 2 threads) and in tape, in one run, and prints one table
# with the ratio tape / PyTorch per row.
#   usage: bench/compare.sh [EPOCHS]      (default 4; epoch rows are medians of epochs 2..N)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-4}
threads=${TAPE_NUM_THREADS:-2}
export TAPE_NUM_THREADS=$threads OMP_NUM_THREADS=$threads

# Debian's torch calls whatever libblas.so.3 is selected; without OpenBLAS that is
# the reference BLAS (~5 GFLOP/s). PyTorch's fastest configuration here is
# OpenBLAS built with OpenMP (the same threading as torch): 3-4x faster than the
# pthread build, which spins against torch's OpenMP team. Install and select it.
# PyTorch on CPU has no caching allocator: with glibc's malloc every large
# tensor is a fresh mmap, and its page faults cost more than the kernels (conv1
# forward: 62 ms with glibc, 2.7 ms with tcmalloc; a LeNet-5 b2500 epoch 15.6 s
# vs 1.8 s). Intel's PyTorch tuning guide preloads tcmalloc or jemalloc; here
# tcmalloc is the fast one (jemalloc's default decay: 23.7 s), so PyTorch runs
# with libtcmalloc_minimal preloaded, and torch_bench prints the allocator it got.
multiarch=$(gcc -print-multiarch)
openmp_blas=/usr/lib/$multiarch/openblas-openmp
tcmalloc=/usr/lib/$multiarch/libtcmalloc_minimal.so.4
if ! /usr/bin/python3 -c "import torch" 2>/dev/null || ! dpkg -s libopenblas0-openmp >/dev/null 2>&1 || [ ! -e "$tcmalloc" ]; then
  echo "compare: installing python3-torch, OpenMP OpenBLAS and tcmalloc" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3-torch libopenblas0-openmp libtcmalloc-minimal4 >/dev/null
fi
torch() { LD_PRELOAD=$tcmalloc /usr/bin/python3 bench/torch_bench.py "$@"; }
for lib in libblas.so.3 liblapack.so.3; do
  update-alternatives --set "$lib-$multiarch" "$openmp_blas/$lib" >/dev/null
done
source tools/setup.sh
tape_install_packages
tape_build build
bash tools/fetch_mnist.sh >/dev/null || true

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "compare: tape ops" >&2
./build/bench/ops > "$out/tape_ops.txt"
echo "compare: tape networks" >&2
./build/bench/train --only peak >> "$out/tape_train.txt"
./build/bench/train --only infer >> "$out/tape_train.txt"
for n in mlp2 mlp4 lenet5 lenet5_64; do ./build/bench/train --epochs "$epochs" --only $n >> "$out/tape_train.txt"; done
bf16_state=$(./build/bench/train --only peak --precision bf16 | grep -m1 '^bf16 autocast' || true)
if [ "$bf16_state" = "bf16 autocast: on" ]; then
  for n in mlp4 lenet5; do
    ./build/bench/train --epochs "$epochs" --only $n --precision bf16 >> "$out/tape_train.txt"
  done
fi
echo "compare: PyTorch" >&2
torch --only ops > "$out/torch_ops.txt"
torch --only infer > "$out/torch_train.txt"
for n in mlp2 mlp4 lenet5 lenet5_64; do
  torch --epochs "$epochs" --only $n >> "$out/torch_train.txt"
done

value() {  # value FILE ROW-NAME
  grep -F "$2" "$1" | head -1 | awk '{print $(NF-1)}'
}
printf '\n%s, %s threads, %s (%s)\n' "$(date -u +%Y-%m-%d)" "$threads" "$(lscpu | sed -n 's/^Model name: *//p')" \
  "$(grep -m1 '^oneDNN ISA' "$out/tape_train.txt" || echo 'oneDNN ISA unknown')"
grep -m1 '^torch ' "$out/torch_ops.txt"
printf '| %-44s | %12s | %12s | %8s |\n' "row" "tape" "PyTorch" "tape/PT"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..10})"
show() {  # show LABEL ROW-NAME TAPE-FILE TORCH-FILE UNIT
  local t p
  t=$(value "$3" "$2")
  p=$(value "$4" "$2")
  if [ -n "$t" ] && [ -n "$p" ]; then
    printf '| %-44s | %9.3f %-2s | %9.3f %-2s | %7.2fx |\n' "$1" "$t" "$5" "$p" "$5" "$(awk -v a="$t" -v b="$p" 'BEGIN{print a/b}')"
  fi
}
show "eager overhead, us per small op fwd+bwd" "eager overhead, fwd+bwd per small op" "$out/tape_ops.txt" "$out/torch_ops.txt" us
show "mlp2 epoch, batch 1000" "mlp2 784-50-10 batch 1000 epoch" "$out/tape_train.txt" "$out/torch_train.txt" s
show "mlp4 epoch, batch 1000" "mlp4 784-370-115-50-10 batch 1000 epoch" "$out/tape_train.txt" "$out/torch_train.txt" s
show "LeNet-5 epoch, batch 2500" "lenet5 batch 2500 epoch" "$out/tape_train.txt" "$out/torch_train.txt" s
show "LeNet-5 epoch, batch 64" "lenet5 batch 64 epoch" "$out/tape_train.txt" "$out/torch_train.txt" s
show "mlp2 batch 1 forward, recording" "mlp2 batch 1 forward (recording)" "$out/tape_train.txt" "$out/torch_train.txt" us
show "mlp2 batch 1 forward_inference / inference_mode" "mlp2 batch 1 forward_inference" "$out/tape_train.txt" "$out/torch_train.txt" us
show "conv1 fwd+bwd, batch 1000" "conv1 1000x1x28x28 -> 6@5x5 fwd+bwd (tape)" "$out/tape_ops.txt" "$out/torch_ops.txt" ms
show "conv2 fwd+bwd, batch 1000" "conv2 1000x6x12x12 -> 16@5x5 fwd+bwd (tape)" "$out/tape_ops.txt" "$out/torch_ops.txt" ms
show "linear 1000x784x50 fwd+bwd" "linear 1000x784x50 fwd+bwd (tape)" "$out/tape_ops.txt" "$out/torch_ops.txt" ms
show "linear 1000x784x370 fwd+bwd" "linear 1000x784x370 fwd+bwd (tape)" "$out/tape_ops.txt" "$out/torch_ops.txt" ms
show "peak RSS during LeNet-5 training (b2500)" "lenet5 batch 2500 peak RSS so far" "$out/tape_train.txt" "$out/torch_train.txt" MB
show "matmul 1024^3 GFLOP/s (higher is better)" "matmul 1024^3 (tape)" "$out/tape_ops.txt" "$out/torch_ops.txt" GF
printf '\ntape vs raw oneDNN (same run):\n'
grep -F "raw/tape" "$out/tape_ops.txt"

# The roofline: FLOPs per epoch counted from the layer shapes (bench/train), the
# rate each side achieves on them, and that rate as a share of the machine's
# measured GEMM peak (the best of every peak row of this run).
peak() {  # peak f32|bf16
  grep -F "$1 GEMM peak" "$out/tape_train.txt" | awk '{v=$(NF-1); if (v>m) m=v} END {print m+0}'
}
f32_peak=$(peak f32)
bf16_peak=$(peak bf16)
printf '\n%s\n' "$bf16_state"
printf 'roofline: f32 GEMM peak %.0f GFLOP/s, bf16 GEMM peak %.0f GFLOP/s (raw oneDNN, best in this run)\n' "$f32_peak" "$bf16_peak"
printf '| %-34s | %10s | %12s | %12s | %10s | %12s | %10s |\n' network "GFLOP/epoch" "tape s" "tape GFLOP/s" "of peak" "PyTorch GFLOP/s" "of peak"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..36})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..14})" \
  "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..17})" "$(printf -- '-%.0s' {1..12})"
roof() {  # roof LABEL ROW-PREFIX PEAK [TORCH-ROW-PREFIX]
  local g t p
  g=$(value "$out/tape_train.txt" "$2 GFLOP per epoch")
  t=$(value "$out/tape_train.txt" "$2 epoch")
  p=$( [ -n "${4:-}" ] && value "$out/torch_train.txt" "$4 epoch" || true)
  [ -n "$g" ] && [ -n "$t" ] || return 0
  awk -v l="$1" -v g="$g" -v t="$t" -v p="${p:-0}" -v pk="$3" 'BEGIN {
    printf "| %-34s | %10.1f | %10.3f s | %12.1f | %9.1f%% |", l, g, t, g/t, 100*g/t/pk
    if (p > 0) printf " %15.1f | %9.1f%% |\n", g/p, 100*g/p/pk; else printf " %15s | %10s |\n", "-", "-" }'
}
roof "mlp2, batch 1000" "mlp2 784-50-10 batch 1000" "$f32_peak" "mlp2 784-50-10 batch 1000"
roof "mlp4, batch 1000" "mlp4 784-370-115-50-10 batch 1000" "$f32_peak" "mlp4 784-370-115-50-10 batch 1000"
roof "LeNet-5, batch 2500" "lenet5 batch 2500" "$f32_peak" "lenet5 batch 2500"
roof "LeNet-5, batch 64" "lenet5 batch 64" "$f32_peak" "lenet5 batch 64"
if [ "${bf16_peak%.*}" -gt 0 ] 2>/dev/null; then
  roof "mlp4, batch 1000, bf16 (of bf16 peak)" "mlp4 784-370-115-50-10 batch 1000 bf16" "$bf16_peak"
  roof "LeNet-5, batch 2500, bf16 (of bf16 peak)" "lenet5 batch 2500 bf16" "$bf16_peak"
  printf '\nbf16 autocast speedup over f32 (same run):\n'
  for pair in "mlp4 784-370-115-50-10 batch 1000" "lenet5 batch 2500"; do
    f=$(value "$out/tape_train.txt" "$pair epoch")
    b=$(value "$out/tape_train.txt" "$pair bf16 epoch")
    [ -n "$f" ] && [ -n "$b" ] && awk -v n="$pair" -v f="$f" -v b="$b" 'BEGIN {printf "  %-40s %.3f s -> %.3f s  %.2fx\n", n, f, b, f/b}'
  done
fi
