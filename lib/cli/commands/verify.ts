/** p11 verify: checks a signature with the key's public half on the token. Exit 0 valid, 1 invalid. */
import type { Command } from '../command';
import { MODULE_OPTIONS, OUTPUT_OPTIONS, PIN_OPTIONS } from '../command';
import { readFile, readInput } from '../files';
import { findPublicKey } from '../keys';
import { emit } from '../output';
import { decodeBytes } from '../encoding';
import { defaultMechanism, parseMechanism, signingInputFor } from '../sign-mechanisms';
import { parseUriArgument, withToken } from '../token';
import { EXIT_FAILURE, EXIT_OK, UsageError } from '../usage-error';
import { SIGN_OPTIONS } from './sign';

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'verify a signature with a public key on the token (exit 0 valid, 1 invalid)',
  usage: ['verify --key URI [--mechanism M] [--in FILE|-] [--hash] (--signature HEX|BASE64 | --sig-file FILE)'],
  options: {
    ...SIGN_OPTIONS,
    signature: { type: 'string', value: 'TEXT', description: 'the signature as hex or base64 text' },
    'sig-file': { type: 'string', value: 'FILE', description: 'the raw signature, as written by sign --out' },
    ...MODULE_OPTIONS,
    ...PIN_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  details: 'The key URI may name either half of the pair: the public key with the same label/id is used.',
  async run(args) {
    args.atMost(0);
    const uri = parseUriArgument(args.required('key'), '--key');
    const text = args.string('signature');
    const file = args.string('sig-file');
    if ((text === undefined) === (file === undefined)) throw new UsageError('give exactly one of --signature and --sig-file');
    const signature = text !== undefined ? decodeBytes(text, '--signature') : await readFile(file as string, 'signature');
    const data = await readInput(args.string('in'));

    const result = await withToken(args, uri, { login: true }, async ({ slot, session }) => {
      const key = await findPublicKey(session, uri);
      const name = args.string('mechanism') !== undefined ? parseMechanism(args.required('mechanism')) : defaultMechanism((await key.get(['keyType'])).keyType);
      const input = signingInputFor(slot, name, data, args.flag('hash'));
      return { mechanism: name, valid: await key.verify(input.mechanism, input.data, signature) };
    });
    emit(args, result, () => (result.valid ? 'signature valid' : 'signature INVALID'));
    return result.valid ? EXIT_OK : EXIT_FAILURE;
  },
};
