/**
 * Revocation and v2 CRLs signed in the HSM, checked with `openssl crl -verify`,
 * `openssl verify -crl_check`, GnuTLS `certtool --verify-crl`, and parsed with asn1-x509.
 */
import { generateKeyPairSync } from 'crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList, CRLNumber, CRLReason, CRLReasons, Version } from '@peculiar/asn1-x509';
import { CKM_SHA256_RSA_PKCS_PSS } from '../lib';
import { CaError, CertificateAuthority, IssuedCertificate } from '../lib/ca';
import { TestHsm } from './support/ca-signer';
import { TempDir, opensslVerify, run } from './support/ca-tools';

let hsm: TestHsm;
let tmp: TempDir;
let root: CertificateAuthority;
let issuing: CertificateAuthority;
let leaves: IssuedCertificate[];
let issuingSigner: ReturnType<TestHsm['generate']>;
const revokedAt = new Date('2025-01-02T03:04:05Z');
const compromisedAt = new Date('2024-12-31T00:00:00Z');

beforeAll(async () => {
  hsm = TestHsm.open();
  tmp = new TempDir();
  root = await CertificateAuthority.createRoot({ signer: hsm.generate('p256'), subject: 'CN=CRL Root, C=GB', crlDistributionPoints: ['http://crl.example.com/root.crl'] });
  issuingSigner = hsm.generate('p384');
  issuing = await root.createIntermediate({ signer: issuingSigner, subject: 'CN=CRL Issuing CA, C=GB', crlDistributionPoints: ['http://crl.example.com/issuing.crl'] });
  const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  leaves = await Promise.all(
    ['a', 'b', 'c', 'd'].map((n) => issuing.issue({ profile: 'tls-server', publicKey: spki, sans: { dns: [`${n}.example.com`] } })),
  );
});

afterAll(() => {
  hsm?.close();
  tmp?.cleanup();
});

function crlText(der: Buffer): string {
  const r = run('openssl', ['crl', '-inform', 'DER', '-text', '-noout'], der);
  if (r.status !== 0) throw new Error(r.output);
  return r.stdout;
}

