/**
 * Policy guards: end-entity profiles never mint CAs, pathLen along the chain, validity bounds
 * and clamping, serial properties, key binding, non-signing keys, and name/SAN validation.
 */
import { X509Certificate, generateKeyPairSync } from 'crypto';
import { CaError, CertificateAuthority, CertificateProfile, MemorySerialRegistry, PROFILES, encodeName, formatName, parseDistinguishedName } from '../lib/ca';
import { TestHsm, TestSigner } from './support/ca-signer';
import { TempDir, opensslVerify, run, x509Text } from './support/ca-tools';

let hsm: TestHsm;
let tmp: TempDir;
let rootSigner: TestSigner;
let root: CertificateAuthority;
let issuing: CertificateAuthority;
const ecSpki = (): Buffer => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });

beforeAll(async () => {
  hsm = TestHsm.open();
  tmp = new TempDir();
  rootSigner = hsm.generate('p256');
  root = await CertificateAuthority.createRoot({ signer: rootSigner, subject: 'CN=Policy Root, C=GB', pathLen: 1, validityDays: 3650 });
  issuing = await root.createIntermediate({ signer: hsm.generate('p256'), subject: 'CN=Policy Issuing CA, C=GB', validityDays: 30 });
});

afterAll(() => {
  hsm?.close();
  tmp?.cleanup();
});

async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<CaError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(CaError);
    expect((e as CaError).code).toBe(code);
    return e as CaError;
  }
  throw new Error(`expected CaError ${code}, nothing was thrown`);
}

const server = (extra: Record<string, unknown> = {}): Parameters<CertificateAuthority['issue']>[0] =>
  ({ profile: 'tls-server', publicKey: ecSpki(), sans: { dns: ['svc.example.com'] }, ...extra }) as Parameters<CertificateAuthority['issue']>[0];

describe('an end-entity profile cannot issue a CA certificate', () => {
  it('issued leaves are CA:FALSE and cannot act as issuers', async () => {
    const leaf = await issuing.issue(server());
    expect(new X509Certificate(leaf.der).ca).toBe(false);
    expect(x509Text(leaf.der)).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    // OpenSSL refuses a chain in which the leaf signs another certificate.
    const leafSigner = hsm.generate('p256');
    const fake = await issuing.issue({ profile: 'tls-server', publicKey: leafSigner.publicKeySpki, sans: { dns: ['evil.example.com'] } });
    await expectCode(CertificateAuthority.load({ signer: leafSigner, certificate: fake.der, chain: issuing.chain }), 'CERTIFICATE_INVALID');
  });

  it('refuses basicConstraints (and other CA-managed extensions) as extra extensions', async () => {
    const caTrue = Buffer.from('30030101ff', 'hex'); // BasicConstraints { cA TRUE }
    await expectCode(issuing.issue(server({ extensions: [{ oid: '2.5.29.19', critical: true, value: caTrue }] })), 'POLICY_VIOLATION');
    await expectCode(issuing.issue(server({ extensions: [{ oid: '2.5.29.35', value: Buffer.from('3000', 'hex') }] })), 'POLICY_VIOLATION');
    // One that repeats a profile extension (keyUsage) would appear twice.
    await expectCode(issuing.issue(server({ extensions: [{ oid: '2.5.29.15', value: Buffer.from('03020780', 'hex') }] })), 'POLICY_VIOLATION');
  });

  it('refuses custom profiles that grant keyCertSign or cRLSign', async () => {
    const rogue: CertificateProfile = { ...PROFILES['tls-server'], name: 'rogue', keyUsage: ['digitalSignature', 'keyCertSign'] };
    await expectCode(issuing.issue(server({ profile: rogue })), 'POLICY_VIOLATION');
  });

  it('accepts a custom extension as DER and writes it verbatim', async () => {
    const value = Buffer.from('0c0568656c6c6f', 'hex'); // UTF8String "hello"
    const leaf = await issuing.issue(server({ extensions: [{ oid: '1.3.6.1.4.1.55555.9', value }] }));
    expect(leaf.der.includes(value)).toBe(true);
    expect(x509Text(leaf.der)).toContain('1.3.6.1.4.1.55555.9');
    await expectCode(issuing.issue(server({ extensions: [{ oid: '1.3.6.1.4.1.55555.9', value: Buffer.from('0c05', 'hex') }] })), 'INVALID_ARGUMENT');
  });
});

