/** p11 random N: N bytes from the token's generator (C_GenerateRandom). */
import type { Command } from '../command';
import { MODULE_OPTIONS, OUTPUT_OPTIONS } from '../command';
import { toInteger } from '../args';
import { writeFileAtomic } from '../files';
import { emit, note } from '../output';
import { checkFormat, encodeBytes } from '../encoding';
import { optionalUriArgument, withToken } from '../token';
import { UsageError } from '../usage-error';

const MAX_BYTES = 1 << 20;

export const randomCommand: Command = {
  name: 'random',
  summary: "random bytes from the token's generator",
  usage: ['random N [TOKEN-URI] [--format hex|base64] [--out FILE]'],
  options: {
    format: { type: 'string', value: 'F', description: 'printed form: hex (default) or base64' },
    out: { type: 'string', value: 'FILE', description: 'write the raw bytes to FILE instead' },
    ...MODULE_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  async run(args) {
    args.atMost(2);
    const count = args.positional(0);
    if (count === undefined) throw new UsageError('random needs the number of bytes, e.g. p11 random 32');
    const length = toInteger('N', count, 1, MAX_BYTES);
    const format = checkFormat(args.string('format') ?? 'hex');
    const uri = optionalUriArgument(args, 1);
    const bytes = await withToken(args, uri, { login: false }, ({ session }) => session.random(length));
    const out = args.string('out');
    if (out !== undefined) {
      await writeFileAtomic(out, bytes);
      note(args, `wrote ${length} random bytes to ${out}`);
      emit(args, { bytes: length, out }, () => []);
      return 0;
    }
    const encoded = encodeBytes(bytes, format);
    emit(args, { bytes: length, format, value: encoded }, () => encoded);
    return 0;
  },
};
