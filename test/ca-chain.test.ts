/**
 * Root → intermediate → leaf chains for every signature algorithm, signed by SoftHSM2 keys and
 * checked by verifiers nobody here wrote: `openssl verify -x509_strict`, GnuTLS
 * `certtool --verify-chain`, and Node's X509Certificate.
 */
import { X509Certificate, generateKeyPairSync } from 'crypto';
import { CKM_ECDSA, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA, CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS } from '../lib';
import { CertificateAuthority, SIGNATURE_ALGORITHMS, SignatureAlgorithmName } from '../lib/ca';
import { TestHsm, TestKeyKind } from './support/ca-signer';
import { TempDir, certtoolVerifyChain, opensslVerify, run, x509Text } from './support/ca-tools';

interface Case {
  name: string;
  kind: TestKeyKind;
  algorithm?: SignatureAlgorithmName;
  mechanisms: number[];
  /** What `openssl x509 -text` prints for the signature algorithm. */
  opensslName: string;
}

const CASES: Case[] = [
  { name: 'EC P-256', kind: 'p256', mechanisms: [CKM_ECDSA], opensslName: 'ecdsa-with-SHA256' },
  { name: 'EC P-384', kind: 'p384', mechanisms: [CKM_ECDSA], opensslName: 'ecdsa-with-SHA384' },
  { name: 'RSA-2048 PKCS#1 v1.5', kind: 'rsa2048', algorithm: 'sha256WithRSAEncryption', mechanisms: [CKM_SHA256_RSA_PKCS], opensslName: 'sha256WithRSAEncryption' },
  { name: 'RSA-2048 PSS', kind: 'rsa2048', algorithm: 'RSASSA-PSS-SHA256', mechanisms: [CKM_SHA256_RSA_PKCS_PSS], opensslName: 'rsassaPss' },
  { name: 'Ed25519', kind: 'ed25519', mechanisms: [CKM_EDDSA, CKM_EC_EDWARDS_KEY_PAIR_GEN], opensslName: 'ED25519' },
];

const SPIFFE_ID = 'spiffe://example.org/ns/prod/sa/payments';
const DISTRIBUTION = {
  crlDistributionPoints: ['http://crl.example.com/issuing.crl'],
  ocspUrls: ['http://ocsp.example.com'],
  caIssuersUrls: ['http://pki.example.com/issuing.crt'],
  certificatePolicies: ['2.23.140.1.2.1', { oid: '1.3.6.1.4.1.55555.1.1', cps: 'https://pki.example.com/cps' }],
};

let hsm: TestHsm;
let tmp: TempDir;

beforeAll(() => {
  hsm = TestHsm.open();
  tmp = new TempDir();
});

afterAll(() => {
  hsm?.close();
  tmp?.cleanup();
});

function leafSpki(kind: 'ec' | 'rsa'): Buffer {
  const { publicKey } = kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return publicKey.export({ type: 'spki', format: 'der' });
}

