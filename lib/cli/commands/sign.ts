/** p11 sign: a signature with a token key, printed as hex/base64 or written raw to --out. */
import type { Command } from '../command';
import { MODULE_OPTIONS, OUTPUT_OPTIONS, PIN_OPTIONS } from '../command';
import { readInput, writeFileAtomic } from '../files';
import { findPrivateKey } from '../keys';
import { emit, note } from '../output';
import { Progress } from '../progress';
import { checkFormat, encodeBytes } from '../encoding';
import { SIGN_MECHANISMS, defaultMechanism, parseMechanism, signingInputFor } from '../sign-mechanisms';
import { parseUriArgument, withToken } from '../token';
import { UsageError } from '../usage-error';

export const SIGN_OPTIONS = {
  key: { type: 'string', value: 'URI', description: "the key, e.g. 'pkcs11:token=demo;object=ca-key'" },
  mechanism: { type: 'string', value: 'M', description: `${SIGN_MECHANISMS.join('|')} (default by key type)` },
  in: { type: 'string', value: 'FILE', description: "the data to sign ('-' or absent: stdin)" },
  hash: { type: 'boolean', description: 'hash the input (SHA-256) here and send only the digest to the token' },
} as const;

export const signCommand: Command = {
  name: 'sign',
  summary: 'sign data with a private key on the token',
  usage: ['sign --key URI [--mechanism M] [--in FILE|-] [--hash] [--out FILE] [--format hex|base64] [--count N]'],
  options: {
    ...SIGN_OPTIONS,
    out: { type: 'string', value: 'FILE', description: 'write the raw signature to FILE instead of printing it' },
    format: { type: 'string', value: 'F', description: 'printed form: hex (default) or base64' },
    count: { type: 'string', value: 'N', description: 'sign N times, one signature per line (progress on stderr)' },
    ...MODULE_OPTIONS,
    ...PIN_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  details: 'ecdsa takes a digest as input; ecdsa-sha256, rsa-* and eddsa take the message. ECDSA signatures are raw r||s.',
  async run(args) {
    args.atMost(0);
    const uri = parseUriArgument(args.required('key'), '--key');
    const count = args.integer('count', 1, 1, 10_000_000);
    const out = args.string('out');
    if (out !== undefined && count > 1) throw new UsageError('--out holds one signature; it cannot be combined with --count');
    const format = checkFormat(args.string('format') ?? 'hex');
    const data = await readInput(args.string('in'));

    const result = await withToken(args, uri, { login: true }, async ({ slot, session }) => {
      const key = await findPrivateKey(session, uri);
      const name = args.string('mechanism') !== undefined ? parseMechanism(args.required('mechanism')) : defaultMechanism((await key.get(['keyType'])).keyType);
      const input = signingInputFor(slot, name, data, args.flag('hash'));
      const progress = new Progress('sign', count);
      const signatures: Buffer[] = [];
      const started = process.hrtime.bigint();
      try {
        for (let i = 0; i < count; i++) {
          signatures.push(await key.sign(input.mechanism, input.data));
          progress.tick();
        }
      } finally {
        progress.finish();
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      return { mechanism: name, signatures, seconds };
    });

    if (out !== undefined) {
      await writeFileAtomic(out, result.signatures[0]);
      note(args, `wrote ${result.signatures[0].length}-byte ${result.mechanism} signature to ${out}`);
      emit(args, { mechanism: result.mechanism, out, bytes: result.signatures[0].length }, () => []);
      return 0;
    }
    const encoded = result.signatures.map((s) => encodeBytes(s, format));
    const json =
      count === 1
        ? { mechanism: result.mechanism, signature: encoded[0], format }
        : { mechanism: result.mechanism, signatures: encoded, format, seconds: result.seconds, perSecond: count / result.seconds };
    emit(args, json, () => encoded);
    return 0;
  },
};
