#!/usr/bin/env bash
# npm run prebuilds (and prepack, so every `npm pack` has them): the addons the tarball carries, in
# prebuildify's layout, which node-gyp-build reads (prebuilds/<platform>-<arch>/<name>.<tags>.node):
#   linux-x64    node-gyp's Release build, stripped.
#   linux-arm64  the same, cross-built with Debian's g++-aarch64-linux-gnu (scripts/arm64/), stripped; the
#                binary `npm run test:arm64` runs under qemu.
#     Both are tagged napi (any Node with N-API 8), uv1 (they call libuv, whose major version must match:
#     native/loop_watcher.cc) and glibc (musl loads neither and builds from source), and both must need no
#     more than glibc 2.28 and GCC 8's libstdc++ (scripts/glibc-floor.js; native/glibc_floor.h pins what would
#     need more), so that they load on every glibc distribution Node 20 runs on.
#   win32-x64    the mingw-w64 cross build (scripts/windows/, already stripped), the one test:windows runs.
# Linux x64 only: that is where all three are made.
set -euo pipefail
cd "$(dirname "$0")/.."

host=$(node -p 'process.platform + "-" + process.arch')
if [ "$host" != linux-x64 ]; then
  echo "prebuilds: makes the linux-x64, linux-arm64 and win32-x64 addons on linux-x64 only (this is $host)" >&2
  exit 1
fi

rm -rf prebuilds
mkdir -p prebuilds/linux-x64 prebuilds/linux-arm64 prebuilds/win32-x64

echo "== prebuild: linux-x64 (node-gyp)"
npm run --silent build:native > build-native.log 2>&1 || { cat build-native.log; exit 1; }
rm -f build-native.log
strip --strip-unneeded -o prebuilds/linux-x64/iomux.napi.uv1.glibc.node build/Release/iomux.node

echo "== prebuild: linux-arm64 (node-gyp, cross-compiled)"
bash scripts/arm64/build.sh
aarch64-linux-gnu-strip --strip-unneeded -o prebuilds/linux-arm64/iomux.napi.uv1.glibc.node "${IOMUX_ARM64_OUT:-build-arm64}/iomux.node"

node scripts/glibc-floor.js prebuilds/linux-*/iomux.napi.uv1.glibc.node

echo "== prebuild: win32-x64 (mingw-w64)"
bash scripts/windows/build.sh
cp "${IOMUX_WINDOWS_OUT:-build-win}/iomux.node" prebuilds/win32-x64/iomux.napi.node

ls -l prebuilds/*/
