/** p11 slots: every slot, its token and the token's URI. */
import type { Command } from '../command';
import { MODULE_OPTIONS, OUTPUT_OPTIONS } from '../command';
import { slotSummary } from '../describe';
import { emit } from '../output';
import { withModule } from '../token';

export const slotsCommand: Command = {
  name: 'slots',
  summary: 'list the slots and their tokens, with token URIs',
  usage: ['slots [--all] [--module PATH] [--json]'],
  options: {
    all: { type: 'boolean', description: 'include slots without a token' },
    ...MODULE_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  async run(args) {
    args.atMost(0);
    return withModule(args, undefined, (module) => {
      const slots = module.slots({ tokenPresent: !args.flag('all') }).map(slotSummary);
      emit(args, slots, () =>
        slots.flatMap((s) => [
          `Slot ${String(s.id)}: ${s.description}`,
          s.token
            ? `  token '${s.token.label}' (${s.token.manufacturer} ${s.token.model}, serial ${s.token.serial})${s.token.flags.includes('tokenInitialized') ? '' : ' [not initialised]'}`
            : '  no token',
          ...(s.uri ? [`  ${s.uri}`] : []),
        ]),
      );
      return 0;
    });
  },
};
