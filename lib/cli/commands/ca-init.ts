/** p11 ca init: a self-signed root CA certificate for a key on the token. */
import { CertificateAuthority } from '../../ca/authority';
import { withCaKey } from '../ca-key';
import type { Command } from '../command';
import { MODULE_OPTIONS, OUTPUT_OPTIONS, PIN_OPTIONS } from '../command';
import { writeFileAtomic } from '../files';
import { emit, note } from '../output';

export const caInitCommand: Command = {
  name: 'ca init',
  summary: 'create a self-signed root CA certificate for a token key',
  usage: ["ca init --key URI --subject 'CN=...,O=...' [--days N] [--path-len N] [--out ca.pem]"],
  options: {
    key: { type: 'string', value: 'URI', description: "the CA's private key, e.g. 'pkcs11:token=demo;object=ca-key'" },
    subject: { type: 'string', value: 'DN', description: "the CA's name (RFC 4514), e.g. 'CN=Demo Root,O=Example'" },
    days: { type: 'string', value: 'N', description: 'validity in days (default 3650)' },
    'path-len': { type: 'string', value: 'N', description: 'how many intermediate levels may follow (default: unlimited)' },
    out: { type: 'string', value: 'FILE', description: 'write the certificate PEM to FILE (default: stdout)' },
    ...MODULE_OPTIONS,
    ...PIN_OPTIONS,
    ...OUTPUT_OPTIONS,
  },
  async run(args) {
    args.atMost(0);
    const subject = args.required('subject');
    const days = args.integer('days', 3650, 1, 100 * 365);
    const pathLen = args.string('path-len') === undefined ? undefined : args.integer('path-len', 0, 0, 32);
    const ca = await withCaKey(args, (signer) => CertificateAuthority.createRoot({ signer, subject, validityDays: days, pathLen }));
    const out = args.string('out');
    const result = { subject: ca.subject, notAfter: ca.notAfter.toISOString(), signatureAlgorithm: ca.signatureAlgorithm, out, pem: ca.certificatePem };
    if (out !== undefined) {
      await writeFileAtomic(out, ca.certificatePem);
      note(args, `wrote root CA certificate '${ca.subject}' (until ${result.notAfter}) to ${out}`);
      emit(args, result, () => []);
    } else {
      emit(args, result, () => ca.certificatePem);
    }
    return 0;
  },
};
