'use strict';

const fs = require('fs');

/**
 * Minimal Jest reporter that prints a single machine-readable line on stdout
 * once the whole run has finished, e.g.
 *
 *   12 passed, 0 failed
 *   12 passed, 1 failed, 3 skipped
 *
 * CI parses this line, so keep the format stable. Counts come from the
 * aggregated results: numPassedTests, numFailedTests and numPendingTests
 * (the ", K skipped" part only appears when K > 0).
 *
 * Jest always appends its own SummaryReporter ("Test Suites: ...") after every
 * custom reporter, so printing from onRunComplete would not be the last line.
 * Outside watch mode the line is therefore written synchronously when the
 * process exits, which makes it the final line of the run's output. In watch
 * mode (the process never exits) it is printed straight away.
 */
class PlainSummaryReporter {
  constructor(globalConfig, reporterOptions) {
    this._globalConfig = globalConfig || {};
    this._options = reporterOptions || {};
    this._pendingLine = null;
    this._exitHookInstalled = false;
  }

  onRunComplete(_testContexts, results) {
    const passed = results.numPassedTests || 0;
    const failed = results.numFailedTests || 0;
    const skipped = results.numPendingTests || 0;
    let line = `${passed} passed, ${failed} failed`;
    if (skipped > 0) line += `, ${skipped} skipped`;

    if (this._globalConfig.watch || this._globalConfig.watchAll) {
      fs.writeSync(1, `${line}\n`);
      return;
    }
    this._pendingLine = line;
    if (!this._exitHookInstalled) {
      this._exitHookInstalled = true;
      process.once('exit', () => {
        if (this._pendingLine !== null) fs.writeSync(1, `${this._pendingLine}\n`);
      });
    }
  }
}

module.exports = PlainSummaryReporter;
