/**
 * Cross-check of the fast path: the hand-assembled TBSCertificate / TBSCertList bytes must be
 * exactly what asn1-x509 serializes from the same logical inputs, and must parse back with
 * AsnConvert.parse(..., Certificate) to the expected fields.
 */
import { createHash, generateKeyPairSync } from 'crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { ecdsaWithSHA256, ecdsaWithSHA384 } from '@peculiar/asn1-ecc';
import { RSASSA_PSS, RsaSaPssParams, sha256 } from '@peculiar/asn1-rsa';
import {
  AccessDescription,
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  CertificateList,
  CertificatePolicies,
  CRLDistributionPoints,
  CRLNumber,
  DistributionPoint,
  DistributionPointName,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  PolicyInformation,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  TBSCertList,
  Time,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { CKM_SHA256_RSA_PKCS_PSS } from '../lib';
import { CertificateAuthority } from '../lib/ca';
import { assembleTbs } from '../lib/ca/certificate';
import { ProfileCache, prepareEndEntity } from '../lib/ca/issuance';
import { claimSerial, MemorySerialRegistry } from '../lib/ca/serials';
import { SubjectPublicKey, subjectPublicKeyBits } from '../lib/ca/public-keys';
import { authorityKeyIdentifierExtension } from '../lib/ca/extensions';
import { TestHsm } from './support/ca-signer';

let hsm: TestHsm;
let root: CertificateAuthority;
let issuing: CertificateAuthority;

const CRL_URL = 'http://crl.example.com/i.crl';
const OCSP_URL = 'http://ocsp.example.com';
const POLICY = '2.23.140.1.2.1';

beforeAll(async () => {
  hsm = TestHsm.open();
  root = await CertificateAuthority.createRoot({ signer: hsm.generate('p384'), subject: 'CN=Fast Root, C=GB' });
  issuing = await root.createIntermediate({
    signer: hsm.generate('p256'),
    subject: 'CN=Fast Issuing, O=pkcs11-napi, C=GB',
    crlDistributionPoints: [CRL_URL],
    ocspUrls: [OCSP_URL],
    certificatePolicies: [POLICY],
  });
});

afterAll(() => hsm?.close());

const ext = (extnID: string, critical: boolean, value: unknown): Extension =>
  new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });

const rdn = (type: string, value: Partial<AttributeValue>): RelativeDistinguishedName =>
  new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: new AttributeValue(value) })]);

const keyId = (spki: Buffer): Buffer => createHash('sha1').update(subjectPublicKeyBits(spki)).digest();

function parse(der: Buffer): Certificate {
  return AsnConvert.parse(der, Certificate);
}

