# Shared by build.sh and test.sh: where things live, and installing the tools when they are missing.
# Debian's packages only (apt-get), the npm registry for the arm64 node: nothing else is downloaded.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${IOMUX_ARM64_OUT:-$ROOT/build-arm64}
CACHE=${IOMUX_ARM64_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/iomux-arm64}
CROSS=aarch64-linux-gnu
# libc6-arm64-cross and libstdc++6-arm64-cross (g++-aarch64-linux-gnu's dependencies) put an arm64 glibc
# and libstdc++ here: the libraries qemu-aarch64 -L loads the arm64 node with.
SYSROOT=/usr/$CROSS

log() { printf '== arm64 [%3d s]: %s\n' "$SECONDS" "$*"; }
source "$ROOT/scripts/fetch.sh"

# ensure_tools compiler [qemu]: apt-get installs what is missing, in one run.
ensure_tools() {
  mkdir -p "$OUT"
  local missing=() want
  for want in "$@"; do
    case $want in
      compiler) command -v "$CROSS-g++" > /dev/null || missing+=("g++-$CROSS") ;;
      qemu) command -v qemu-aarch64 > /dev/null || missing+=(qemu-user) ;;
    esac
  done
  ensure_packages arm64 "$OUT/apt.log" "${missing[@]}"
}

# The cross build: node-gyp with the aarch64 compiler and --arch=arm64, on a copy of binding.gyp and native/
# in $OUT/src (node-gyp builds in <dir>/build, and build/ holds the host's addon). The copy keeps
# modification times, so make rebuilds only what changed. Writes $OUT/iomux.node.
build_addon() {
  log "cross-building $OUT/iomux.node (node-gyp, $CROSS-g++)"
  (
    flock 9
    rm -rf "$OUT/src/native"
    mkdir -p "$OUT/src"
    cp -p "$ROOT/binding.gyp" "$OUT/src/"
    cp -rp "$ROOT/native" "$OUT/src/native"
    ln -sfn "$ROOT/node_modules" "$OUT/src/node_modules"
    # npm names its own node-gyp to scripts it runs; else one on PATH.
    local gyp=(node-gyp)
    [ -n "${npm_config_node_gyp:-}" ] && gyp=(node "$npm_config_node_gyp")
    (cd "$OUT/src" && CC=$CROSS-gcc CXX=$CROSS-g++ LINK=$CROSS-g++ AR=$CROSS-ar "${gyp[@]}" configure build --arch=arm64 --release) \
      > "$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
    cp "$OUT/src/build/Release/iomux.node" "$OUT/iomux.node"
  ) 9> "$OUT/.build.lock"
}
