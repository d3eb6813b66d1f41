#!/usr/bin/env node
/**
 * p11: the pkcs11-napi command line. `p11 --help` lists the commands; see dispatch.ts for how
 * a command line becomes an exit status (0 ok, 1 failure, 2 usage error).
 */
import { dispatch } from './dispatch';

dispatch(process.argv.slice(2)).then(
  (status) => {
    // exitCode (not exit()) lets pending stdout writes reach a pipe before the process ends.
    process.exitCode = status;
  },
  (error: unknown) => {
    process.stderr.write(`p11: internal error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
