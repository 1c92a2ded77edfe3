#!/usr/bin/env bash
# npm run build:arm64: cross-compiles the addon for linux-arm64 into build-arm64/iomux.node with Debian's
# g++-aarch64-linux-gnu. build/Release (the host's addon) is never touched.
set -euo pipefail
source "$(dirname "$0")/common.sh"

ensure_tools compiler
build_addon