describe('CRLs', () => {
  let crl: Awaited<ReturnType<CertificateAuthority['issueCrl']>>;

  beforeAll(async () => {
    issuing.revoke(leaves[0].serial, { reason: 'keyCompromise', date: revokedAt, invalidityDate: compromisedAt });
    issuing.revoke(leaves[1].serial.toUpperCase().replace(/(..)(?!$)/g, '$1:'), { reason: 'superseded' });
    issuing.revoke(leaves[2].serial, { reason: 'certificateHold' });
    crl = await issuing.issueCrl({ validityHours: 24 });
  });

  it('is a v2 CRL with CRL number, AKI and per-entry reasons, as openssl prints it', () => {
    const text = crlText(crl.der);
    expect(text).toContain('Version 2 (0x1)');
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA384');
    expect(text).toContain('Issuer: C = GB, CN = CRL Issuing CA');
    expect(text).toMatch(/X509v3 CRL Number:\s+1\n/);
    expect(text).toContain('X509v3 Authority Key Identifier');
    expect(text).toContain(`Serial Number: ${leaves[0].serial.toUpperCase()}`);
    expect(text).toContain('Revocation Date: Jan  2 03:04:05 2025 GMT');
    expect(text).toMatch(/X509v3 CRL Reason Code:\s+Key Compromise/);
    expect(text).toMatch(/Invalidity Date:\s+Dec 31 00:00:00 2024 GMT/);
    expect(text).toMatch(/X509v3 CRL Reason Code:\s+Superseded/);
    expect(text).toMatch(/X509v3 CRL Reason Code:\s+Certificate Hold/);
    expect(text).not.toContain(leaves[3].serial.toUpperCase());
    expect(crl.pem).toMatch(/^-----BEGIN X509 CRL-----\n/);
    expect(crl.nextUpdate.getTime() - crl.thisUpdate.getTime()).toBe(24 * 3_600_000);
  });

  it('verifies with openssl crl -verify and certtool --verify-crl', () => {
    const caFile = tmp.write('crl-ca.pem', [issuing.certificate, root.certificate]);
    const r = run('openssl', ['crl', '-inform', 'DER', '-in', tmp.writeRaw('crl.der', crl.der), '-CAfile', caFile, '-verify', '-noout']);
    expect(r.output).toContain('verify OK');
    expect(r.status).toBe(0);
    const g = run('certtool', ['--verify-crl', '--load-ca-certificate', tmp.write('issuer.pem', issuing.certificate), '--infile', tmp.write('crl.pem', crl.pem)]);
    expect(g.output).toContain('Verification output: Verified');
    expect(g.status).toBe(0);
    // A CRL checked against the wrong issuer must fail.
    const wrong = run('openssl', ['crl', '-inform', 'DER', '-in', tmp.path('crl.der'), '-CAfile', tmp.write('root-only.pem', root.certificate), '-verify', '-noout']);
    expect(wrong.output).not.toContain('verify OK');
  });

  it('makes openssl verify -crl_check reject revoked leaves and accept the others', () => {
    const check = (leaf: IssuedCertificate): ReturnType<typeof opensslVerify> =>
      opensslVerify(tmp, { root: root.certificate, intermediates: [issuing.certificate], leaf: leaf.der, purpose: 'sslserver', crls: [crl.der] });
    for (const revoked of leaves.slice(0, 3)) {
      const r = check(revoked);
      expect(r.status).not.toBe(0);
      expect(r.output).toContain('certificate revoked');
    }
    expect(check(leaves[3]).output).toContain('leaf.pem: OK');
  });

  it('checks the whole chain with -crl_check_all when the root publishes an (empty) CRL too', async () => {
    const rootCrl = await root.issueCrl({ nextUpdate: new Date(Date.now() + 3_600_000) });
    expect(crlText(rootCrl.der)).toContain('No Revoked Certificates.');
    const args = ['verify', '-x509_strict', '-crl_check_all', '-CAfile', tmp.write('r.pem', root.certificate), '-untrusted', tmp.write('i.pem', issuing.certificate)];
    args.push('-CRLfile', tmp.write('both.pem', [crl.der, rootCrl.der], 'X509 CRL'));
    expect(run('openssl', [...args, tmp.write('good.pem', leaves[3].der)]).output).toContain('good.pem: OK');
    expect(run('openssl', [...args, tmp.write('bad.pem', leaves[0].der)]).output).toContain('certificate revoked');
  });

  it('parses with asn1-x509 to the expected fields', () => {
    const parsed = AsnConvert.parse(crl.der, CertificateList);
    const tbs = parsed.tbsCertList;
    expect(tbs.version).toBe(Version.v2);
    expect(tbs.revokedCertificates).toHaveLength(3);
    const first = tbs.revokedCertificates![0];
    expect(Buffer.from(first.userCertificate).toString('hex')).toBe(leaves[0].serial);
    expect(first.revocationDate.getTime().getTime()).toBe(revokedAt.getTime());
    const reasonExt = first.crlEntryExtensions!.find((e) => e.extnID === '2.5.29.21')!;
    expect(AsnConvert.parse(reasonExt.extnValue, CRLReason).reason).toBe(CRLReasons.keyCompromise);
    const numberExt = tbs.crlExtensions!.find((e) => e.extnID === '2.5.29.20')!;
    expect(AsnConvert.parse(numberExt.extnValue, CRLNumber).value).toBe(1);
  });

  it('numbers CRLs upward, lifts holds, and keeps final reasons final', async () => {
    issuing.release(leaves[2].serial);
    const second = await issuing.issueCrl();
    expect(second.crlNumber).toBe(2n);
    const text = crlText(second.der);
    expect(text).toMatch(/X509v3 CRL Number:\s+2\n/);
    expect(text).not.toContain(leaves[2].serial.toUpperCase());
    expect(issuing.revocations.map((e) => e.serial)).toEqual([leaves[0].serial, leaves[1].serial]);

    expect(() => issuing.revoke(leaves[0].serial, { reason: 'superseded' })).toThrow(CaError);
    expect(issuing.revoke(leaves[0].serial, { reason: 'keyCompromise' }).date).toEqual(revokedAt); // idempotent
    expect(() => issuing.release(leaves[0].serial)).toThrow(/final/);
    issuing.revoke(leaves[2].serial, { reason: 'certificateHold' });
    expect(issuing.revoke(leaves[2].serial, { reason: 'cessationOfOperation' }).reason).toBe('cessationOfOperation');
  });

  it('refuses invalid serials and reasons', () => {
    for (const serial of ['zz', '00', '', 'ff'.repeat(20), '01'.repeat(21)]) {
      expect(() => issuing.revoke(serial)).toThrow(CaError);
    }
    expect(() => issuing.revoke('01', { reason: 'removeFromCRL' as 'unspecified' })).toThrow(/unknown revocation reason/);
  });

  it('carries revocations and the CRL number across a reload', async () => {
    const reloaded = await CertificateAuthority.load({
      signer: issuingSigner,
      certificate: issuing.certificate,
      chain: [root.certificate],
      revocations: issuing.revocations,
      lastCrlNumber: 2n,
    });
    const next = await reloaded.issueCrl();
    expect(next.crlNumber).toBe(3n);
    const parsed = AsnConvert.parse(next.der, CertificateList).tbsCertList;
    expect(parsed.revokedCertificates!.map((r) => Buffer.from(r.userCertificate).toString('hex'))).toEqual(issuing.revocations.map((e) => e.serial));
  });
});

describe('CRLs signed with RSASSA-PSS', () => {
  it('verify with openssl and certtool', async () => {
    if (!hsm.has(CKM_SHA256_RSA_PKCS_PSS)) return console.warn('skipped: no CKM_SHA256_RSA_PKCS_PSS');
    const pssRoot = await CertificateAuthority.createRoot({ signer: hsm.generate('rsa2048'), algorithm: 'RSASSA-PSS-SHA256', subject: 'CN=PSS CRL Root' });
    pssRoot.revoke('0102030405', { reason: 'cACompromise' });
    const pssCrl = await pssRoot.issueCrl();
    const r = run('openssl', ['crl', '-inform', 'DER', '-in', tmp.writeRaw('pss.crl', pssCrl.der), '-CAfile', tmp.write('pss-root.pem', pssRoot.certificate), '-verify', '-noout']);
    expect(r.output).toContain('verify OK');
    const g = run('certtool', ['--verify-crl', '--load-ca-certificate', tmp.path('pss-root.pem'), '--infile', tmp.write('pss.crl.pem', pssCrl.pem)]);
    expect(g.output).toContain('Verification output: Verified');
  });
});
