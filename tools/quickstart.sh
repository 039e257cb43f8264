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

if [ -x build/tools/make_digit_page ] && [ -x build/examples/digits ]; then
  echo "== quiz 10: digits on a generated page"
  ./build/tools/make_digit_page --out out/page.png --truth out/page.json
  ./build/examples/digits --model out/lenet5.ckpt --image out/page.png --out out/page_annotated.png --json out/digits.json
  echo "annotated image: out/page_annotated.png"
fi
echo "== done: loss curves out/mlp.png, out/lenet5.png; checkpoints out/*.ckpt"
