/** Every p11 command, in the order `p11 --help` lists them. */
import type { Command } from '../command';
import { benchCommand } from './bench';
import { caInitCommand } from './ca-init';
import { caIssueCommand } from './ca-issue';
import { crlCommand } from './crl';
import { infoCommand } from './info';
import { keygenCommand } from './keygen';
import { mechanismsCommand } from './mechanisms';
import { objectsCommand } from './objects';
import { randomCommand } from './random';
import { signCommand } from './sign';
import { slotsCommand } from './slots';
import { verifyCommand } from './verify';

export const COMMANDS: readonly Command[] = [
  infoCommand,
  slotsCommand,
  mechanismsCommand,
  objectsCommand,
  keygenCommand,
  signCommand,
  verifyCommand,
  randomCommand,
  caInitCommand,
  caIssueCommand,
  crlCommand,
  benchCommand,
];
