#!/usr/bin/env bash
# Prints the slowest tests of the last `make unit` run, from nextest's JUnit report
# (target/nextest/default/junit.xml), so a growing suite's cost stays visible in CI's log.
#
#   scripts/slowest-tests.sh [N]     the N slowest (default 15)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# nextest keeps its reports under the workspace (its store.dir), whatever CARGO_TARGET_DIR says.
REPORT="$ROOT/target/nextest/default/junit.xml"
N="${1:-15}"
if [ ! -f "$REPORT" ]; then
  echo "slowest-tests: no report at $REPORT (run make unit with cargo-nextest first)" >&2
  exit 0
fi
python3 - "$REPORT" "$N" <<'PY'
import sys
import xml.etree.ElementTree as ET

report, n = sys.argv[1], int(sys.argv[2])
cases = []
for suite in ET.parse(report).getroot().iter("testsuite"):
    for case in suite.iter("testcase"):
        cases.append((float(case.get("time", "0")), suite.get("name", "?"), case.get("name", "?")))
cases.sort(reverse=True)
total = sum(t for t, _, _ in cases)
print(f"slowest {min(n, len(cases))} of {len(cases)} tests (sum of test times {total:.0f} s):")
for t, suite, name in cases[:n]:
    print(f"  {t:7.1f} s  {suite} {name}")
PY
