#!/usr/bin/env bash
# The whole test suite, as README.md and .ci/run give it: Debian packages the
# tests need, the native suite, then the same bridge tests with Windows DLLs under
# Wine. Ends with one line adding up both runs.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh || exit 1
export ISAPI_TEST_SUMMARY_DIR
ISAPI_TEST_SUMMARY_DIR=$(mktemp -d)
trap 'rm -rf "$ISAPI_TEST_SUMMARY_DIR"' EXIT

rc=0
npm test || rc=1
npm run test:wine || rc=1

node -e '
  const fs = require("fs"), path = require("path"), dir = process.argv[1];
  const t = { passed: 0, failed: 0, skipped: 0 };
  for (const f of fs.readdirSync(dir)) {
    const c = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
    for (const k of Object.keys(t)) t[k] += c[k];
  }
  console.log(`\nall: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
' "$ISAPI_TEST_SUMMARY_DIR"
exit "$rc"
