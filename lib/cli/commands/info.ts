/** p11 info: the module's C_GetInfo, and the selected token's info when a URI is given. */
import type { Command } from '../command';
import { MODULE_OPTIONS, OUTPUT_OPTIONS } from '../command';
import { fields, emit } from '../output';
import { tokenSummary, version } from '../describe';
import { optionalUriArgument, selectSlot, withModule } from '../token';

export const infoCommand: Command = {
  name: 'info',
  summary: 'show the PKCS#11 module (and, given a URI, the token) information',
  usage: ['info [TOKEN-URI] [--module PATH] [--json]'],
  options: { ...MODULE_OPTIONS, ...OUTPUT_OPTIONS },
  async run(args) {
    args.atMost(1);
    const uri = optionalUriArgument(args, 0);
    return withModule(args, uri, (module) => {
      const info = module.info();
      const result = {
        modulePath: module.path,
        cryptokiVersion: version(info.cryptokiVersion),
        manufacturer: info.manufacturerID.trimEnd(),
        library: info.libraryDescription.trimEnd(),
        libraryVersion: version(info.libraryVersion),
        token: uri ? { ...tokenSummary(selectSlot(module, uri).tokenInfo()) } : undefined,
      };
      emit(args, result, () => [
        ...fields([
          ['Module', result.modulePath],
          ['Cryptoki', result.cryptokiVersion],
          ['Manufacturer', result.manufacturer],
          ['Library', `${result.library} ${result.libraryVersion}`],
        ]),
        ...(result.token
          ? fields([
              ['Token', result.token.label],
              ['Token model', `${result.token.manufacturer} ${result.token.model}`],
              ['Token serial', result.token.serial],
              ['Token flags', result.token.flags.join(' ')],
            ])
          : []),
      ]);
      return 0;
    });
  },
};
