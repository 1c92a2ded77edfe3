#!/usr/bin/env bash
# npm run test:asan: the addon built with AddressSanitizer and UndefinedBehaviorSanitizer
# (build-asan/, build/ untouched), loaded through IOMUX_ADDON_PATH by an uninstrumented node with
# libasan preloaded, under the suites that drive the native layer, plus 50,000 random calls.
# Fails on any report, from the test process or from any child it starts. docs/sanitizers.md.
#
#   IOMUX_RANDOM_CALLS=200000 npm run test:asan    # a longer random pass
#   npm run test:asan -- dist/test/reactor.test.js # other suites instead of the default list
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

npm run --silent build:asan   # through npm: it hands node-gyp its configuration (nodedir, node-gyp itself)
npm run --silent build:ts

# The suites over the native layer: native, selectors, reactor (with its helper threads), sockets,
# the echo server and the stream layer. Left out: test/allocations (its own LD_PRELOAD allocation
# counter cannot stack with ASan's allocator), echo-memory (RSS bounds, which ASan's shadow memory
# and quarantine make meaningless) and echo-seed-client (a python3 client under strace); the rest
# drive the same bindings through the CLI, the benchmark and external clients.
if [ $# -gt 0 ]; then
  suites=("$@")
else
  suites=(dist/test/native-*.test.js dist/test/selectors*.test.js dist/test/reactor.test.js
    dist/test/wait-thread.test.js dist/test/loop-watcher.test.js dist/test/socket.test.js
    dist/test/echo.test.js dist/test/embedding.test.js dist/test/stream-*.test.js dist/test/tls-cert.test.js)
fi

reports=$(mktemp -d "${TMPDIR:-/tmp}/iomux-asan-XXXXXX")
output=$reports/mocha.out
trap 'rm -rf "$reports"' EXIT

# Every process the tests start inherits these, so a report in a child node is caught as well: ASan
# and LSan write theirs to $reports/asan.<pid>; UBSan (gcc 12 sends it to stderr whatever log_path
# says) halts the process, so the test that started it fails, and its text is searched for below.
# Leak checking is on in node processes only (include_if_exists reads $reports/<program>.options):
# the shells and tools some tests run get libasan too, and their exit-time leaks are not ours.
echo detect_leaks=1 > "$reports/node.options"
export IOMUX_ADDON_PATH=$root/build-asan/build/Release/iomux.node
export ASAN_OPTIONS="detect_leaks=0:include_if_exists=$reports/%b.options:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$reports/asan"
export LSAN_OPTIONS="suppressions=$root/test/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export IOMUX_RANDOM_CALLS=${IOMUX_RANDOM_CALLS:-50000}

echo "== ASan+UBSan: ${#suites[@]} suites, $IOMUX_RANDOM_CALLS random calls, addon $IOMUX_ADDON_PATH"
# shellcheck source=run-suites.sh
. "$root/scripts/sanitizers/run-suites.sh"
run_suites asan libasan.so 'runtime error:|ERROR: (Address|Leak|UndefinedBehavior)Sanitizer'
