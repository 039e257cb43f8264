#!/usr/bin/env bash
# shellcheck disable=SC2317,SC2016  # functions run through check(); literal $ in sh -c and printf
# Installs tape from a configured, built meson build directory into a temporary
# DESTDIR and checks that it can be used from outside the source tree:
#   - docs/tutorial.md matches docs/tutorial/ (tests/check_tutorial.py);
#   - the installed files (headers, libtape.so with its soname, tape.pc, tapeConfig.cmake);
#   - the installed headers: every header reachable from tape.hpp is installed, each
#     compiles on its own, and none includes a oneDNN, Boost, stb, OpenMP, OpenBLAS, fmt, xxHash, cairo or
#     nlohmann-json header;
#   - docs/tutorial/app.cpp built with `pkg-config --cflags --libs tape`, with
#     CMake's find_package(tape) + tape::tape, and with the uninstalled
#     build/meson-uninstalled/tape-uninstalled.pc; each binary is run and must reach
#     the accuracy threshold and reload its checkpoint with the same predictions.
# Usage: tests/install_test.sh [BUILDDIR]     (default: build; run from anywhere)
# BUILDDIR must be configured and built (the install does not rebuild).
# Ends with "tests: N passed, M failed"; exit status 0 only if nothing failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" 2>/dev/null && pwd) || { echo "no build directory ${1:-$root/build}"; echo "tests: 0 passed, 1 failed"; exit 1; }
min_accuracy=${TAPE_TUTORIAL_MIN_ACCURACY:-95}
cxx=${CXX:-g++}
jobs=$(nproc 2>/dev/null || echo 2)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tape-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok    $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL  $1"
  [ -s "$tmp/log" ] && sed 's/^/      /' "$tmp/log" | tail -n 30
  return 0
}
# check NAME COMMAND...: runs COMMAND with its output in $tmp/log; returns its status.
check() {
  local name=$1
  shift
  if "$@" >"$tmp/log" 2>&1; then ok "$name"; else fail "$name"; return 1; fi
}
finish() {
  echo "tests: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

# --- the tutorial text matches the program that is compiled below
check "docs/tutorial.md matches docs/tutorial/" python3 "$root/tests/check_tutorial.py"

# --- install into a staging directory
option() {  # option NAME: a meson option's value in $build
  meson introspect "$build" --buildoptions |
    python3 -c "import json,sys; print(next(o['value'] for o in json.load(sys.stdin) if o['name']=='$1'))"
}
prefix=$(option prefix) && libdir=$(option libdir) && includedir=$(option includedir) || {
  echo "cannot read the options of $build"
  failed=$((failed + 1))
  finish
}
case $libdir in /*) libdir=${libdir#"$prefix"/} ;; esac
case $includedir in /*) includedir=${includedir#"$prefix"/} ;; esac
stage=$tmp/stage
P=$stage$prefix   # the staged prefix
# --no-rebuild: the caller has just built $build (tools/test.sh does), and a
# regeneration triggered by an unrelated edit must not make this test slow.
if ! meson install -C "$build" --destdir "$stage" --no-rebuild --quiet >"$tmp/log" 2>&1; then
  fail "meson install -C $build --no-rebuild --destdir <tmp>"
  finish
fi
ok "meson install -C $build --no-rebuild --destdir <tmp>"
inc=$P/$includedir
lib=$P/$libdir

installed_files() {
  local f
  for f in "$inc/tape/tape.hpp" "$lib/libtape.so" "$lib/pkgconfig/tape.pc" \
           "$lib/cmake/tape/tapeConfig.cmake" "$lib/cmake/tape/tapeConfigVersion.cmake"; do
    [ -e "$f" ] || { echo "missing: ${f#"$stage"}"; return 1; }
  done
  local soname
  soname=$(readelf -d "$lib/libtape.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  [ "$soname" = "libtape.so.0" ] || { echo "soname is '$soname', expected libtape.so.0"; return 1; }
  [ -e "$lib/$soname" ] || { echo "missing: $lib/$soname"; return 1; }
  echo "libtape.so -> $(readlink -f "$lib/libtape.so" | xargs basename), soname $soname"
}
check "installed files: headers, libtape.so (soname libtape.so.0), tape.pc, tapeConfig*.cmake" installed_files

# --- the installed headers
# (fmt, xxHash, cairo and nlohmann-json are private to libtape or to the programs too)
forbidden='dnnl|oneapi/|boost/|stb_|stb/|omp\.h|cblas|openblas|fmt/|xxhash|cairo|nlohmann/|mpi\.h'  # in #include lines
forbidden_path='/(dnnl[^/]*|omp|stb_[^/]*|xxhash|cblas[^/]*|openblas[^/]*|mpi)\.h(pp)?$|/(boost|oneapi|stb|fmt|cairo|nlohmann)/'  # in dependency lists
# Every tape header that tape.hpp pulls in from the source tree is installed.
reachable_installed() {
  local src inst
  src=$(echo '#include <tape/tape.hpp>' | "$cxx" -std=c++20 -M -MT x -I"$root/lib" -x c++ - |
        tr ' \\' '\n\n' | grep "^$root/lib/tape/" | sed "s|^$root/lib/||" | sort -u)
  [ -n "$src" ] || { echo "no tape headers found behind lib/tape/tape.hpp"; return 1; }
  inst=$(cd "$inc" && find tape -name '*.hpp' | sort)
  local missing
  missing=$(comm -23 <(echo "$src") <(echo "$inst"))
  [ -z "$missing" ] || { echo "reachable from tape.hpp but not installed:"; echo "$missing"; return 1; }
  echo "$(echo "$src" | wc -l) headers reachable from tape.hpp, all installed ($(echo "$inst" | wc -l) installed)"
}
check "every header reachable from tape.hpp is installed" reachable_installed
# No installed header includes a oneDNN/Boost/stb/OpenMP header, directly or through
# another header: the preprocessor's dependency list of each one is checked.
no_private_headers() {
  local bad
  bad=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($forbidden)" "$inc/tape")
  [ -z "$bad" ] || { echo "$bad"; return 1; }
  local deps
  deps=$(echo '#include <tape/tape.hpp>' | "$cxx" -std=c++20 -M -MT x -I"$inc" -x c++ - | tr ' \\' '\n\n' | grep -v '^$')
  if echo "$deps" | grep -E "$forbidden_path"; then return 1; fi
  if echo "$deps" | grep "^$root/"; then echo "(headers taken from the source tree)"; return 1; fi
}
check "installed headers include no oneDNN, Boost, stb, OpenMP, OpenBLAS, fmt, xxHash, cairo or json header" no_private_headers
# Each installed header compiles on its own (against the installed tree only).
self_contained() {
  (cd "$inc" && find tape -name '*.hpp' | sort) |
    xargs -P "$jobs" -I{} sh -c 'echo "#include <{}>" | "$0" -std=c++20 -fsyntax-only -I"$1" -x c++ - || { echo "in {}"; exit 255; }' "$cxx" "$inc"
}
check "each installed header compiles on its own" self_contained

# --- the tutorial program, out of tree, against the installed library
# run_app NAME BINARY LIBPATH: runs the program in its own directory and checks its output.
run_app() {
  local name=$1 bin=$2 libpath=$3 dir
  dir=$(dirname "$bin")
  if ! (cd "$dir" && LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ./"$(basename "$bin")") >"$tmp/log" 2>&1; then
    fail "$name: runs"
    return
  fi
  local used acc
  used=$(cd "$dir" && LD_LIBRARY_PATH="$libpath" ldd ./"$(basename "$bin")" | sed -n 's/.*libtape\.so\.0 => \([^ ]*\).*/\1/p')
  case $used in
    "$libpath"/*) ;;
    *) echo "libtape resolved to '$used', expected under $libpath" >>"$tmp/log"; fail "$name: uses the library under test"; return ;;
  esac
  acc=$(sed -n 's/^final test accuracy: \([0-9.]*\)%$/\1/p' "$tmp/log")
  if [ -n "$acc" ] && awk -v a="$acc" -v m="$min_accuracy" 'BEGIN { exit !(a >= m) }'; then
    ok "$name: final test accuracy $acc% >= $min_accuracy%"
  else
    fail "$name: final test accuracy '${acc:-missing}' >= $min_accuracy%"
  fi
  if grep -qE '^loaded checkpoint .* same predictions on [0-9]+ test points$' "$tmp/log" && [ -s "$dir/moons_mlp.ckpt" ]; then
    ok "$name: loaded checkpoint gives the same predictions"
  else
    fail "$name: loaded checkpoint gives the same predictions"
  fi
  # the indexing & dtypes section: per-class counts add up, and the Float64 loss ran
  if grep -qE '^class 0: [0-9]+ of [0-9]+ right$' "$tmp/log" && grep -qE '^test loss [0-9.]+ \(Float64\)$' "$tmp/log"; then
    ok "$name: masks, index_select and a Float64 loss"
  else
    fail "$name: masks, index_select and a Float64 loss"
  fi
  # section 7: the custom Function agrees with the ops (Float64), and the penalty went down
  local pen
  pen=$(sed -nE 's/^gradient penalty ([0-9.]+) -> ([0-9.]+), test accuracy [0-9.]+%$/\1 \2/p' "$tmp/log")
  if grep -qE '^custom Function: Swish gradient vs x\*sigmoid\(x\): max difference [0-9.]+e-(1[3-9]|[2-9][0-9])$' "$tmp/log" &&
     [ -n "$pen" ] && echo "$pen" | awk '{ exit !($2 < $1) }'; then
    ok "$name: custom Function and gradient penalty ($pen)"
  else
    fail "$name: custom Function and gradient penalty"
  fi
  # section 4: a custom Dataset through DataLoader workers, BatchNorm in eval mode, its buffers in state_dict
  local rings
  rings=$(sed -nE 's/^rings: BatchNorm MLP test accuracy ([0-9.]+)% \(eval mode\)$/\1/p' "$tmp/log")
  if [ -n "$rings" ] && awk -v a="$rings" 'BEGIN { exit !(a >= 95) }' &&
     grep -qE '^state_dict: .*bn1\.running_mean bn1\.running_var' "$tmp/log"; then
    ok "$name: custom Dataset and BatchNorm (test accuracy $rings%)"
  else
    fail "$name: custom Dataset and BatchNorm ('${rings:-missing}' >= 95%, running stats in state_dict)"
  fi
}

# 1. pkg-config. The .pc holds the configured prefix; point it at the staging area.
pc() { PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config --define-variable=prefix="$P" "$@"; }
pc_flags() {
  local flags
  flags=$(pc --cflags --libs tape) || return 1
  echo "pkg-config --cflags --libs tape: $flags"
  [ "$(echo $flags)" = "-I$inc -L$lib -ltape" ] || { echo "expected: -I$inc -L$lib -ltape"; return 1; }
  [ "$(pc --modversion tape)" = "$(meson introspect "$build" --projectinfo | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" ]
}
check "pkg-config --cflags --libs tape gives -I<prefix>/include -L<libdir> -ltape" pc_flags
mkdir -p "$tmp/pc"
# shellcheck disable=SC2046
check "pkg-config: g++ -std=c++20 app.cpp \$(pkg-config --cflags --libs tape)" \
  "$cxx" -std=c++20 -O2 "$root/docs/tutorial/app.cpp" $(pc --cflags --libs tape) -o "$tmp/pc/app" &&
  run_app "pkg-config" "$tmp/pc/app" "$lib"

# 2. CMake: find_package(tape) finds the staged tapeConfig.cmake through CMAKE_PREFIX_PATH.
cmake_build() {
  cmake -G Ninja -S "$root/docs/tutorial" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CXX_COMPILER="$(command -v "$cxx")" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON || return 1
  local dir
  dir=$(sed -n 's/^tape_DIR:PATH=//p' "$tmp/cmake/CMakeCache.txt")
  [ "$dir" = "$lib/cmake/tape" ] || { echo "tape_DIR is '$dir', expected $lib/cmake/tape"; return 1; }
  cmake --build "$tmp/cmake" -j "$jobs" || return 1
  grep -qE -- '-std=(c|gnu)\+\+(20|2a)' "$tmp/cmake/compile_commands.json" ||
    { echo "no C++20 flag from tape::tape"; return 1; }
}
check "cmake: find_package(tape) + tape::tape builds app.cpp" cmake_build && run_app "cmake" "$tmp/cmake/app" "$lib"
# The version file rejects an incompatible request.
cmake_version() {
  mkdir -p "$tmp/cmake-ver"
  printf 'cmake_minimum_required(VERSION 3.16)\nproject(v CXX)\nfind_package(tape 99 QUIET)\nif(tape_FOUND)\n  message(FATAL_ERROR "tape 99 accepted")\nendif()\nfind_package(tape 0.1 REQUIRED)\nmessage(STATUS "tape ${tape_VERSION}")\n' \
    >"$tmp/cmake-ver/CMakeLists.txt"
  cmake -G Ninja -S "$tmp/cmake-ver" -B "$tmp/cmake-ver/b" -DCMAKE_PREFIX_PATH="$P"
}
check "cmake: tapeConfigVersion.cmake accepts tape, rejects tape 99" cmake_version

# 3. The uninstalled .pc: build against the build tree without installing.
mkdir -p "$tmp/uninst"
uninstalled_build() {
  local flags
  flags=$(PKG_CONFIG_PATH="$build/meson-uninstalled" pkg-config --cflags --libs tape) || return 1
  echo "uninstalled: $flags"
  # shellcheck disable=SC2086
  "$cxx" -std=c++20 -O2 "$root/docs/tutorial/app.cpp" $flags -o "$tmp/uninst/app"
}
check "PKG_CONFIG_PATH=$build/meson-uninstalled pkg-config builds app.cpp" uninstalled_build &&
  run_app "uninstalled" "$tmp/uninst/app" "$build/lib"

# 4. A data-parallel program needs nothing but tape's flags: no mpicxx, no MPI header.
if command -v mpirun >/dev/null && [ -f "$build/tests/tape_dist_tests" ]; then
  mkdir -p "$tmp/dist"
  cat >"$tmp/dist/sum.cpp" <<'CPP'
#include <tape/tape.hpp>
#include <cstdio>
int main(int argc, char** argv) {
  tape::dist::init(&argc, &argv);
  tape::Tensor t = tape::full({2}, tape::dist::rank() + 1.0);
  tape::dist::all_reduce(t, tape::dist::ReduceOp::Sum);
  if (tape::dist::rank() == 0) std::printf("world %d sum %g\n", tape::dist::world_size(), double(t.to_vector<float>()[0]));
  tape::dist::finalize();
}
CPP
  dist_run() {
    # shellcheck disable=SC2046
    "$cxx" -std=c++20 -O2 "$tmp/dist/sum.cpp" $(pc --cflags --libs tape) -o "$tmp/dist/sum" || return 1
    LD_LIBRARY_PATH="$lib" mpirun --allow-run-as-root -x LD_LIBRARY_PATH -np 2 "$tmp/dist/sum" | tee "$tmp/dist/out"
    grep -qx "world 2 sum 3" "$tmp/dist/out"
  }
  check "pkg-config: a tape::dist program runs under mpirun -np 2 (world 2 sum 3)" dist_run
fi

finish
