'use strict';

/**
 * Jest configuration for pkcs11-napi.
 *
 * Tests run against a real SoftHSM2 token that each test file creates in a
 * fresh temp dir (see test/support/softhsm.ts); nothing is mocked.
 *
 * ts-jest transpiles each file on its own (tsconfig.test.json sets
 * "isolatedModules": true, which is the ts-jest 29 way of asking for the fast
 * transpile-only path), so type errors are not reported by jest itself; run
 * `tsc -p tsconfig.test.json` for a full type-check of lib/ and test/.
 *
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  moduleFileExtensions: ['ts', 'js', 'json', 'node'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }],
  },
  // HSM operations (key generation, token init) can be slow on loaded CI boxes.
  testTimeout: 60000,
  // Each worker loads the PKCS#11 module and its own SoftHSM2 token; keep the
  // parallelism modest so CI machines are not oversubscribed.
  maxWorkers: 2,
  // A fresh worker process for every test file. PKCS#11 initialisation is process-wide (and
  // SoftHSM2 reads its token directory at C_Initialize): a file that leaves the module shared or
  // initialised on purpose (the fault tests do) must not hand that state to the next file, whose
  // token lives elsewhere. A limit this small makes jest recycle the worker after each file.
  workerIdleMemoryLimit: '1MB',
  reporters: ['default', '<rootDir>/test/support/plain-summary-reporter.js'],
};
