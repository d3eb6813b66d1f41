import * as crypto from 'node:crypto';
import fc from 'fast-check';
import { DerError, readTlv } from '../lib/asn1/der';
import { ecdsaDerToRaw, ecdsaRawToDer } from '../lib/keys/ecdsa-signature';
import { DigestInfoHash, digestInfo } from '../lib/keys/digest-info';
import {
  ecPublicKeyToSpki,
  ed25519PublicKeyToSpki,
  isEd25519Params,
  pemToDer,
  rsaPublicKeyToSpki,
  spkiToPem,
  spkiToPublicKeyAttributes,
} from '../lib/keys/spki';

const CURVES = [
  { name: 'P-256', nodeName: 'prime256v1', params: '06082a8648ce3d030107', size: 32, hash: 'sha256' },
  { name: 'P-384', nodeName: 'secp384r1', params: '06052b81040022', size: 48, hash: 'sha384' },
  { name: 'P-521', nodeName: 'secp521r1', params: '06052b81040023', size: 66, hash: 'sha512' },
] as const;

const b64u = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');
const nodeSpki = (key: crypto.KeyObject) => key.export({ type: 'spki', format: 'der' });
const octetString = (b: Buffer) => Buffer.concat([Buffer.from([0x04]), derLength(b.length), b]);
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  return n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
}

const ecKeys = CURVES.map((c) => ({ curve: c, ...crypto.generateKeyPairSync('ec', { namedCurve: c.nodeName }) }));
const rsaKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const edKey = crypto.generateKeyPairSync('ed25519');

