#!/usr/bin/env bash
# npm run build:win: cross-compiles the addon for win-x64 into build-win/iomux.node with mingw-w64.
# build/Release (the Linux addon the other tests load) is never touched.
set -euo pipefail
source "$(dirname "$0")/common.sh"

ensure_tools compiler
log "cross-building $OUT/iomux.node"
# One build at a time in this tree (several people and CI steps may ask at once).
exec 9> "$OUT/.build.lock"
flock 9
make --no-print-directory -C "$ROOT/scripts/windows" -j"$(nproc)" ROOT="$ROOT" OUT="$OUT"
