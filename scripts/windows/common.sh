# Shared by build.sh and test.sh: where things live, and installing the tools when they are missing.
# Debian's packages only (apt-get), the npm registry for node.exe: nothing else is downloaded.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${IOMUX_WINDOWS_OUT:-$ROOT/build-win}
CACHE=${IOMUX_WINDOWS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/iomux-windows}
CXX_WIN=x86_64-w64-mingw32-g++-posix

log() { printf '== windows [%3d s]: %s\n' "$SECONDS" "$*"; }
source "$ROOT/scripts/fetch.sh"

# What each tool's absence asks apt-get for; one apt-get run installs them all.
missing_packages() {
  local want
  for want in "$@"; do
    case $want in
      compiler) command -v "$CXX_WIN" > /dev/null || echo g++-mingw-w64-x86-64-posix ;;
      wine) find_wine || echo wine64 ;;
    esac
  done
}

# ensure_tools compiler [wine]: installs what is missing, then finds Wine.
ensure_tools() {
  mkdir -p "$OUT"
  local missing
  mapfile -t missing < <(missing_packages "$@")
  ensure_packages windows "$OUT/apt.log" "${missing[@]}"
  command -v "$CXX_WIN" > /dev/null || { echo "windows: no $CXX_WIN after installing it" >&2; exit 1; }
  if [[ " $* " == *" wine "* ]]; then
    find_wine || { echo "windows: no wine64 after installing it" >&2; exit 1; }
  fi
}

# Debian's wine64 package puts the loader in /usr/lib/wine; the `wine` package adds wrappers on PATH.
find_wine() {
  WINE=${WINE:-}
  if [ -z "$WINE" ]; then
    for candidate in /usr/lib/wine/wine64 "$(command -v wine64 || true)" "$(command -v wine || true)"; do
      if [ -n "$candidate" ] && [ -x "$candidate" ]; then WINE=$candidate; break; fi
    done
  fi
  WINESERVER=${WINESERVER:-}
  if [ -z "$WINESERVER" ]; then
    for candidate in /usr/lib/wine/wineserver "$(command -v wineserver || true)"; do
      if [ -n "$candidate" ] && [ -x "$candidate" ]; then WINESERVER=$candidate; break; fi
    done
  fi
  [ -n "$WINE" ] && [ -n "$WINESERVER" ]
}

# The cross build (Makefile beside this file), one at a time in this tree.
build_addon() {
  log "cross-building $OUT/iomux.node"
  (
    flock 9
    make --no-print-directory -C "$ROOT/scripts/windows" -j"$(nproc)" ROOT="$ROOT" OUT="$OUT"
  ) 9> "$OUT/.build.lock"
}
