#!/usr/bin/env bash
# npm run prebuilds (and prepack, so every `npm pack` has them): the addons the tarball carries, in
# prebuildify's layout, which node-gyp-build reads (prebuilds/<platform>-<arch>/<name>.<tags>.node):
#   linux-x64  node-gyp's Release build, stripped. Tagged napi (any Node with N-API 8), uv1 (it calls
#              libuv, whose major version must match: native/loop_watcher.cc) and glibc (musl loads none
#              and builds from source).
#   win32-x64  the mingw-w64 cross build (scripts/windows/, already stripped), the one test:windows runs.
# Linux x64 only: that is where both are made.
set -euo pipefail
cd "$(dirname "$0")/.."

host=$(node -p 'process.platform + "-" + process.arch')
if [ "$host" != linux-x64 ]; then
  echo "prebuilds: makes the linux-x64 and win32-x64 addons on linux-x64 only (this is $host)" >&2
  exit 1
fi

rm -rf prebuilds
mkdir -p prebuilds/linux-x64 prebuilds/win32-x64

echo "== prebuild: linux-x64 (node-gyp)"
npm run --silent build:native > build-native.log 2>&1 || { cat build-native.log; exit 1; }
rm -f build-native.log
strip --strip-unneeded -o prebuilds/linux-x64/iomux.napi.uv1.glibc.node build/Release/iomux.node

echo "== prebuild: win32-x64 (mingw-w64)"
bash scripts/windows/build.sh
cp "${IOMUX_WINDOWS_OUT:-build-win}/iomux.node" prebuilds/win32-x64/iomux.napi.node

ls -l prebuilds/*/
