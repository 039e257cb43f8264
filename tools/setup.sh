#!/usr/bin/env bash
# Shared set-up for tools/test.sh and tools/quickstart.sh: installs the Debian
# packages tape needs (only those missing), then configures and builds.
# Usage: source tools/setup.sh   (from the repository root)
set -euo pipefail

TAPE_PACKAGES=(g++ meson ninja-build pkg-config cmake libdnnl-dev libboost-program-options-dev
               libboost-serialization-dev doctest-dev libstb-dev graphviz python3 binutils
               libcairo2-dev fonts-dejavu-core libfmt-dev nlohmann-json3-dev libxxhash-dev
               libopenblas-openmp-dev openmpi-bin libopenmpi-dev)
# tools/fuzz.sh: clang with its sanitizer/libFuzzer runtimes and OpenMP
TAPE_FUZZ_PACKAGES=(clang libclang-rt-dev libomp-dev)

# tape_install_packages [PACKAGE...]   (default: TAPE_PACKAGES)
tape_install_packages() {
  local missing=()
  [ $# -gt 0 ] || set -- "${TAPE_PACKAGES[@]}"
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# tape_build DIR [meson options...]
tape_build() {
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null
  fi
  # keep the compiler output; show warnings (the build is meant to be warning-free)
  if ! ninja -C "$dir" > "$dir/ninja.log" 2>&1; then
    tail -40 "$dir/ninja.log"
    return 1
  fi
  if grep -q "warning:" "$dir/ninja.log"; then
    echo "setup: compiler warnings in $dir:"
    grep "warning:" "$dir/ninja.log" | sort -u | head -20
  fi
}