describe('fast-path TBSCertificate equals the asn1-x509 serialization', () => {
  it('for a TLS server leaf with every kind of extension', async () => {
    const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const custom = Buffer.from('0c0568656c6c6f', 'hex');
    const leaf = await issuing.issue({
      profile: 'tls-server',
      publicKey: spki,
      subject: 'CN=api.example.com, O=Example, C=GB',
      sans: { dns: ['api.example.com', '*.api.example.com'], ip: ['192.0.2.10', '2001:db8::1'] },
      extensions: [{ oid: '1.3.6.1.4.1.55555.9', value: custom }],
    });
    const issuer = parse(issuing.certificate);
    const fast = parse(leaf.der);

    const slow = new TBSCertificate({
      version: Version.v3,
      serialNumber: new Uint8Array(Buffer.from(leaf.serial, 'hex')).buffer,
      signature: ecdsaWithSHA256,
      issuer: issuer.tbsCertificate.subject,
      validity: new Validity({ notBefore: leaf.notBefore, notAfter: leaf.notAfter }),
      subject: new Name([rdn('2.5.4.6', { printableString: 'GB' }), rdn('2.5.4.10', { utf8String: 'Example' }), rdn('2.5.4.3', { utf8String: 'api.example.com' })]),
      subjectPublicKeyInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo),
      extensions: new Extensions([
        ext('2.5.29.19', true, new BasicConstraints({ cA: false })),
        ext('2.5.29.15', true, new KeyUsage(KeyUsageFlags.digitalSignature)),
        ext('2.5.29.37', false, new ExtendedKeyUsage(['1.3.6.1.5.5.7.3.1'])),
        ext('2.5.29.14', false, new SubjectKeyIdentifier(keyId(spki))),
        ext('2.5.29.35', false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId(parseSpki(issuing.certificate))) })),
        ext('2.5.29.17', false, new SubjectAlternativeName([
          new GeneralName({ dNSName: 'api.example.com' }),
          new GeneralName({ dNSName: '*.api.example.com' }),
          new GeneralName({ iPAddress: '192.0.2.10' }),
          new GeneralName({ iPAddress: '2001:db8::1' }),
        ])),
        ext('2.5.29.31', false, new CRLDistributionPoints([new DistributionPoint({ distributionPoint: new DistributionPointName({ fullName: [new GeneralName({ uniformResourceIdentifier: CRL_URL })] }) })])),
        ext('1.3.6.1.5.5.7.1.1', false, new AuthorityInfoAccessSyntax([new AccessDescription({ accessMethod: '1.3.6.1.5.5.7.48.1', accessLocation: new GeneralName({ uniformResourceIdentifier: OCSP_URL }) })])),
        ext('2.5.29.32', false, new CertificatePolicies([new PolicyInformation({ policyIdentifier: POLICY })])),
        new Extension({ extnID: '1.3.6.1.4.1.55555.9', critical: false, extnValue: new OctetString(custom) }),
      ]),
    });
    expect(Buffer.from(AsnConvert.serialize(slow)).toString('hex')).toBe(Buffer.from(fast.tbsCertificateRaw!).toString('hex'));

    // And the parse of the fast bytes has the expected fields.
    const tbs = fast.tbsCertificate;
    expect(tbs.version).toBe(Version.v3);
    expect(Buffer.from(tbs.serialNumber).toString('hex')).toBe(leaf.serial);
    expect(tbs.signature.algorithm).toBe('1.2.840.10045.4.3.2');
    expect(fast.signatureAlgorithm.algorithm).toBe('1.2.840.10045.4.3.2');
    expect(Buffer.from(AsnConvert.serialize(tbs.issuer)).equals(Buffer.from(AsnConvert.serialize(issuer.tbsCertificate.subject)))).toBe(true);
    expect(tbs.validity.notAfter.getTime().getTime()).toBe(leaf.notAfter.getTime());
    expect(tbs.extensions!.map((e) => e.extnID)).toEqual([
      '2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.14', '2.5.29.35', '2.5.29.17', '2.5.29.31', '1.3.6.1.5.5.7.1.1', '2.5.29.32', '1.3.6.1.4.1.55555.9',
    ]);
  });

  it('for an RSA SPIFFE SVID with an empty subject (critical SAN, keyEncipherment)', async () => {
    const spki = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' });
    const svid = await issuing.issue({ profile: 'spiffe', publicKey: spki, sans: { uri: ['spiffe://example.org/w'] } });
    const fast = parse(svid.der);
    const slowExtensions = [
      ext('2.5.29.19', true, new BasicConstraints({ cA: false })),
      ext('2.5.29.15', true, new KeyUsage(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment)),
      ext('2.5.29.37', false, new ExtendedKeyUsage(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])),
      ext('2.5.29.14', false, new SubjectKeyIdentifier(keyId(spki))),
      ext('2.5.29.35', false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId(parseSpki(issuing.certificate))) })),
      ext('2.5.29.17', true, new SubjectAlternativeName([new GeneralName({ uniformResourceIdentifier: 'spiffe://example.org/w' })])),
    ];
    const got = fast.tbsCertificate.extensions!.slice(0, 6).map((e) => Buffer.from(AsnConvert.serialize(e)).toString('hex'));
    expect(got).toEqual(slowExtensions.map((e) => Buffer.from(AsnConvert.serialize(e)).toString('hex')));
    expect(fast.tbsCertificate.subject).toHaveLength(0);
  });

  it('for the self-signed root (CA extensions, ECDSA P-384 identifier)', () => {
    const fast = parse(root.certificate);
    const spki = parseSpki(root.certificate);
    const slow = new TBSCertificate({
      version: Version.v3,
      serialNumber: fast.tbsCertificate.serialNumber,
      signature: ecdsaWithSHA384,
      issuer: new Name([rdn('2.5.4.6', { printableString: 'GB' }), rdn('2.5.4.3', { utf8String: 'Fast Root' })]),
      validity: new Validity({ notBefore: fast.tbsCertificate.validity.notBefore.getTime(), notAfter: fast.tbsCertificate.validity.notAfter.getTime() }),
      subject: new Name([rdn('2.5.4.6', { printableString: 'GB' }), rdn('2.5.4.3', { utf8String: 'Fast Root' })]),
      subjectPublicKeyInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo),
      extensions: new Extensions([
        ext('2.5.29.19', true, new BasicConstraints({ cA: true })),
        ext('2.5.29.15', true, new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)),
        ext('2.5.29.14', false, new SubjectKeyIdentifier(keyId(spki))),
        ext('2.5.29.35', false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId(spki)) })),
      ]),
    });
    expect(Buffer.from(AsnConvert.serialize(slow)).toString('hex')).toBe(Buffer.from(fast.tbsCertificateRaw!).toString('hex'));
  });

  it('for an RSASSA-PSS signature AlgorithmIdentifier (RFC 4055 parameters)', async () => {
    if (!hsm.has(CKM_SHA256_RSA_PKCS_PSS)) return console.warn('skipped: no CKM_SHA256_RSA_PKCS_PSS');
    const pssRoot = await CertificateAuthority.createRoot({ signer: hsm.generate('rsa2048'), algorithm: 'RSASSA-PSS-SHA256', subject: 'CN=PSS' });
    const expected = new AlgorithmIdentifier({
      algorithm: RSASSA_PSS.algorithm,
      parameters: AsnConvert.serialize(
        new RsaSaPssParams({
          hashAlgorithm: sha256,
          maskGenAlgorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.113549.1.1.8', parameters: AsnConvert.serialize(sha256) }),
          saltLength: 32,
        }),
      ),
    });
    const fast = parse(pssRoot.certificate);
    expect(Buffer.from(AsnConvert.serialize(fast.signatureAlgorithm)).toString('hex')).toBe(Buffer.from(AsnConvert.serialize(expected)).toString('hex'));
    expect(Buffer.from(AsnConvert.serialize(fast.tbsCertificate.signature)).toString('hex')).toBe(Buffer.from(AsnConvert.serialize(expected)).toString('hex'));
  });

  it('for a CRL (TBSCertList with entries, CRL number and AKI)', async () => {
    issuing.revoke('4a01', { reason: 'keyCompromise', date: new Date('2025-06-01T00:00:00Z') });
    const crl = await issuing.issueCrl({ thisUpdate: new Date('2025-06-02T00:00:00Z'), nextUpdate: new Date('2025-06-09T00:00:00Z') });
    const fast = AsnConvert.parse(crl.der, CertificateList);
    const slow = new TBSCertList({
      version: Version.v2,
      signature: ecdsaWithSHA256,
      issuer: parse(issuing.certificate).tbsCertificate.subject,
      thisUpdate: new Time(new Date('2025-06-02T00:00:00Z')),
      nextUpdate: new Time(new Date('2025-06-09T00:00:00Z')),
      revokedCertificates: fast.tbsCertList.revokedCertificates,
      crlExtensions: [
        ext('2.5.29.35', false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId(parseSpki(issuing.certificate))) })),
        ext('2.5.29.20', false, new CRLNumber(Number(crl.crlNumber))),
      ],
    });
    expect(Buffer.from(AsnConvert.serialize(slow)).toString('hex')).toBe(Buffer.from(fast.tbsCertListRaw!).toString('hex'));
    const entry = fast.tbsCertList.revokedCertificates![0];
    expect(Buffer.from(entry.userCertificate).toString('hex')).toBe('4a01');
    expect(Buffer.from(AsnConvert.serialize(entry.crlEntryExtensions![0])).toString('hex')).toBe('300a0603551d1504030a0101');
  });
});

