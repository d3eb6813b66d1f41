/** p11 ca issue: an end-entity certificate from a CSR, signed by the CA key on the token. */
import { CertificateAuthority } from '../../ca/authority';
import { verifyCsr } from '../../ca/csr';
import { PROFILES, ProfileName } from '../../ca/profiles';
import { readCaFile } from '../ca-files';
import { withCaKey } from '../ca-key';
import type { Command } from '../command';
import { MODULE_OPTIONS, OUTPUT_OPTIONS, PIN_OPTIONS } from '../command';
import { readFile, writeFileAtomic } from '../files';
import { emit, note } from '../output';
import { mergeSans, parseSans } from '../sans';
import { UsageError } from '../usage-error';

export const caIssueCommand: Command = {
  name: 'ca issue',
  summary: 'issue a certificate for a CSR with the CA key on the token',
  usage: ['ca issue --ca-cert ca.pem --key URI --csr req.pem [--profile P] [--san dns:x,ip:1.2.3.4,uri:spiffe://...] [--out leaf.pem]'],
  options: {
    'ca-cert': { type: 'string', value: 'FILE', description: "the CA's certificate (PEM, followed by its issuers if any)" },
    key: { type: 'string', value: 'URI', description: "the CA's private key" },
    csr: { type: 'string', value: 'FILE', description: 'the PKCS#10 request (PEM or DER); its signature is checked' },
    profile: { type: 'string', value: 'P', description: `${Object.keys(PROFILES).join('|')} (default tls-server)` },
    san: { type: 'string', multiple: true, value: 'LIST', description: 'subjectAltNames: dns:NAME, ip:ADDR, uri:URI, email:ADDR, comma-separated' },
    'csr-sans': { type: 'boolean', description: "also assert the SANs the CSR asks for (default: only --san's)" },
    subject: { type: 'string', value: 'DN', description: "the certificate's subject (default: the CSR's)" },
    days: { type: 'string', value: 'N', description: "validity in days (default: the profile's)" },
    out: { type: 'string', value: 'FILE', description: 'write the certificate (and intermediates) PEM to FILE (default: stdout)' },
    ...MODULE_OPTIONS,
    ...PIN_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  details: 'The CA never copies SANs from the CSR unless --csr-sans says so: what a certificate asserts is your decision.',
  async run(args) {
    args.atMost(0);
    const caFile = await readCaFile(args.required('ca-cert'));
    const csrBytes = await readFile(args.required('csr'), 'CSR');
    // Checked before the HSM is touched: a bad request fails without a PIN prompt.
    const csr = verifyCsr(csrBytes.includes('-----BEGIN') ? csrBytes.toString('latin1') : csrBytes);
    const profile = args.string('profile') ?? 'tls-server';
    if (!Object.prototype.hasOwnProperty.call(PROFILES, profile)) throw new UsageError(`unknown --profile '${profile}' (one of ${Object.keys(PROFILES).join(', ')})`);
    const given = parseSans(args.all('san'));
    const sans = args.flag('csr-sans') ? mergeSans(given, csr.requestedSans) : given;
    const days = args.string('days') === undefined ? undefined : args.integer('days', 0, 1, 100 * 365);

    const issued = await withCaKey(args, async (signer) => {
      const ca = await CertificateAuthority.load({ signer, certificate: caFile.certificate, chain: caFile.chain });
      return ca.issue({ csr, profile: profile as ProfileName, sans, subject: args.string('subject'), validityDays: days });
    });
    const out = args.string('out');
    const result = { serial: issued.serial, notBefore: issued.notBefore.toISOString(), notAfter: issued.notAfter.toISOString(), out, pem: issued.chainPem };
    if (out !== undefined) {
      await writeFileAtomic(out, issued.chainPem);
      note(args, `issued serial ${issued.serial} (until ${result.notAfter}), wrote ${out}`);
      emit(args, result, () => []);
    } else {
      emit(args, result, () => issued.chainPem);
    }
    return 0;
  },
};
