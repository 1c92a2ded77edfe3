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
export LD_PRELOAD
LD_PRELOAD=$(gcc -print-file-name=libtsan.so)
export IOMUX_ADDON_PATH=$root/build-tsan/build/Release/iomux.node
export TSAN_OPTIONS="ignore_noninstrumented_modules=1:halt_on_error=1:second_deadlock_stack=1:log_path=$reports/tsan"

echo "== TSan: ${#suites[@]} suites, addon $IOMUX_ADDON_PATH"
status=0
node node_modules/mocha/bin/mocha.js "${suites[@]}" 2>&1 | tee "$output" || status=$?
unset LD_PRELOAD

found=0
for report in "$reports"/tsan.*; do
  [ -e "$report" ] || continue
  found=1
  echo "== sanitizer report: $report"
  cat "$report"
done
if grep -qE 'WARNING: ThreadSanitizer|ERROR: ThreadSanitizer' "$output"; then
  found=1
  echo "== a sanitizer report in the test output (above)"
fi
if [ "$found" -ne 0 ] || [ "$status" -ne 0 ]; then
  echo "test:tsan FAILED (mocha exit status $status, sanitizer reports: $found)"
  exit 1
fi
echo "test:tsan: no sanitizer report"
