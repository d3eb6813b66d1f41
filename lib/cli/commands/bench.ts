/**
 * p11 bench: runs the benchmark (dist/bench/cli.js, built from bench/) with the remaining
 * arguments. It lives outside the library, so an installation may not have it.
 */
import { spawn } from 'child_process';
import { existsSync } from 'fs';
import { constants } from 'os';
import * as path from 'path';

import type { Command } from '../command';
import { OUTPUT_OPTIONS } from '../command';
import { commandHelp } from '../help';
import { EXIT_FAILURE } from '../usage-error';

// dist/lib/cli/commands/bench.js -> dist/bench/cli.js
export const BENCH_CLI = path.resolve(__dirname, '../../../bench/cli.js');

export const benchCommand: Command = {
  name: 'bench',
  summary: 'measure signing throughput (runs the pkcs11-napi benchmark)',
  usage: ['bench [benchmark options...]'],
  options: OUTPUT_OPTIONS,
  raw: true,
  details: "Every argument goes to the benchmark; its own options follow below when it is installed. Progress is shown on stderr.",
  run(args) {
    const argv = args.positionals;
    const help = argv.includes('--help') || argv.includes('-h');
    if (help) process.stdout.write(commandHelp(benchCommand));
    if (!existsSync(BENCH_CLI)) {
      if (help) return Promise.resolve(0);
      process.stderr.write(`p11: error: the benchmark is unavailable in this installation (${BENCH_CLI} not found; run 'npm run build:ts' in a source checkout)\n`);
      return Promise.resolve(EXIT_FAILURE);
    }
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [BENCH_CLI, ...argv], { stdio: 'inherit' });
      // Ctrl-C reaches the child through the terminal; we only wait for it.
      const ignore = () => undefined;
      process.on('SIGINT', ignore);
      child.on('error', (error) => {
        process.stderr.write(`p11: error: cannot run the benchmark: ${error.message}\n`);
        resolve(EXIT_FAILURE);
      });
      child.on('exit', (code, signal) => {
        process.removeListener('SIGINT', ignore);
        // A child killed by a signal exits the shell way: 128 + the signal number.
        resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : EXIT_FAILURE));
      });
    });
  },
};
