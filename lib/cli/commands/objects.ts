/** p11 objects: the token's objects (those the URI selects) with their URIs. */
import type { Template } from '../../template/template';
import type { Pkcs11Uri } from '../../uri/pkcs11-uri';
import type { Command } from '../command';
import { MODULE_OPTIONS, OUTPUT_OPTIONS, PIN_OPTIONS } from '../command';
import { emit } from '../output';
import { optionalUriArgument, withToken } from '../token';

const CLASS_OF_TYPE = { private: 'privateKey', public: 'publicKey', 'secret-key': 'secretKey', cert: 'certificate', data: 'data' } as const;

/** The URI's object attributes as a search template. */
function filter(uri: Pkcs11Uri | undefined): Template {
  if (!uri) return {};
  const { type, object, id } = uri.path;
  return { class: type ? CLASS_OF_TYPE[type] : undefined, label: object, id };
}

export const objectsCommand: Command = {
  name: 'objects',
  summary: 'list objects (class, label, id, key type) with their URIs',
  usage: ["objects [URI] [--public-only] [--module PATH] [--pin-source SRC] [--json]", "objects 'pkcs11:token=demo;type=private'"],
  options: {
    'public-only': { type: 'boolean', description: 'do not log in: list only public objects' },
    ...MODULE_OPTIONS,
    ...PIN_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  details: 'The URI selects the token and filters by type=, object= (label) and id=.',
  async run(args) {
    args.atMost(1);
    const uri = optionalUriArgument(args, 0, 'URI');
    const objects = await withToken(args, uri, { login: !args.flag('public-only') }, async ({ session }) => {
      const found = await session.find(filter(uri));
      return Promise.all(
        found.map(async (object) => {
          const a = await object.get(['class', 'label', 'id', 'keyType']);
          return { class: a.class, keyType: a.keyType, label: a.label ?? '', id: a.id ?? Buffer.alloc(0), uri: await object.uri() };
        }),
      );
    });
    emit(args, objects, () =>
      objects.length === 0
        ? 'no objects'
        : objects.flatMap((o) => [
            `${String(o.class).padEnd(12)}${String(o.keyType ?? '-').padEnd(10)}${o.label || '(no label)'}  id=${o.id.toString('hex') || '-'}`,
            `  ${o.uri}`,
          ]),
    );
    return 0;
  },
};
