#!/usr/bin/env bash
# The main job, on a fresh Debian machine as root: installs packages, builds
# tape, fetches MNIST, trains the report's 2-layer MLP (quiz 9) with its
# defaults, then trains LeNet-5 briefly and reads the digits on a generated
# page (quiz 10). Results go to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
echo "== set-up (packages, build)"
tape_install_packages
tape_build build
echo "== MNIST"
bash tools/fetch_mnist.sh
mkdir -p out

echo "== quiz 9: 784-50-10 MLP, Adam lr 0.01, batch 1000, 10 epochs"
./build/examples/mnist_mlp --csv out/mlp.csv --plot out/mlp.png --save out/mlp.ckpt

echo "== quiz 12 (short): LeNet-5, batch 128, 2 epochs"
./build/examples/mnist_lenet5 --batch-size 128 --epochs 2 --save out/lenet5.ckpt --plot out/lenet5.png

echo "== quiz 10: digits on generated pages (MNIST test digits), read with the LeNet-5 checkpoint"
./build/tools/tape-digit-page --out out/page.png --mode both     # true boxes: out/page.json
./build/tools/tape-digit-page --out out/sheet.png --mode sheets  # handwriting sheets (docs/digits.md): out/sheet.json
for page in page-dark-on-light page-light-on-dark sheet-scan sheet-photo; do
  ./build/examples/digits --model out/lenet5.ckpt --image "out/$page.png" \
    --out "out/$page-annotated.png" --json "out/digits-$page.json" > "out/digits-$page.txt"
  echo "  $(wc -l < "out/digits-$page.txt") digits read; annotated image: out/$page-annotated.png"
done
echo "== done: curves out/mlp.png, out/lenet5.png; checkpoints out/mlp.ckpt, out/lenet5.ckpt;"
echo "   annotated digits out/page-*-annotated.png, out/sheet-*-annotated.png"
