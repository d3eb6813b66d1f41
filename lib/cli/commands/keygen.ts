/** p11 keygen: key pairs and secret keys on the token, with the safe defaults of generateKeyPair. */
import { randomBytes } from 'crypto';

import { generateKey, generateKeyPair } from '../../keys/generate';
import type { Session } from '../../session/session';
import type { Command } from '../command';
import { MODULE_OPTIONS, OUTPUT_OPTIONS, PIN_OPTIONS } from '../command';
import { KEY_TYPES, KeySpec } from '../key-types';
import { emit } from '../output';
import { Progress } from '../progress';
import { optionalUriArgument, withToken } from '../token';
import { UsageError } from '../usage-error';

interface NewKey {
  type: string;
  label: string;
  id: string;
  privateKey?: string;
  publicKey?: string;
  secretKey?: string;
}

async function generate(session: Session, type: string, spec: KeySpec, label: string, id: Buffer): Promise<NewKey> {
  const result: NewKey = { type, label, id: id.toString('hex') };
  if ('pair' in spec) {
    const pair = await generateKeyPair(session, spec.pair, { label, id });
    result.privateKey = await pair.privateKey.uri();
    result.publicKey = await pair.publicKey.uri();
  } else {
    result.secretKey = await (await generateKey(session, spec.secret, { label, id })).uri();
  }
  return result;
}

function parseId(hex: string | undefined): Buffer | undefined {
  if (hex === undefined) return undefined;
  const clean = hex.replace(/:/g, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(clean)) throw new UsageError(`--id must be hex bytes, got '${hex}'`);
  return Buffer.from(clean, 'hex');
}

export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'generate a key pair or secret key on the token',
  usage: [`keygen [TOKEN-URI] --type TYPE --label LABEL [--id HEX] [--count N]`],
  options: {
    type: { type: 'string', value: 'TYPE', description: Object.keys(KEY_TYPES).join('|') },
    label: { type: 'string', value: 'LABEL', description: 'CKA_LABEL of the new key(s); with --count N, LABEL-1 ... LABEL-N' },
    id: { type: 'string', value: 'HEX', description: 'CKA_ID shared by both halves (default: 16 random bytes)' },
    count: { type: 'string', value: 'N', description: 'generate N keys (progress on stderr)' },
    ...MODULE_OPTIONS,
    ...PIN_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  details: 'Private and secret keys are sensitive and non-extractable. Prints the new objects\' URIs.',
  async run(args) {
    args.atMost(1);
    const type = args.required('type');
    const spec = Object.prototype.hasOwnProperty.call(KEY_TYPES, type) ? KEY_TYPES[type] : undefined;
    if (!spec) throw new UsageError(`unknown --type '${type}' (one of ${Object.keys(KEY_TYPES).join(', ')})`);
    const label = args.required('label');
    const count = args.integer('count', 1, 1, 100_000);
    const id = parseId(args.string('id'));
    if (id && count > 1) throw new UsageError('--id names one key; it cannot be combined with --count');
    const uri = optionalUriArgument(args, 0);

    const keys = await withToken(args, uri, { login: true }, async ({ session }) => {
      const progress = new Progress(`keygen ${type}`, count);
      const made: NewKey[] = [];
      try {
        for (let i = 1; i <= count; i++) {
          const name = count === 1 ? label : `${label}-${i}`;
          made.push(await generate(session, type, spec, name, id ?? randomBytes(16)));
          progress.tick();
        }
      } finally {
        progress.finish();
      }
      return made;
    });
    emit(args, count === 1 ? keys[0] : keys, () =>
      keys.flatMap((k) => [k.privateKey, k.publicKey, k.secretKey].filter((u): u is string => u !== undefined)),
    );
    return 0;
  },
};