describe('ECDSA signature formats', () => {
  test.each(ecKeys.map((k) => [k.curve.name, k] as const))('%s: node raw <-> DER cross-check', (_name, { curve, privateKey, publicKey }) => {
    for (let i = 0; i < 20; i++) {
      const data = crypto.randomBytes(40);
      const raw = crypto.sign(curve.hash, data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      expect(raw.length).toBe(2 * curve.size);
      const der = ecdsaRawToDer(raw);
      expect(crypto.verify(curve.hash, data, publicKey, der)).toBe(true);

      const nodeDer = crypto.sign(curve.hash, data, privateKey);
      const back = ecdsaDerToRaw(nodeDer, curve.size);
      expect(crypto.verify(curve.hash, data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, back)).toBe(true);
      // Node writes canonical DER, so the round trip reproduces its bytes exactly.
      expect(ecdsaRawToDer(back).equals(nodeDer)).toBe(true);
    }
  });

  test('round trip for random r, s (fast-check)', () => {
    const sig = fc.constantFrom(32, 48, 66).chain((size) =>
      fc.tuple(fc.constant(size), fc.uint8Array({ minLength: size, maxLength: size }), fc.uint8Array({ minLength: size, maxLength: size })),
    );
    fc.assert(
      fc.property(sig, ([size, r, s]) => {
        fc.pre(r.some((b) => b !== 0) && s.some((b) => b !== 0));
        const raw = Buffer.concat([r, s]);
        const der = ecdsaRawToDer(raw);
        expect(ecdsaDerToRaw(der, size).equals(raw)).toBe(true);
        // Minimal INTEGERs: no redundant leading zero, never negative.
        const seq = readTlv(der, 0);
        let pos = 0;
        for (let i = 0; i < 2; i++) {
          const int = readTlv(seq.value, pos);
          expect(int.value[0] & 0x80).toBe(0);
          if (int.value.length > 1 && int.value[0] === 0) expect(int.value[1] & 0x80).toBe(0x80);
          pos = int.end;
        }
      }),
      { numRuns: 1000 },
    );
  });

  test('fixed vectors', () => {
    const raw = Buffer.concat([Buffer.alloc(31), Buffer.from([0x80]), Buffer.alloc(31), Buffer.from([0x01])]);
    expect(ecdsaRawToDer(raw).toString('hex')).toBe('3007020200800201' + '01');
    expect(ecdsaDerToRaw(Buffer.from('300702020080020101', 'hex'), 32).equals(raw)).toBe(true);
  });

  test.each([
    ['trailing byte', '300602010102010100'],
    ['SEQUENCE length too long', '3007020101020101'],
    ['non-minimal length', '308106020101020101'],
    ['indefinite length', '3080020101020101' + '0000'],
    ['negative r', '3006020181020101'],
    ['non-minimal r (redundant 00)', '300702020001020101'],
    ['empty r', '30050200020101'],
    ['zero s', '3006020101020100'],
    ['three integers', '3009020101020101020101'],
    ['one integer', '3003020101'],
    ['wrong outer tag', '3106020101020101'],
    ['wrong inner tag', '3006040101020101'],
    ['r longer than the field', '3025022101' + 'ff'.repeat(32) + '020101'],
    ['empty input', ''],
  ])('DER rejects %s', (_what, hex) => {
    expect(() => ecdsaDerToRaw(Buffer.from(hex, 'hex'), 32)).toThrow(DerError);
  });

  test('raw rejects odd, empty and zero halves', () => {
    expect(() => ecdsaRawToDer(Buffer.alloc(63, 1))).toThrow(DerError);
    expect(() => ecdsaRawToDer(Buffer.alloc(0))).toThrow(DerError);
    expect(() => ecdsaRawToDer(Buffer.concat([Buffer.alloc(32), Buffer.alloc(32, 1)]))).toThrow(/zero/);
    expect(() => ecdsaDerToRaw(Buffer.from('3006020101020101', 'hex'), 0)).toThrow(DerError);
  });
});

describe('DigestInfo', () => {
  // RFC 8017 section 9.2, note 1.
  const PREFIXES: Record<DigestInfoHash, string> = {
    sha1: '3021300906052b0e03021a05000414',
    sha224: '302d300d06096086480165030402040500041c',
    sha256: '3031300d060960864801650304020105000420',
    sha384: '3041300d060960864801650304020205000430',
    sha512: '3051300d060960864801650304020305000440',
  };

  test.each(Object.keys(PREFIXES) as DigestInfoHash[])('%s matches RFC 8017 and verifies with node', (hash) => {
    const data = crypto.randomBytes(100);
    const digest = crypto.createHash(hash).update(data).digest();
    const info = digestInfo(hash, digest);
    expect(info.toString('hex')).toBe(PREFIXES[hash] + digest.toString('hex'));
    // What CKM_RSA_PKCS does with it: EMSA-PKCS1-v1_5 padding and the RSA private operation.
    const signature = crypto.privateEncrypt({ key: rsaKey.privateKey, padding: crypto.constants.RSA_PKCS1_PADDING }, info);
    expect(crypto.verify(hash, data, rsaKey.publicKey, signature)).toBe(true);
    expect(crypto.publicDecrypt({ key: rsaKey.publicKey, padding: crypto.constants.RSA_PKCS1_PADDING }, signature).equals(info)).toBe(true);
  });

  test('digest length must match the hash', () => {
    expect(() => digestInfo('sha256', Buffer.alloc(20))).toThrow(/32 bytes, got 20/);
    expect(() => digestInfo('sha1', Buffer.alloc(32))).toThrow(DerError);
    expect(() => digestInfo('md5' as DigestInfoHash, Buffer.alloc(16))).toThrow(/unsupported/);
  });
});

describe('SubjectPublicKeyInfo', () => {
  test.each(ecKeys.map((k) => [k.curve.name, k] as const))('%s: built from JWK x,y equals node byte for byte', (_n, { curve, publicKey }) => {
    const jwk = publicKey.export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.from([0x04]), b64u(jwk.x), b64u(jwk.y)]);
    expect(point.length).toBe(1 + 2 * curve.size);
    const params = Buffer.from(curve.params, 'hex');
    const expected = nodeSpki(publicKey);
    expect(ecPublicKeyToSpki(params, point).equals(expected)).toBe(true);
    expect(ecPublicKeyToSpki(params, octetString(point)).equals(expected)).toBe(true);

    const attrs = spkiToPublicKeyAttributes(expected);
    expect(attrs).toEqual({ keyType: 'ec', ecParams: params, ecPoint: octetString(point) });
    if (attrs.keyType !== 'ec') throw new Error('unreachable');
    expect(ecPublicKeyToSpki(attrs.ecParams, attrs.ecPoint).equals(expected)).toBe(true);
  });

  test('RSA-2048: built from JWK n,e equals node byte for byte', () => {
    const jwk = rsaKey.publicKey.export({ format: 'jwk' });
    const expected = nodeSpki(rsaKey.publicKey);
    expect(rsaPublicKeyToSpki(b64u(jwk.n), b64u(jwk.e)).equals(expected)).toBe(true);
    // PKCS#11 modules may hand back leading zero bytes; they are not part of the INTEGER.
    const padded = rsaPublicKeyToSpki(Buffer.concat([Buffer.alloc(3), b64u(jwk.n)]), Buffer.from('00010001', 'hex'));
    expect(padded.equals(expected)).toBe(true);

    const attrs = spkiToPublicKeyAttributes(expected);
    expect(attrs).toEqual({ keyType: 'rsa', modulus: b64u(jwk.n), publicExponent: Buffer.from('010001', 'hex') });
    if (attrs.keyType !== 'rsa') throw new Error('unreachable');
    expect(rsaPublicKeyToSpki(attrs.modulus, attrs.publicExponent).equals(expected)).toBe(true);
  });

  test('Ed25519: built from JWK x equals node byte for byte', () => {
    const x = b64u(edKey.publicKey.export({ format: 'jwk' }).x);
    const expected = nodeSpki(edKey.publicKey);
    expect(ed25519PublicKeyToSpki(x).equals(expected)).toBe(true);
    expect(ed25519PublicKeyToSpki(octetString(x)).equals(expected)).toBe(true);

    const attrs = spkiToPublicKeyAttributes(expected);
    expect(attrs).toEqual({ keyType: 'ed25519', ecParams: Buffer.from('06032b6570', 'hex'), ecPoint: octetString(x) });
    if (attrs.keyType !== 'ed25519') throw new Error('unreachable');
    expect(isEd25519Params(attrs.ecParams)).toBe(true);
    expect(ed25519PublicKeyToSpki(attrs.ecPoint).equals(expected)).toBe(true);
  });

  test('isEd25519Params accepts both PKCS#11 forms only', () => {
    expect(isEd25519Params(Buffer.from('130c656477617264733235353139', 'hex'))).toBe(true);
    expect(isEd25519Params(Buffer.from('06032b6570', 'hex'))).toBe(true);
    expect(isEd25519Params(Buffer.from('06032b6571', 'hex'))).toBe(false);
    expect(isEd25519Params(Buffer.from('130a65643235353139', 'hex'))).toBe(false);
  });

  test('EC point forms that are not an uncompressed point of the curve are rejected', () => {
    const p256 = Buffer.from(CURVES[0].params, 'hex');
    const jwk = ecKeys[0].publicKey.export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.from([0x04]), b64u(jwk.x), b64u(jwk.y)]);
    const compressed = Buffer.concat([Buffer.from([0x02]), b64u(jwk.x)]);
    for (const bad of [
      compressed,
      octetString(compressed),
      point.subarray(0, 64),
      octetString(point).subarray(0, 66),
      Buffer.concat([octetString(point), Buffer.from([0])]),
      Buffer.concat([Buffer.from([0x04, 0x81, 0x41]), point]), // non-minimal length
      Buffer.concat([Buffer.from([0x03]), point.subarray(1)]),
      Buffer.alloc(0),
    ]) {
      expect(() => ecPublicKeyToSpki(p256, bad)).toThrow(DerError);
    }
    expect(() => ecPublicKeyToSpki(Buffer.from(CURVES[1].params, 'hex'), point)).toThrow(/P-384/);
    expect(() => ecPublicKeyToSpki(Buffer.from('06052b8104000a', 'hex'), point)).toThrow(/not the OID/);
    expect(() => ed25519PublicKeyToSpki(Buffer.alloc(31))).toThrow(DerError);
    expect(() => rsaPublicKeyToSpki(Buffer.alloc(4), Buffer.from([3]))).toThrow(/modulus/);
  });

  test('unsupported or malformed SPKIs get a clear error', () => {
    const others = [
      nodeSpki(crypto.generateKeyPairSync('x25519').publicKey),
      nodeSpki(crypto.generateKeyPairSync('ed448').publicKey),
      nodeSpki(crypto.generateKeyPairSync('dsa', { modulusLength: 1024, divisorLength: 160 }).publicKey),
      nodeSpki(crypto.generateKeyPairSync('rsa-pss', { modulusLength: 1024 }).publicKey),
    ];
    for (const der of others) expect(() => spkiToPublicKeyAttributes(der)).toThrow(/unsupported public key algorithm/);
    const k1 = nodeSpki(crypto.generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey);
    expect(() => spkiToPublicKeyAttributes(k1)).toThrow(/unsupported EC curve 1\.3\.132\.0\.10/);
    const ed = nodeSpki(edKey.publicKey);
    expect(() => spkiToPublicKeyAttributes(Buffer.concat([ed, Buffer.from([0])]))).toThrow(/trailing/);
    expect(() => spkiToPublicKeyAttributes(ed.subarray(0, ed.length - 1))).toThrow(/runs past the end/);
  });

  test('PEM', () => {
    for (const key of [ecKeys[0].publicKey, ecKeys[2].publicKey, rsaKey.publicKey, edKey.publicKey]) {
      const der = nodeSpki(key);
      const pem = spkiToPem(der);
      expect(pem).toBe(key.export({ type: 'spki', format: 'pem' }));
      expect(pemToDer(pem, 'PUBLIC KEY').equals(der)).toBe(true);
      expect(pemToDer(`explanatory text\r\n${pem.replace(/\n/g, '\r\n')}trailer`, 'PUBLIC KEY').equals(der)).toBe(true);
    }
    const pem = spkiToPem(nodeSpki(edKey.publicKey));
    expect(() => pemToDer(pem, 'CERTIFICATE')).toThrow(/no "-----BEGIN CERTIFICATE-----"/);
    expect(() => pemToDer(pem.replace('-----END PUBLIC KEY-----', ''), 'PUBLIC KEY')).toThrow(/END/);
    expect(() => pemToDer(pem.replace(/\n(.)/, '\n!$1'), 'PUBLIC KEY')).toThrow(/base64/);
    expect(() => pemToDer(pem.replace(/=*\n-----END/, '\n-----END'), 'PUBLIC KEY')).toThrow(/base64/);
    expect(() => pemToDer('-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n', 'PUBLIC KEY')).toThrow(/base64/);
    expect(() => pemToDer(pem, 'bad-label')).toThrow(/label/);
  });
});

