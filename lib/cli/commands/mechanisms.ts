/** p11 mechanisms: the token's mechanisms with key sizes and capability flags. */
import type { Command } from '../command';
import { MODULE_OPTIONS, OUTPUT_OPTIONS } from '../command';
import { MECHANISM_FLAGS, flagNames } from '../describe';
import { emit } from '../output';
import { optionalUriArgument, selectSlot, withModule } from '../token';

export const mechanismsCommand: Command = {
  name: 'mechanisms',
  summary: "list the token's mechanisms, key sizes and flags",
  usage: ['mechanisms [TOKEN-URI] [--module PATH] [--json]'],
  options: { ...MODULE_OPTIONS, ...OUTPUT_OPTIONS },
  async run(args) {
    args.atMost(1);
    const uri = optionalUriArgument(args, 0);
    return withModule(args, uri, (module) => {
      const mechanisms = selectSlot(module, uri)
        .mechanisms()
        .map((m) => ({
          name: m.name,
          type: m.type,
          minKeySize: m.info.minKeySize,
          maxKeySize: m.info.maxKeySize,
          flags: flagNames(m.info.flags, MECHANISM_FLAGS),
        }));
      emit(args, mechanisms, () => {
        const width = Math.max(...mechanisms.map((m) => m.name.length)) + 2;
        return mechanisms.map((m) => `${m.name.padEnd(width)}${`${String(m.minKeySize)}-${String(m.maxKeySize)}`.padEnd(14)}${m.flags.join(',')}`);
      });
      return 0;
    });
  },
};
