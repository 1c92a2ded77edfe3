#!/usr/bin/env bash
# npm run test:tsan: the addon built with ThreadSanitizer (build-tsan/, build/ untouched), loaded
# through IOMUX_ADDON_PATH by an uninstrumented node with libtsan preloaded, under the suites that
# use threads: WaitThread's handoff between the JavaScript thread and its helper thread, the
# attached reactor (wait-thread and uv-poll routes), the loop watcher, worker threads, and caller
# memory written by another thread. Fails on any report. What it can and cannot see: docs/sanitizers.md.
#
#   npm run test:tsan -- dist/test/wait-thread.test.js   # other suites instead of the default list
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

npm run --silent build:tsan   # through npm: it hands node-gyp its configuration (nodedir, node-gyp itself)
npm run --silent build:ts

if [ $# -gt 0 ]; then
  suites=("$@")
else
  suites=(dist/test/wait-thread.test.js dist/test/loop-watcher.test.js dist/test/reactor.test.js
    dist/test/native-shared-memory.test.js dist/test/embedding.test.js dist/test/socket.test.js
    dist/test/selectors-contract.test.js)
fi

reports=$(mktemp -d "${TMPDIR:-/tmp}/iomux-tsan-XXXXXX")
output=$reports/mocha.out
trap 'rm -rf "$reports"' EXIT

# ignore_noninstrumented_modules: node and V8 are not instrumented, so their own memory accesses
# (through intercepted memcpy and the like) would be reported against nothing; only the addon's
# accesses count. The addon's own synchronisation (std::mutex, std::condition_variable, std::thread:
# pthread calls, which TSan intercepts) is seen.
export IOMUX_ADDON_PATH=$root/build-tsan/build/Release/iomux.node
export TSAN_OPTIONS="ignore_noninstrumented_modules=1:halt_on_error=1:second_deadlock_stack=1:log_path=$reports/tsan"

echo "== TSan: ${#suites[@]} suites, addon $IOMUX_ADDON_PATH"
# shellcheck source=run-suites.sh
. "$root/scripts/sanitizers/run-suites.sh"
run_suites tsan libtsan.so 'WARNING: ThreadSanitizer|ERROR: ThreadSanitizer'