describe('fuzzing the DER readers', () => {
  const spkis = [...ecKeys.map((k) => nodeSpki(k.publicKey)), nodeSpki(rsaKey.publicKey), nodeSpki(edKey.publicKey)];
  const signatures = ecKeys.map((k) => ({ size: k.curve.size, der: crypto.sign(k.curve.hash, Buffer.from('x'), k.privateKey) }));

  const mutation = (input: Buffer) =>
    fc.oneof(
      // bit flips
      fc.array(fc.tuple(fc.nat(input.length - 1), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 4 }).map((flips) => {
        const b = Buffer.from(input);
        for (const [at, bit] of flips) b[at] ^= 1 << bit;
        return b;
      }),
      // byte overwrite with interesting values
      fc.tuple(fc.nat(input.length - 1), fc.constantFrom(0x00, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x85, 0xff)).map(([at, v]) => {
        const b = Buffer.from(input);
        b[at] = v;
        return b;
      }),
      // truncation
      fc.nat(input.length).map((n) => input.subarray(0, n)),
      // extension / insertion
      fc.tuple(fc.nat(input.length), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([at, bytes]) =>
        Buffer.concat([input.subarray(0, at), bytes, input.subarray(at)]),
      ),
      // oversized garbage with a huge claimed length
      fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.concat([Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), bytes])),
    );

  /** Runs `fn`, requiring a clean DerError on failure; returns the elapsed time in ms. */
  function timed(fn: () => void): number {
    const start = process.hrtime.bigint();
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(DerError);
      expect(e).not.toBeInstanceOf(TypeError);
      expect(e).not.toBeInstanceOf(RangeError);
    }
    return Number(process.hrtime.bigint() - start) / 1e6;
  }

  const times: number[] = [];
  afterAll(() => {
    times.sort((a, b) => a - b);
    const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
    // A guard against pathological inputs (a parser that loops or backtracks), not a performance
    // measurement: the machines are shared, so the bound is far above the microseconds it takes.
    expect(p(1)).toBeLessThan(250);
  });

  test.each(spkis.map((s, i) => [i, s] as const))('SPKI %i: mutations fail cleanly or parse canonically', (_i, spki) => {
    fc.assert(
      fc.property(mutation(spki), (input) => {
        times.push(
          timed(() => {
            const attrs = spkiToPublicKeyAttributes(input);
            // Anything accepted must be the unique DER encoding of what was read.
            const rebuilt =
              attrs.keyType === 'ec' ? ecPublicKeyToSpki(attrs.ecParams, attrs.ecPoint)
              : attrs.keyType === 'rsa' ? rsaPublicKeyToSpki(attrs.modulus, attrs.publicExponent)
              : ed25519PublicKeyToSpki(attrs.ecPoint);
            expect(rebuilt.equals(input)).toBe(true);
          }),
        );
      }),
      { numRuns: 1500 },
    );
  });

  test.each(signatures.map((s) => [s.size, s] as const))('ECDSA DER (size %i): mutations fail cleanly or parse canonically', (_s, { size, der }) => {
    fc.assert(
      fc.property(mutation(der), (input) => {
        times.push(
          timed(() => {
            const raw = ecdsaDerToRaw(input, size);
            expect(ecdsaRawToDer(raw).equals(input)).toBe(true);
          }),
        );
      }),
      { numRuns: 1500 },
    );
  });

  test('EC point inputs: mutations fail cleanly', () => {
    const k = ecKeys[2];
    const jwk = k.publicKey.export({ format: 'jwk' });
    const wrapped = octetString(Buffer.concat([Buffer.from([0x04]), b64u(jwk.x), b64u(jwk.y)]));
    const params = Buffer.from(k.curve.params, 'hex');
    fc.assert(
      fc.property(mutation(wrapped), (input) => {
        times.push(timed(() => ecPublicKeyToSpki(params, input)));
      }),
      { numRuns: 1500 },
    );
  });
});