describe.each(CASES)('$name chain', (c) => {
  let root: CertificateAuthority;
  let issuing: CertificateAuthority;
  let supported = true;

  beforeAll(async () => {
    supported = c.mechanisms.every((m) => hsm.has(m));
    if (!supported) return;
    root = await CertificateAuthority.createRoot({
      signer: hsm.generate(c.kind),
      algorithm: c.algorithm,
      subject: `CN=pkcs11-napi Test Root ${c.name}, O=pkcs11-napi, C=GB`,
      validityDays: 3650,
      pathLen: 1,
      ...DISTRIBUTION,
    });
    issuing = await root.createIntermediate({
      signer: hsm.generate(c.kind),
      algorithm: c.algorithm,
      subject: [{ type: 'C', value: 'GB' }, { type: 'O', value: 'pkcs11-napi' }, { type: 'CN', value: `Issuing CA ${c.name}` }],
      validityDays: 1825,
      ...DISTRIBUTION,
    });
  });

  const it_ = (name: string, fn: () => Promise<void> | void): void =>
    it(name, async () => {
      if (!supported) {
        console.warn(`skipped: the token lacks a mechanism for ${c.name}`);
        return;
      }
      await fn();
    });

  it_('root and intermediate are well-formed CA certificates', () => {
    const rootX = new X509Certificate(root.certificate);
    const interX = new X509Certificate(issuing.certificate);
    expect(rootX.ca).toBe(true);
    expect(interX.ca).toBe(true);
    expect(rootX.checkIssued(rootX)).toBe(true);
    expect(rootX.verify(rootX.publicKey)).toBe(true);
    expect(interX.checkIssued(rootX)).toBe(true);
    expect(interX.verify(rootX.publicKey)).toBe(true);
    expect(issuing.remainingPathLength).toBe(0);

    const text = x509Text(issuing.certificate);
    expect(text).toContain(`Signature Algorithm: ${c.opensslName}`);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text).toContain('X509v3 Authority Key Identifier');
    expect(text).toContain('URI:http://crl.example.com/issuing.crl');
    expect(text).toContain('OCSP - URI:http://ocsp.example.com');
    expect(text).toContain('Policy: 2.23.140.1.2.1');
    expect(text).toContain('CPS: https://pki.example.com/cps');
    if (c.algorithm === 'RSASSA-PSS-SHA256') {
      expect(text).toContain('Hash Algorithm: sha256');
      expect(text).toContain('Mask Algorithm: mgf1 with sha256');
      expect(text).toContain('Salt Length: 0x20');
    }
  });

  it_('a TLS server leaf verifies with openssl (sslserver, x509_strict), certtool and X509Certificate', async () => {
    const leaf = await issuing.issue({
      profile: 'tls-server',
      publicKey: leafSpki('ec'),
      subject: 'CN=api.example.com, O=Example\\, Inc., C=GB',
      sans: { dns: ['api.example.com', '*.api.example.com'], ip: ['192.0.2.10', '2001:db8::1'] },
      validityDays: 30,
    });
    const ok = opensslVerify(tmp, { root: root.certificate, intermediates: [issuing.certificate], leaf: leaf.der, purpose: 'sslserver' });
    expect(ok.output).toContain('leaf.pem: OK');
    expect(ok.status).toBe(0);
    // The EKU is serverAuth only, so the same chain must not pass as a client.
    const wrongPurpose = opensslVerify(tmp, { root: root.certificate, intermediates: [issuing.certificate], leaf: leaf.der, purpose: 'sslclient' });
    expect(wrongPurpose.status).not.toBe(0);

    const gnutls = certtoolVerifyChain(tmp, [leaf.der, issuing.certificate, root.certificate]);
    expect(gnutls.output).toContain('Chain verification output: Verified');
    expect(gnutls.status).toBe(0);

    const x = new X509Certificate(leaf.der);
    const issuer = new X509Certificate(issuing.certificate);
    expect(x.checkIssued(issuer)).toBe(true);
    expect(x.verify(issuer.publicKey)).toBe(true);
    expect(x.ca).toBe(false);
    expect(x.serialNumber.toLowerCase()).toBe(leaf.serial);
    expect(x.subject).toContain('O=Example\\, Inc.');
    expect(x.subjectAltName).toContain('DNS:*.api.example.com');
    expect(x.subjectAltName).toContain('IP Address:192.0.2.10');
    expect(x.subjectAltName).toContain('IP Address:2001:DB8:0:0:0:0:0:1');
    expect(x.checkHost('www.api.example.com')).toBe('*.api.example.com'); // Node returns the matching SAN
    expect(x.checkIP('2001:db8::1')).toBe('2001:db8::1');
    expect(new Date(x.validTo).getTime()).toBe(leaf.notAfter.getTime());

    expect(leaf.chain).toHaveLength(2);
    expect(leaf.chain[1].equals(issuing.certificate)).toBe(true);
    expect(leaf.chainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    const text = x509Text(leaf.der);
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toContain('TLS Web Server Authentication');
  });

  it_('a TLS client leaf (RSA key, e-mail SAN) verifies for sslclient', async () => {
    const leaf = await issuing.issue({
      profile: 'tls-client',
      publicKey: leafSpki('rsa'),
      subject: 'CN=alice, OU=Engineering, O=Example, C=GB',
      sans: { email: ['alice@example.com'] },
    });
    const r = opensslVerify(tmp, { root: root.certificate, intermediates: [issuing.certificate], leaf: leaf.der, purpose: 'sslclient' });
    expect(r.output).toContain('leaf.pem: OK');
    expect(certtoolVerifyChain(tmp, [leaf.der, issuing.certificate, root.certificate]).status).toBe(0);
    expect(new X509Certificate(leaf.der).subjectAltName).toBe('email:alice@example.com');
  });

  it_('a SPIFFE X509-SVID (URI SAN only, empty subject) verifies as server and client', async () => {
    const svid = await issuing.issue({ profile: 'spiffe', publicKey: leafSpki('ec'), sans: { uri: [SPIFFE_ID] }, validityDays: 1 / 24 });
    for (const purpose of ['sslserver', 'sslclient']) {
      const r = opensslVerify(tmp, { root: root.certificate, intermediates: [issuing.certificate], leaf: svid.der, purpose });
      expect(r.output).toContain('leaf.pem: OK');
    }
    expect(certtoolVerifyChain(tmp, [svid.der, issuing.certificate, root.certificate]).status).toBe(0);
    const x = new X509Certificate(svid.der);
    expect(x.subject ?? '').toBe(''); // Node reports an empty subject as undefined
    expect(x.subjectAltName).toBe(`URI:${SPIFFE_ID}`);
    // An empty subject makes the SAN critical (RFC 5280 section 4.2.1.6).
    expect(x509Text(svid.der)).toMatch(/X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/example\.org\/ns\/prod\/sa\/payments/);
    expect(svid.notAfter.getTime() - Date.now()).toBeLessThanOrEqual(3_600_000);
  });
});

