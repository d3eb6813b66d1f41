/**
 * From argv to a command and an exit status: finds the command ('ca init' takes two words),
 * handles --help, parses the options, refuses --pin, runs, and reports errors.
 */
import { ParsedArgs, parseCommandArgs } from './args';
import type { Command } from './command';
import { COMMANDS } from './commands';
import { commandHelp, mainHelp } from './help';
import { checkPinArgument } from './pin';
import { reportError } from './report';
import { EXIT_OK, EXIT_USAGE, UsageError } from './usage-error';

function version(): string {
  try {
    return (require('../../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The command named by the first one or two words, and the arguments after them. */
function findCommand(argv: string[]): { command: Command; rest: string[] } | undefined {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(' ');
    const command = COMMANDS.find((c) => c.name === name);
    if (command) return { command, rest: argv.slice(words) };
  }
  return undefined;
}

export async function dispatch(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === undefined) {
    process.stderr.write(mainHelp(COMMANDS, version()));
    return EXIT_USAGE;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    const target = argv.length > 1 ? findCommand(argv.slice(1)) : undefined;
    process.stdout.write(target ? commandHelp(target.command) : mainHelp(COMMANDS, version()));
    return EXIT_OK;
  }
  if (first === '--version' || first === '-V') {
    process.stdout.write(`${version()}\n`);
    return EXIT_OK;
  }
  const found = findCommand(argv);
  const json = argv.includes('--json');
  if (!found) return unknownCommand(argv, json);
  const { command, rest } = found;
  try {
    if (command.raw) return await command.run(new ParsedArgs(command, {}, rest));
    const args = parseCommandArgs(command, rest);
    if (args.flag('help')) {
      process.stdout.write(commandHelp(command));
      return EXIT_OK;
    }
    checkPinArgument(args);
    return await command.run(args);
  } catch (error) {
    return reportError(error, { json, command: command.name });
  }
}

/** 'ca' alone or with --help lists its subcommands; anything else is a usage error naming what exists. */
function unknownCommand(argv: string[], json: boolean): number {
  const first = argv[0];
  const family = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
  if (family.length > 0 && (argv[1] === undefined || argv[1] === '--help' || argv[1] === '-h')) {
    const asked = argv[1] !== undefined;
    (asked ? process.stdout : process.stderr).write(mainHelp(family, version()));
    return asked ? EXIT_OK : EXIT_USAGE;
  }
  const hint =
    family.length > 0
      ? `: did you mean ${family.map((c) => `'${c.name}'`).join(' or ')}?`
      : ` (commands: ${COMMANDS.map((c) => c.name).join(', ')})`;
  const shown = argv.slice(0, family.length > 0 ? 2 : 1).join(' ');
  return reportError(new UsageError(`unknown command '${shown}'${hint}`), { json });
}
