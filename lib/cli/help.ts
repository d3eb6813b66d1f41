/** --help text, built from the same option tables parseArgs uses. */
import type { Command, OptionSpec } from './command';

function optionLabel(name: string, spec: OptionSpec): string {
  const short = spec.short ? `-${spec.short}, ` : '';
  const value = spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : '';
  return `${short}--${name}${value}`;
}

export function commandHelp(command: Command): string {
  const lines = ['Usage:', ...command.usage.map((u) => `  p11 ${u}`), '', command.summary, ''];
  const entries = Object.entries(command.options);
  if (entries.length > 0) {
    const labels = entries.map(([name, spec]) => optionLabel(name, spec));
    const width = Math.min(30, Math.max(...labels.map((l) => l.length)) + 2);
    lines.push('Options:');
    entries.forEach(([, spec], i) => {
      const repeat = spec.multiple ? ' (repeatable)' : '';
      const label = labels[i];
      lines.push(label.length < width ? `  ${label.padEnd(width)}${spec.description}${repeat}` : `  ${label}\n  ${''.padEnd(width)}${spec.description}${repeat}`);
    });
    lines.push('');
  }
  if (command.details) lines.push(command.details.trimEnd(), '');
  return lines.join('\n');
}

export function mainHelp(commands: readonly Command[], version: string): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    `p11 ${version}: PKCS#11 tokens from the command line (pkcs11-napi)`,
    '',
    'Usage: p11 <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Tokens, keys and objects are named by PKCS#11 URIs (RFC 7512), e.g.',
    "  p11 objects 'pkcs11:token=demo;type=private'",
    "  p11 sign --key 'pkcs11:token=demo;object=ca-key' --in msg.txt",
    '',
    'The module comes from --module PATH, the URI\'s module-path, or $PKCS11_MODULE.',
    'The user PIN comes from --pin-source file:/path|env:NAME, $P11_PIN, or a prompt on the terminal.',
    'Every command takes --json and --help. Exit status: 0 ok, 1 failure, 2 usage error.',
    '',
    "Run 'p11 <command> --help' for a command's options.",
    '',
  ].join('\n');
}