describe('every signature algorithm', () => {
  const keyFor: Record<SignatureAlgorithmName, TestKeyKind> = {
    'ecdsa-with-SHA256': 'p256',
    'ecdsa-with-SHA384': 'p384',
    'ecdsa-with-SHA512': 'p384',
    sha256WithRSAEncryption: 'rsa2048',
    sha384WithRSAEncryption: 'rsa2048',
    sha512WithRSAEncryption: 'rsa2048',
    'RSASSA-PSS-SHA256': 'rsa2048',
    'RSASSA-PSS-SHA384': 'rsa2048',
    'RSASSA-PSS-SHA512': 'rsa2048',
    Ed25519: 'ed25519',
  };

  it('self-signs a root that openssl (-x509_strict) and X509Certificate verify', async () => {
    const signers = new Map<TestKeyKind, ReturnType<TestHsm['generate']>>();
    for (const algorithm of SIGNATURE_ALGORITHMS) {
      const kind = keyFor[algorithm];
      if (kind === 'ed25519' && !(hsm.has(CKM_EDDSA) && hsm.has(CKM_EC_EDWARDS_KEY_PAIR_GEN))) continue;
      if (!signers.has(kind)) signers.set(kind, hsm.generate(kind));
      const ca = await CertificateAuthority.createRoot({ signer: signers.get(kind)!, algorithm, subject: `CN=${algorithm} root` });
      expect(ca.signatureAlgorithm).toBe(algorithm);
      const r = run('openssl', ['verify', '-x509_strict', '-check_ss_sig', '-CAfile', tmp.write('alg.pem', ca.certificate), tmp.path('alg.pem')]);
      expect(`${algorithm}: ${r.output}`).toContain('alg.pem: OK');
      const x = new X509Certificate(ca.certificate);
      expect(x.verify(x.publicKey)).toBe(true);
      const leaf = await ca.issue({ profile: 'tls-server', publicKey: leafSpki('ec'), sans: { dns: ['alg.example.com'] } });
      expect(new X509Certificate(leaf.der).verify(x.publicKey)).toBe(true);
    }
  });
});
