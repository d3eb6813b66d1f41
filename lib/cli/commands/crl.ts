/**
 * p11 crl: revoke serials and sign a CRL with the CA key on the token. Revocations live in the
 * CA's memory, so they are carried between runs by --state FILE (with the CRL number).
 */
import { CertificateAuthority } from '../../ca/authority';
import type { RevocationReason } from '../../ca/crl';
import { normalizeSerial } from '../../ca/serials';
import { readCaFile } from '../ca-files';
import { withCaKey } from '../ca-key';
import type { Command } from '../command';
import { MODULE_OPTIONS, OUTPUT_OPTIONS, PIN_OPTIONS } from '../command';
import { loadCrlState, saveCrlState } from '../crl-state';
import { writeFileAtomic } from '../files';
import { emit, note } from '../output';
import { UsageError } from '../usage-error';

const REASONS: readonly RevocationReason[] = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
  'aACompromise',
];

/** 'SERIAL[:reason]'. Serials may be written with colons (openssl style), so only a known reason after the last colon counts. */
export function parseRevoke(text: string): { serial: string; reason: RevocationReason } {
  const colon = text.lastIndexOf(':');
  const tail = colon >= 0 ? text.slice(colon + 1) : '';
  const reason = REASONS.find((r) => r.toLowerCase() === tail.toLowerCase());
  const serialText = (reason ? text.slice(0, colon) : text).replace(/^0x/i, '');
  try {
    return { serial: normalizeSerial(serialText).toString('hex'), reason: reason ?? 'unspecified' };
  } catch (error) {
    throw new UsageError(`--revoke '${text}': ${(error as Error).message} (reasons: ${REASONS.join(', ')})`);
  }
}

export const crlCommand: Command = {
  name: 'crl',
  summary: 'revoke certificates and sign a CRL with the CA key on the token',
  usage: ['crl --ca-cert ca.pem --key URI [--revoke SERIAL[:reason]]... [--state FILE] [--hours N] [--out crl.pem]'],
  options: {
    'ca-cert': { type: 'string', value: 'FILE', description: "the CA's certificate (PEM)" },
    key: { type: 'string', value: 'URI', description: "the CA's private key" },
    revoke: { type: 'string', multiple: true, value: 'SERIAL[:R]', description: `revoke a serial (hex), reason R one of ${REASONS.join(', ')}` },
    state: { type: 'string', value: 'FILE', description: 'JSON file keeping revocations and the CRL number between runs' },
    hours: { type: 'string', value: 'N', description: 'hours until nextUpdate (default 168)' },
    out: { type: 'string', value: 'FILE', description: 'write the CRL PEM to FILE (default: stdout)' },
    ...MODULE_OPTIONS,
    ...PIN_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  details: 'Without --state, earlier revocations are forgotten and every CRL is number 1.',
  async run(args) {
    args.atMost(0);
    const caFile = await readCaFile(args.required('ca-cert'));
    const revokes = args.all('revoke').map(parseRevoke);
    const hours = args.integer('hours', 24 * 7, 1, 24 * 3650);
    const statePath = args.string('state');
    if (statePath === undefined) note(args, 'p11: note: no --state: earlier revocations are not included and the CRL number is 1');
    const state = await loadCrlState(statePath);

    const { crl, revocations } = await withCaKey(args, async (signer) => {
      const ca = await CertificateAuthority.load({ signer, certificate: caFile.certificate, chain: caFile.chain, revocations: state.revocations, lastCrlNumber: state.lastCrlNumber });
      for (const { serial, reason } of revokes) ca.revoke(serial, { reason });
      return { crl: await ca.issueCrl({ validityHours: hours }), revocations: ca.revocations };
    });
    // The state is saved only once the CRL is signed, so a failed run changes nothing.
    if (statePath !== undefined) await saveCrlState(statePath, { revocations, lastCrlNumber: crl.crlNumber });
    const out = args.string('out');
    const result = {
      crlNumber: crl.crlNumber,
      thisUpdate: crl.thisUpdate.toISOString(),
      nextUpdate: crl.nextUpdate.toISOString(),
      revoked: revocations.map((r) => ({ serial: r.serial, reason: r.reason, date: r.date.toISOString() })),
      out,
      pem: crl.pem,
    };
    if (out !== undefined) {
      await writeFileAtomic(out, crl.pem);
      note(args, `CRL number ${crl.crlNumber} with ${revocations.length} revoked serial(s), wrote ${out}`);
      emit(args, result, () => []);
    } else {
      emit(args, result, () => crl.pem);
    }
    return 0;
  },
};
