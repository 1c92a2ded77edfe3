# Sourced by asan.sh and tsan.sh: runs mocha on "${suites[@]}" with the sanitizer preloaded, then fails
# on a non-zero exit or on any report, whether written to $reports/<kind>.<pid> by any process the tests
# started or printed into the test output (a report in a child whose stderr a test passes through).
#   run_suites <kind: asan|tsan> <runtime library> <pattern of a report in the output>
run_suites() {
  local kind=$1 library=$2 pattern=$3 status=0 found=0 report
  LD_PRELOAD=$(gcc -print-file-name="$library") node node_modules/mocha/bin/mocha.js "${suites[@]}" 2>&1 \
    | tee "$output" || status=$?
  for report in "$reports/$kind".*; do
    [ -e "$report" ] || continue
    found=1
    echo "== sanitizer report: $report"
    cat "$report"
  done
  if grep -qE "$pattern" "$output"; then
    found=1
    echo "== a sanitizer report in the test output (above)"
  fi
  if [ "$found" -ne 0 ] || [ "$status" -ne 0 ]; then
    echo "test:$kind FAILED (mocha exit status $status, sanitizer reports: $found)"
    exit 1
  fi
  echo "test:$kind: no sanitizer report"
}
