#!/usr/bin/env bash
# The main job: sets up a fresh Debian machine (as root), builds tape, fetches
# MNIST and trains the report's network. (Filled in with the examples.)
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup.sh
tape_install_packages
tape_build build
echo "quickstart: the trainers are coming with the examples; run tools/test.sh meanwhile"