describe('pathLen is enforced along the chain', () => {
  it('an intermediate under pathLen 1 gets pathLen 0 and cannot create further CAs', async () => {
    expect(root.remainingPathLength).toBe(1);
    expect(issuing.remainingPathLength).toBe(0);
    await expectCode(issuing.createIntermediate({ signer: hsm.generate('p256'), subject: 'CN=Too Deep' }), 'POLICY_VIOLATION');
    await expectCode(issuing.issueIntermediate({ publicKey: ecSpki(), subject: 'CN=Too Deep' }), 'POLICY_VIOLATION');
  });

  it('a requested pathLen above what the issuer allows is refused', async () => {
    await expectCode(root.issueIntermediate({ publicKey: ecSpki(), subject: 'CN=Greedy', pathLen: 1 }), 'POLICY_VIOLATION');
  });

  it('a root with pathLen 0 issues leaves but no intermediates', async () => {
    const flat = await CertificateAuthority.createRoot({ signer: hsm.generate('p256'), subject: 'CN=Flat Root', pathLen: 0 });
    await expectCode(flat.issueIntermediate({ publicKey: ecSpki(), subject: 'CN=Nope' }), 'POLICY_VIOLATION');
    const leaf = await flat.issue(server());
    expect(opensslVerify(tmp, { root: flat.certificate, leaf: leaf.der, purpose: 'sslserver' }).output).toContain('leaf.pem: OK');
  });

  it('a chain given out of order is refused at load', async () => {
    await expectCode(CertificateAuthority.load({ signer: rootSigner, certificate: root.certificate, chain: [issuing.certificate] }), 'CERTIFICATE_INVALID');
  });
});

describe('validity', () => {
  it('is backdated for clock skew and clamped to the issuer not-after', async () => {
    const leaf = await issuing.issue(server({ validityDays: 90 }));
    expect(leaf.notAfter.getTime()).toBe(issuing.notAfter.getTime());
    const skew = Date.now() - leaf.notBefore.getTime();
    expect(skew).toBeGreaterThanOrEqual(299_000);
    expect(skew).toBeLessThan(310_000);
    expect(new Date(new X509Certificate(leaf.der).validTo).getTime()).toBe(issuing.notAfter.getTime());
  });

  it('is refused past the issuer not-after when the CA is set to reject', async () => {
    const strict = await CertificateAuthority.load({ signer: rootSigner, certificate: root.certificate, validityOverflow: 'reject' });
    await expectCode(strict.issue(server({ notAfter: new Date(root.notAfter.getTime() + 86_400_000) })), 'POLICY_VIOLATION');
  });

  it('cannot exceed the profile maximum, and an expired issuer issues nothing', async () => {
    await expectCode(root.issue(server({ validityDays: 399 })), 'POLICY_VIOLATION');
    await expectCode(root.issue(server({ validityDays: -1 })), 'INVALID_ARGUMENT');
    const later = await CertificateAuthority.load({ signer: rootSigner, certificate: root.certificate, clock: () => new Date(root.notAfter.getTime() + 1000) });
    await expectCode(later.issue(server()), 'POLICY_VIOLATION');
  });
});

