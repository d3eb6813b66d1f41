/**
 * Issuance from PKCS#10 requests made by `openssl req` (EC P-256/P-384, RSA-2048 PKCS#1 and
 * PSS, Ed25519), refusal of corrupted or unsupported ones, and issuance from bare SPKIs.
 */
import { X509Certificate, createPublicKey, generateKeyPairSync } from 'crypto';
import { CaError, CertificateAuthority, SubjectPublicKey, verifyCsr } from '../lib/ca';
import { TAG } from '../lib/ca/der-writer';
import { children, readWhole } from '../lib/ca/der-reader';
import { pemBlocks } from '../lib/ca/pem';
import { TestHsm } from './support/ca-signer';
import { TempDir, opensslVerify, run } from './support/ca-tools';

let hsm: TestHsm;
let tmp: TempDir;
let ca: CertificateAuthority;

beforeAll(async () => {
  hsm = TestHsm.open();
  tmp = new TempDir();
  ca = await CertificateAuthority.createRoot({ signer: hsm.generate('p256'), subject: 'CN=CSR Test Root, O=pkcs11-napi, C=GB', pathLen: 0 });
});

afterAll(() => {
  hsm?.close();
  tmp?.cleanup();
});

let counter = 0;
/** A CSR from `openssl req` with a fresh key; returns DER and the key file. */
function opensslCsr(keyArgs: string[], subject: string, extra: string[] = []): { der: Buffer; pem: string; keyFile: string } {
  const n = ++counter;
  const keyFile = tmp.path(`key${n}.pem`);
  const out = tmp.path(`req${n}.csr`);
  const r = run('openssl', ['req', '-new', ...keyArgs, '-nodes', '-keyout', keyFile, '-subj', subject, ...extra, '-out', out]);
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.output}`);
  const pem = tmp.read(`req${n}.csr`).toString();
  return { der: pemBlocks(pem)[0].der, pem, keyFile };
}

/** Offsets of the signature BIT STRING's content (after the unused-bits octet). */
function signatureRange(der: Buffer): [number, number] {
  const outer = readWhole(der, TAG.SEQUENCE, 'CSR');
  const sig = children(der, outer)[2];
  return [sig.contentStart + 1, sig.end];
}

function expectCaError(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CaError);
    expect((e as CaError).code).toBe(code);
    return;
  }
  throw new Error(`expected CaError ${code}, nothing was thrown`);
}

const GOOD = [
  { name: 'EC P-256', keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], alg: 'ecdsa-with-SHA256' },
  { name: 'EC P-384 (SHA-384)', keyArgs: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-sha384'], alg: 'ecdsa-with-SHA384' },
  { name: 'RSA-2048', keyArgs: ['-newkey', 'rsa:2048'], alg: 'sha256WithRSAEncryption' },
  { name: 'RSA-2048 PSS', keyArgs: ['-newkey', 'rsa:2048', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-sha256'], alg: 'RSASSA-PSS-SHA256' },
  { name: 'Ed25519', keyArgs: ['-newkey', 'ed25519'], alg: 'Ed25519' },
];

describe.each(GOOD)('openssl req $name CSR', ({ keyArgs, alg }) => {
  let csr: { der: Buffer; pem: string; keyFile: string };
  beforeAll(() => {
    csr = opensslCsr(keyArgs, '/C=GB/O=Example Devices/CN=device-1.example.com', ['-addext', 'subjectAltName=DNS:device-1.example.com,IP:10.0.0.1']);
  });

  it('is verified, and its key and subject are certified', async () => {
    const verified = verifyCsr(csr.pem);
    expect(verified.signatureAlgorithm).toBe(alg);
    expect(verified.subjectText).toBe('CN=device-1.example.com,O=Example Devices,C=GB');
    expect(verified.requestedSans).toEqual({ dns: ['device-1.example.com'], ip: ['10.0.0.1'], uri: [], email: [] });

    const leaf = await ca.issue({ profile: 'tls-server', csr: csr.der, sans: verified.requestedSans });
    const r = opensslVerify(tmp, { root: ca.certificate, leaf: leaf.der, purpose: 'sslserver' });
    expect(r.output).toContain('leaf.pem: OK');
    const x = new X509Certificate(leaf.der);
    expect(x.subject).toBe('C=GB\nO=Example Devices\nCN=device-1.example.com');
    // The certified key is the CSR's key: compare with the private key file openssl wrote.
    const fromKeyFile = createPublicKey(tmp.read(csr.keyFile.split('/').pop()!)).export({ type: 'spki', format: 'der' });
    expect(x.publicKey.export({ type: 'spki', format: 'der' }).equals(fromKeyFile)).toBe(true);
  });

  it('is refused after a bit flip anywhere in its signature', () => {
    const [from, to] = signatureRange(csr.der);
    for (const offset of [from, from + 1, Math.floor((from + to) / 2), to - 2, to - 1]) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(csr.der);
        bad[offset] ^= bit;
        // A flip may break the DER Ecdsa-Sig-Value itself; either way the CSR must not pass.
        expect(() => verifyCsr(bad)).toThrow(CaError);
        try {
          verifyCsr(bad);
        } catch (e) {
          expect(['CSR_SIGNATURE_INVALID', 'CSR_MALFORMED']).toContain((e as CaError).code);
        }
      }
    }
  });

  it('is refused when the signed content is altered', () => {
    const bad = Buffer.from(csr.der);
    const at = bad.indexOf(Buffer.from('device-1.example.com'));
    bad[at] = 'D'.charCodeAt(0);
    expectCaError(() => verifyCsr(bad), 'CSR_SIGNATURE_INVALID');
  });

  it('is refused when truncated or followed by garbage', async () => {
    for (const cut of [1, 10, Math.floor(csr.der.length / 2), csr.der.length - 1]) {
      expectCaError(() => verifyCsr(csr.der.subarray(0, csr.der.length - cut)), 'CSR_MALFORMED');
    }
    expectCaError(() => verifyCsr(Buffer.concat([csr.der, Buffer.from([0])])), 'CSR_MALFORMED');
    await expect(ca.issue({ profile: 'tls-server', csr: csr.der.subarray(0, 40), sans: { dns: ['x.example.com'] } })).rejects.toMatchObject({ code: 'CSR_MALFORMED' });
  });
});

describe('CSRs that must be refused', () => {
  it('a signature taken from another request (same algorithm) does not verify', () => {
    const a = opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=a');
    const b = opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=b');
    const [aFrom] = signatureRange(a.der);
    const [bFrom] = signatureRange(b.der);
    // Rebuild A with B's signature: same AlgorithmIdentifier, so only the signature differs.
    const outerA = readWhole(a.der, TAG.SEQUENCE, 'CSR');
    const [infoA, algA] = children(a.der, outerA);
    const sigB = children(b.der, readWhole(b.der, TAG.SEQUENCE, 'CSR'))[2];
    const body = Buffer.concat([a.der.subarray(infoA.start, algA.end), b.der.subarray(sigB.start, sigB.end)]);
    const spliced = Buffer.concat([Buffer.from([0x30, 0x81, body.length]), body]);
    expect(aFrom).toBeGreaterThan(0);
    expect(bFrom).toBeGreaterThan(0);
    expectCaError(() => verifyCsr(spliced), 'CSR_SIGNATURE_INVALID');
  });

  it('SHA-1 signatures are refused as unsupported', () => {
    const csr = opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-sha1'], '/CN=sha1');
    expectCaError(() => verifyCsr(csr.der), 'UNSUPPORTED_ALGORITHM');
  });

  it('RSA keys below 2048 bits are refused as unsupported', () => {
    const csr = opensslCsr(['-newkey', 'rsa:1024'], '/CN=small');
    expectCaError(() => verifyCsr(csr.der), 'UNSUPPORTED_KEY');
  });

  it('garbage, a certificate, or broken PEM is not a CSR', () => {
    expectCaError(() => verifyCsr(Buffer.from('hello')), 'CSR_MALFORMED');
    expectCaError(() => verifyCsr(ca.certificate), 'CSR_MALFORMED');
    expectCaError(() => verifyCsr('-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n'), 'INVALID_ARGUMENT');
    expectCaError(() => verifyCsr('no pem here'), 'CSR_MALFORMED');
  });
});

describe('issuance from a bare public key (SPKI)', () => {
  it('accepts DER and PEM SPKI, a KeyObject, and a pre-validated SubjectPublicKey', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    for (const input of [der, pem, publicKey, SubjectPublicKey.from(der)]) {
      const leaf = await ca.issue({ profile: 'tls-client', publicKey: input, subject: 'CN=svc', sans: { uri: ['urn:example:svc'] } });
      expect(new X509Certificate(leaf.der).publicKey.export({ type: 'spki', format: 'der' }).equals(der)).toBe(true);
      expect(opensslVerify(tmp, { root: ca.certificate, leaf: leaf.der, purpose: 'sslclient' }).output).toContain('leaf.pem: OK');
    }
  });

  it('refuses a point that is not on the curve, unsupported curves and malformed SPKI', async () => {
    const der = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    const offCurve = Buffer.from(der);
    offCurve[offCurve.length - 1] ^= 0x01;
    await expect(ca.issue({ profile: 'tls-server', publicKey: offCurve, sans: { dns: ['a.example.com'] } })).rejects.toMatchObject({ code: 'UNSUPPORTED_KEY' });
    const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ type: 'spki', format: 'der' });
    expectCaError(() => SubjectPublicKey.from(k1), 'UNSUPPORTED_KEY');
    const x25519 = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' });
    expectCaError(() => SubjectPublicKey.from(x25519), 'UNSUPPORTED_KEY');
    expectCaError(() => SubjectPublicKey.from(der.subarray(0, 20)), 'UNSUPPORTED_KEY');
  });

  it('needs exactly one of csr and publicKey', async () => {
    const der = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
    const csr = opensslCsr(['-newkey', 'ed25519'], '/CN=x');
    await expect(ca.issue({ profile: 'tls-server', sans: { dns: ['a.example.com'] } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(ca.issue({ profile: 'tls-server', csr: csr.der, publicKey: der, sans: { dns: ['a.example.com'] } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
