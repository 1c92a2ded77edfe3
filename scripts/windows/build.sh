#!/usr/bin/env bash
# npm run build:win: cross-compiles the addon for win-x64 into build-win/iomux.node with mingw-w64.
# build/Release (the Linux addon the other tests load) is never touched.
set -euo pipefail
source "$(dirname "$0")/common.sh"

ensure_tools compiler
build_addon