describe('main-thread cost per certificate', () => {
  it('prepare + serial + assemble stays far below the time of one HSM signature', async () => {
    const key = SubjectPublicKey.from(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const profiles = new ProfileCache();
    const registry = new MemorySerialRegistry();
    const template = {
      signatureAlgorithm: Buffer.from(AsnConvert.serialize(ecdsaWithSHA256)),
      issuer: Buffer.from(AsnConvert.serialize(parse(issuing.certificate).tbsCertificate.subject)),
      leadingExtensions: Buffer.alloc(0),
      authorityKeyIdentifier: authorityKeyIdentifierExtension(keyId(parseSpki(issuing.certificate))),
      trailingExtensions: Buffer.alloc(0),
    };
    const validity = { now: new Date(), backdateSeconds: 300, overflow: 'clamp' as const };
    const once = async (i: number): Promise<Buffer> => {
      const p = prepareEndEntity({ profile: 'spiffe', publicKey: key, sans: { uri: [`spiffe://example.org/w/${i}`] } }, profiles, validity);
      const serial = await claimSerial(registry);
      return assembleTbs({ ...template, leadingExtensions: p.profile.leadingExtensions }, { ...p, serial, spki: key.spki });
    };
    for (let i = 0; i < 2000; i++) await once(i); // warm up the JIT
    const n = 20000;
    // CPU time, not wall time: on a loaded machine the loop also waits for a core, which is not
    // its cost. (Only this thread works here, bar the garbage collector's helpers.)
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) await once(i);
    const used = process.cpuUsage(start);
    const microseconds = (used.user + used.system) / n;
    console.log(`fast path: ${microseconds.toFixed(2)} µs of CPU per TBSCertificate (before hashing and signing)`);
    // Generous bound; the asn1-x509 path costs ~300 µs.
    expect(microseconds).toBeLessThan(100);
  });
});

function parseSpki(certDer: Buffer): Buffer {
  return Buffer.from(AsnConvert.serialize(parse(certDer).tbsCertificate.subjectPublicKeyInfo));
}
