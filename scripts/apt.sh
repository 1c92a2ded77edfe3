# Sourced by the scripts that install the Debian packages they need (scripts/windows/, scripts/arm64/).

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