describe('serial numbers', () => {
  it('are positive, at most 20 octets and unique over 1,000 issuances', async () => {
    const spki = ecSpki();
    const serials = new Set<string>();
    for (let batch = 0; batch < 10; batch++) {
      const leaves = await Promise.all(Array.from({ length: 100 }, () => issuing.issue({ profile: 'tls-server', publicKey: spki, sans: { dns: ['svc.example.com'] } })));
      for (const leaf of leaves) {
        serials.add(leaf.serial);
        const x = new X509Certificate(leaf.der);
        expect(x.serialNumber.toLowerCase()).toBe(leaf.serial);
        const bytes = Buffer.from(leaf.serial, 'hex');
        expect(bytes.length).toBeLessThanOrEqual(20);
        expect(bytes[0] & 0x80).toBe(0); // positive, and no leading 0x00 needed
        expect(bytes[0]).not.toBe(0);
      }
    }
    expect(serials.size).toBe(1000);
  });

  it('are redrawn when the registry has seen them, and exhaustion is reported', async () => {
    const seen: string[] = [];
    let refusals = 2;
    const picky = { claim: (s: string): boolean => (seen.push(s), refusals-- <= 0) };
    const ca = await CertificateAuthority.load({ signer: rootSigner, certificate: root.certificate, serialRegistry: picky });
    const leaf = await ca.issue(server());
    expect(seen).toHaveLength(3);
    expect(leaf.serial).toBe(seen[2]);
    const never = await CertificateAuthority.load({ signer: rootSigner, certificate: root.certificate, serialRegistry: { claim: async () => false } });
    await expectCode(never.issue(server()), 'SERIAL_EXHAUSTED');
    expect(new MemorySerialRegistry().claim('01')).toBe(true);
  });
});

describe('the CA is bound to its key', () => {
  it('refuses a signer whose public key is not the certificate key', async () => {
    await expectCode(CertificateAuthority.load({ signer: hsm.generate('p256'), certificate: root.certificate }), 'KEY_MISMATCH');
  });

  it('refuses a signer that claims the CA public key but signs with another private key', async () => {
    const other = hsm.generate('p256');
    const liar = { keyType: other.keyType, canSign: true, publicKeySpki: rootSigner.publicKeySpki, sign: other.sign };
    await expectCode(CertificateAuthority.load({ signer: liar, certificate: root.certificate }), 'KEY_MISMATCH');
  });

  it('refuses a key without CKA_SIGN, for roots and loaded CAs alike', async () => {
    const noSign = hsm.generate('p256', { canSign: false });
    expect(noSign.canSign).toBe(false);
    await expectCode(CertificateAuthority.createRoot({ signer: noSign, subject: 'CN=No Sign' }), 'SIGNER_CANNOT_SIGN');
    await expectCode(CertificateAuthority.load({ signer: { ...rootSigner, canSign: false }, certificate: root.certificate }), 'SIGNER_CANNOT_SIGN');
  });

  it('refuses to certify its own key in an end-entity certificate', async () => {
    await expectCode(root.issue(server({ publicKey: rootSigner.publicKeySpki })), 'POLICY_VIOLATION');
  });

  it('refuses an algorithm that does not fit the key', async () => {
    await expectCode(CertificateAuthority.load({ signer: rootSigner, certificate: root.certificate, algorithm: 'RSASSA-PSS-SHA256' }), 'UNSUPPORTED_ALGORITHM');
  });
});

