#!/usr/bin/env bash
# npm run test:valgrind: Valgrind's memcheck over the native suites and a random-call pass, with the
# normal build (build/Release: no recompilation, so it checks exactly what ships). Slower than
# test:asan by far and not run in CI; docs/sanitizers.md says what each catches.
#
#   IOMUX_VALGRIND_CALLS=5000 npm run test:valgrind     # a longer random pass (default 1000)
#   npm run test:valgrind -- dist/test/native-writev.test.js
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

command -v valgrind > /dev/null || { echo "test:valgrind needs valgrind (apt-get install valgrind)"; exit 1; }
npm run --silent build:native > /dev/null
npm run --silent build:ts

# The native suites, but native-shared-memory: memcheck runs one thread at a time, and that test's
# worker spins flipping a descriptor as fast as it can (test:asan and test:tsan run it).
if [ $# -gt 0 ]; then
  suites=("$@")
else
  suites=()
  for suite in dist/test/native-*.test.js; do
    [ "$suite" = dist/test/native-shared-memory.test.js ] || suites+=("$suite")
  done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/iomux-valgrind-XXXXXX")
trap 'rm -rf "$work"' EXIT

# --jitless: V8 interprets instead of writing machine code at run time, which memcheck would have
# to re-translate on every change (and which makes it slower still). Only this process is
# checked (children, such as the suites' random-call pass, run natively): the random calls get a
# pass of their own below. Leaks are LeakSanitizer's job in test:asan: memcheck cannot tell V8's
# heap from a leak without a long suppression list.
memcheck=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=no --track-origins=yes
  --suppressions="$root/test/sanitizers/valgrind.supp" --num-callers=30)
export IOMUX_RANDOM_CALLS=${IOMUX_RANDOM_CALLS:-1000}

echo "== memcheck: ${#suites[@]} suites"
status=0
"${memcheck[@]}" --log-file="$work/suites.%p" node --jitless node_modules/mocha/bin/mocha.js "${suites[@]}" || status=$?

calls=${IOMUX_VALGRIND_CALLS:-1000}
echo "== memcheck: $calls random calls (test/fixtures/random-calls)"
mkdir "$work/random"
(cd "$work/random" && "${memcheck[@]}" --log-file="$work/random.%p" node --jitless "$root/dist/test/fixtures/random-calls.js" calls.log "$calls" < /dev/null) || status=$?
tail -n 1 "$work/random/calls.log"

# One log per process: a fork that goes on to exec another program (a test's child node, which
# runs natively) leaves a log with no summary; every process memcheck followed to its end has one.
errors=0
checked=0
for log in "$work"/suites.* "$work"/random.*; do
  summary=$(grep -E 'ERROR SUMMARY' "$log" | tail -n 1 || true)
  [ -n "$summary" ] || continue
  checked=$((checked + 1))
  echo "$(basename "$log"): ${summary#==*== }"
  if ! grep -q 'ERROR SUMMARY: 0 errors' <<< "$summary"; then errors=1; cat "$log"; fi
done
[ "$checked" -ge 2 ] || { echo "expected the mocha process and the random pass to be checked, found $checked"; errors=1; }
if [ "$status" -ne 0 ] || [ "$errors" -ne 0 ]; then
  echo "test:valgrind FAILED (exit status $status)"
  exit 1
fi
echo "test:valgrind: no memcheck error"
