// Prints one plain closing line, "tests: N passed, N failed, N skipped", that any
// CI can read, after jest's own summary. With ISAPI_TEST_SUMMARY_DIR set it also
// leaves the counts there, so scripts/test-all.sh can add up several jest runs.
const fs = require('node:fs');
const path = require('node:path');

class SummaryReporter {
  onRunComplete(_contexts, results) {
    const counts = {
      passed: results.numPassedTests,
      failed: results.numFailedTests + results.numRuntimeErrorTestSuites,
      skipped: results.numPendingTests + results.numTodoTests,
    };
    process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
    const dir = process.env.ISAPI_TEST_SUMMARY_DIR;
    if (dir) fs.writeFileSync(path.join(dir, `${process.pid}-${Date.now()}.json`), JSON.stringify(counts));
  }
}
module.exports = SummaryReporter;
