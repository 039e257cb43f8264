#!/bin/bash
# examples/char_rnn against its PyTorch twin (bench/char_rnn.py): the same recipe
# and defaults, one after the other in one run, 2 threads each. Prints both
# sides' epoch lines, then per side the mean epoch time (training only), the best
# validation loss (nats/char) and the wall time, with the load average before
# each side (numbers taken on a busy machine are inflated).
#   bench/char_rnn_compare.sh [BUILD_DIR [flags for both, e.g. --epochs 5]]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
shift || true
bin=$build/examples/char_rnn
[ -x "$bin" ] || { echo "char_rnn_compare: no $bin (ninja -C $build examples/char_rnn)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run NAME COMMAND...: the command's epoch/best lines, and NAME's summary in $tmp/NAME.sum
run() {
  local name=$1 load start
  shift
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "== $name (load average $load)"
  start=$(date +%s.%N)
  "$@" > "$tmp/$name.log"
  local wall
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  grep -E '^(epoch|best)' "$tmp/$name.log"
  # epoch lines of both programs: "epoch 3/20  train_loss A  val_loss B  4.1s ..."
  awk -v name="$name" -v wall="$wall" -v load="$load" '
    /^epoch/ { t = $7; sub("s$", "", t); sum += t; n++; if (best == "" || $6 < best) { best = $6; be = n } }
    END { printf "%-8s epoch time %6.2f s   best val_loss %.4f (epoch %d)   wall %6.1f s   load %s\n",
                 name, sum / n, best, be, wall, load }' "$tmp/$name.log" > "$tmp/$name.sum"
}

run tape env TAPE_NUM_THREADS=2 "$bin" --threads 2 "$@"
run pytorch /usr/bin/python3 "$here/bench/char_rnn.py" --threads 2 "$@"
echo "== summary (T = 64, N = 32, E = 64, H = 256, 1-layer LSTM, dropout 0.3, Adam 2e-3 unless overridden)"
cat "$tmp/tape.sum" "$tmp/pytorch.sum"