describe('names', () => {
  it('parses the RFC 4514 section 4 examples', () => {
    expect(parseDistinguishedName('UID=jsmith,DC=example,DC=net')).toEqual([[{ type: 'DC', value: 'net' }], [{ type: 'DC', value: 'example' }], [{ type: 'UID', value: 'jsmith' }]]);
    expect(parseDistinguishedName('OU=Sales+CN=J.  Smith,DC=example,DC=net')[2]).toEqual([{ type: 'OU', value: 'Sales' }, { type: 'CN', value: 'J.  Smith' }]);
    expect(parseDistinguishedName('CN=James \\"Jim\\" Smith\\, III,DC=example,DC=net')[2]).toEqual([{ type: 'CN', value: 'James "Jim" Smith, III' }]);
    expect(parseDistinguishedName('CN=Before\\0dAfter,DC=example,DC=net')[2]).toEqual([{ type: 'CN', value: 'Before\rAfter' }]);
    expect(parseDistinguishedName('1.3.6.1.4.1.1466.0=#04024869,DC=example,DC=com')[2]).toEqual([{ type: '1.3.6.1.4.1.1466.0', value: Buffer.from('04024869', 'hex') }]);
    expect(parseDistinguishedName('CN=Lu\\C4\\8Di\\C4\\87')).toEqual([[{ type: 'CN', value: 'Lučić' }]]);
  });

  it('round-trips through DER, and OpenSSL reads the same name', async () => {
    for (const dn of [
      'UID=jsmith,DC=example,DC=net',
      'OU=Sales+CN=J.  Smith,DC=example,DC=net', // DER sorts the SET; this order is already sorted
      'CN=James \\"Jim\\" Smith\\, III,DC=example,DC=net',
      '1.3.6.1.4.1.1466.0=#04024869,DC=example,DC=com',
      'CN=Lučić,O=\\#hash\\+plus\\;semi\\<lt\\>gt,C=HR',
      'CN=\\ padded\\ ,O=x',
    ]) {
      expect(formatName(encodeName(dn))).toBe(dn);
    }
    const subject = 'CN=Lučić,O=James \\"Jim\\" Smith\\, III,C=HR';
    const leaf = await issuing.issue({ profile: 'tls-client', publicKey: ecSpki(), subject, sans: { email: ['l@example.com'] } });
    const r = run('openssl', ['x509', '-inform', 'DER', '-noout', '-subject', '-nameopt', 'RFC2253,-esc_msb'], leaf.der);
    expect(r.stdout.trim()).toBe(`subject=${subject}`);
  });

  it('spaces after separators are tolerated and the structured form matches the string form', () => {
    expect(encodeName('CN=x, O=y, C=GB').equals(encodeName([{ type: 'C', value: 'GB' }, { type: 'O', value: 'y' }, { type: 'CN', value: 'x' }]))).toBe(true);
    expect(encodeName('commonName=x').equals(encodeName('cn=x'))).toBe(true);
  });

  it('refuses malformed names and values outside the RFC 5280 bounds', () => {
    const bad = [
      'CN=a<b', // unescaped special
      'CN=a\\', // dangling escape
      'CN=a\\zz', // invalid escape
      'FOO=bar', // unknown type
      'CN=', // empty value
      'C=GBR', // country is two letters
      'C=gb',
      `CN=${'x'.repeat(65)}`, // ub-common-name 64
      'CN=a,', // trailing separator
      'CN=a\\00b', // NUL
      'CN=Before\\0dAfter', // control character
      'CN=\\c4', // broken UTF-8
      '1.2.3.4=#0402', // truncated DER value
      'CN=#0c0178', // "#hex" for a type with a string syntax
      'serialNumber=a_b', // PrintableString has no "_"
      Array.from({ length: 33 }, (_, i) => `OU=u${i}`).join(','), // too many RDNs
      'OU=a+OU=b', // repeated type in one RDN
      'x'.repeat(5000),
    ];
    for (const dn of bad) {
      expect(() => encodeName(dn)).toThrow(CaError);
      try {
        encodeName(dn);
      } catch (e) {
        expect((e as CaError).code).toBe('INVALID_NAME');
      }
    }
  });

  it('CA certificates need a subject', async () => {
    await expectCode(CertificateAuthority.createRoot({ signer: rootSigner, subject: '' }), 'INVALID_NAME');
  });
});

describe('subjectAltNames and identities', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['CN-only TLS server certificate', { subject: 'CN=svc.example.com', sans: undefined }, 'POLICY_VIOLATION'],
    ['CN not among the SANs', { subject: 'CN=other.example.com' }, 'POLICY_VIOLATION'],
    ['leading hyphen', { sans: { dns: ['-bad.example.com'] } }, 'INVALID_SAN'],
    ['space in a DNS name', { sans: { dns: ['exa mple.com'] } }, 'INVALID_SAN'],
    ['U-label DNS name', { sans: { dns: ['bücher.example'] } }, 'INVALID_SAN'],
    ['wildcard on a public suffix', { sans: { dns: ['*.com'] } }, 'INVALID_SAN'],
    ['wildcard not leftmost', { sans: { dns: ['a.*.example.com'] } }, 'INVALID_SAN'],
    ['IPv4 as DNS', { sans: { dns: ['192.0.2.1'] } }, 'INVALID_SAN'],
    ['bad IPv4', { sans: { ip: ['256.1.1.1'] } }, 'INVALID_SAN'],
    ['short IPv4', { sans: { ip: ['1.2.3'] } }, 'INVALID_SAN'],
    ['two "::"', { sans: { ip: ['2001:db8::1::1'] } }, 'INVALID_SAN'],
    ['IPv6 zone', { sans: { ip: ['fe80::1%eth0'] } }, 'INVALID_SAN'],
    ['duplicate', { sans: { dns: ['a.example.com', 'A.example.com'] } }, 'INVALID_SAN'],
    ['URI not allowed for tls-server', { sans: { dns: ['a.example.com'], uri: ['https://a.example.com/'] } }, 'INVALID_SAN'],
    ['101 SANs', { sans: { dns: Array.from({ length: 101 }, (_, i) => `h${i}.example.com`) } }, 'INVALID_SAN'],
    ['unknown SAN kind', { sans: { dns: ['a.example.com'], rid: ['1.2.3'] } }, 'INVALID_SAN'],
  ];
  it.each(cases)('refuses %s', async (_name, req, code) => {
    await expectCode(issuing.issue(server(req)), code);
  });

  const badSpiffe = ['spiffe://Example.org/x', 'spiffe://example.org/a//b', 'spiffe://example.org/..', 'spiffe://example.org/path/', 'spiffe://example.org:8080/x', 'spiffe://example.org/x?y', 'spiffe:///x'];
  it.each(badSpiffe)('refuses the malformed SPIFFE ID %s', async (uri) => {
    await expectCode(issuing.issue({ profile: 'spiffe', publicKey: ecSpki(), sans: { uri: [uri] } }), 'INVALID_SAN');
  });

  it('the spiffe profile needs exactly one SPIFFE ID; wildcards are refused for clients', async () => {
    await expectCode(issuing.issue({ profile: 'spiffe', publicKey: ecSpki(), sans: { uri: ['spiffe://example.org/a', 'spiffe://example.org/b'] } }), 'POLICY_VIOLATION');
    await expectCode(issuing.issue({ profile: 'spiffe', publicKey: ecSpki(), sans: { uri: ['https://example.org/a'] } }), 'POLICY_VIOLATION');
    await expectCode(issuing.issue({ profile: 'tls-client', publicKey: ecSpki(), sans: { dns: ['*.example.com'] } }), 'INVALID_SAN');
    await expectCode(issuing.issue({ profile: 'nope' as 'spiffe', publicKey: ecSpki(), sans: { uri: ['spiffe://example.org/a'] } }), 'INVALID_ARGUMENT');
  });

  it('accepts edge forms: IPv4-mapped IPv6, a CN that is an IP SAN, the root path SPIFFE ID', async () => {
    const leaf = await issuing.issue(server({ subject: 'CN=192.0.2.7', sans: { ip: ['192.0.2.7', '::ffff:192.0.2.7', '::'] } }));
    expect(new X509Certificate(leaf.der).subjectAltName).toBe('IP Address:192.0.2.7, IP Address:0:0:0:0:0:FFFF:C000:207, IP Address:0:0:0:0:0:0:0:0');
    const svid = await issuing.issue({ profile: 'spiffe', publicKey: ecSpki(), sans: { uri: ['spiffe://example.org'] } });
    expect(new X509Certificate(svid.der).subjectAltName).toBe('URI:spiffe://example.org');
  });
});
