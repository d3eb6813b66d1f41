import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import fc from 'fast-check';
import {
  Pkcs11Uri,
  Pkcs11UriError,
  formatPkcs11Uri,
  matchesLibrary,
  matchesSlot,
  matchesToken,
  parsePkcs11Uri,
  pkcs11UriToString,
  redactPkcs11Uri,
} from '../lib/uri/pkcs11-uri';
import { PinSourceError, readPinSource } from '../lib/uri/pin-source';

// RFC 7512 section 3.3, line-wrapped there for readability; the whitespace is not part of the URI.
const RFC_EXAMPLES: string[] = [
  `pkcs11:`,
  `pkcs11:object=my-pubkey;type=public`,
  `pkcs11:object=my-key;type=private?pin-source=file:/etc/token`,
  `pkcs11:token=The%20Software%20PKCS%2311%20softtoken;
          manufacturer=Snake%20Oil,%20Inc.;
          model=1.0;
          object=my-certificate;
          type=cert;
          id=%69%95%3E%5C%F4%BD%EC%91;
          serial=
          ?pin-source=file:/etc/token_pin`,
  `pkcs11:object=my-sign-key;
          type=private
          ?module-name=mypkcs11`,
  `pkcs11:object=my-sign-key;
          type=private
          ?module-path=/mnt/libmypkcs11.so.1`,
  `pkcs11:token=Software%20PKCS%2311%20softtoken;
          manufacturer=Snake%20Oil,%20Inc.
          ?pin-value=the-pin`,
  `pkcs11:slot-description=Sun%20Metaslot`,
  `pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;
          library-description=Soft%20Token%20Library;
          library-version=1.23`,
  `pkcs11:token=My%20token%25%20created%20by%20Joe;
          library-version=3;
          id=%01%02%03%Ba%dd%Ca%fe%04%05%06`,
  `pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;
          object=my-certificate;
          type=cert`,
  `pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;
          object=my-certificate;
          type=cert`,
  `pkcs11:token=my-token;
          object=my-certificate;
          type=cert;
          vendor-aaa=value-a
          ?pin-source=file:/etc/token_pin
          &vendor-bbb=value-b`,
].map((u) => u.replace(/\s+/g, ''));

const allowVendor = { allowUnprefixedVendor: true };

describe('RFC 7512 section 3.3 examples', () => {
  test.each(RFC_EXAMPLES)('%s parses and round-trips', (text) => {
    const uri = parsePkcs11Uri(text, allowVendor);
    const formatted = formatPkcs11Uri(uri, { includePin: true });
    expect(parsePkcs11Uri(formatted, allowVendor)).toEqual(uri);
    // Only the attribute order and hex case may differ from the RFC's spelling.
    expect(formatted.length).toBe(text.length);
    expect(formatPkcs11Uri(parsePkcs11Uri(formatted, allowVendor), { includePin: true })).toBe(formatted);
  });

  test('decoded values', () => {
    const [empty, pub, priv, full, modName, modPath, pin, slot, lib, joe, subst, acute, vendor] = RFC_EXAMPLES.map((t) =>
      parsePkcs11Uri(t, allowVendor),
    );
    expect(empty).toEqual({ path: {}, query: {}, vendor: { path: {}, query: {} } });
    expect(pub.path).toEqual({ object: 'my-pubkey', type: 'public' });
    expect(priv.query).toEqual({ pinSource: 'file:/etc/token' });
    expect(full.path).toEqual({
      token: 'The Software PKCS#11 softtoken',
      manufacturer: 'Snake Oil, Inc.',
      model: '1.0',
      object: 'my-certificate',
      type: 'cert',
      id: Buffer.from('69953e5cf4bdec91', 'hex'),
      serial: '',
    });
    expect(full.query).toEqual({ pinSource: 'file:/etc/token_pin' });
    expect(modName.query).toEqual({ moduleName: 'mypkcs11' });
    expect(modPath.query).toEqual({ modulePath: '/mnt/libmypkcs11.so.1' });
    expect(pin.query).toEqual({ pinValue: 'the-pin' });
    expect(slot.path).toEqual({ slotDescription: 'Sun Metaslot' });
    expect(lib.path).toEqual({
      libraryManufacturer: 'Snake Oil, Inc.',
      libraryDescription: 'Soft Token Library',
      libraryVersion: { major: 1, minor: 23 },
    });
    expect(joe.path).toEqual({
      token: 'My token% created by Joe',
      libraryVersion: { major: 3, minor: 0 },
      id: Buffer.from('010203baddcafe040506', 'hex'),
    });
    expect(subst.path.token).toBe('A name with a substring %;');
    expect(acute.path.token).toBe('Name with a small A with acute: \u00e1');
    expect(vendor.vendor).toEqual({ path: { 'vendor-aaa': 'value-a' }, query: { 'vendor-bbb': 'value-b' } });
    expect(vendor.query).toEqual({ pinSource: 'file:/etc/token_pin' });
  });

  test('RFC-style unprefixed vendor attributes need the opt-in', () => {
    expect(() => parsePkcs11Uri(RFC_EXAMPLES[12])).toThrow(/unknown path attribute "vendor-aaa"/);
  });

  test('canonical output keeps the RFC order and unreserved characters', () => {
    expect(formatPkcs11Uri(parsePkcs11Uri(RFC_EXAMPLES[3]))).toBe(
      'pkcs11:token=The%20Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.;serial=;model=1.0;' +
        'object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91?pin-source=file:/etc/token_pin',
    );
  });
});

describe('parsing rules', () => {
  test.each([
    ['PKCS11:token=a', { path: { token: 'a' } }],
    ['pkcs11:?', {}],
    ['pkcs11:token=', { path: { token: '' } }],
    ['pkcs11:id=', { path: { id: Buffer.alloc(0) } }],
    ['pkcs11:id=ab%00', { path: { id: Buffer.from([0x61, 0x62, 0]) } }],
    ['pkcs11:token=a&b=c', { path: { token: 'a&b=c' } }],
    ["pkcs11:token=:[]@!$'()*+,=&", { path: { token: ":[]@!$'()*+,=&" } }],
    ['pkcs11:?pin-source=file:/x?y|z', { query: { pinSource: 'file:/x?y|z' } }],
    ['pkcs11:TYPE=CERT;Object=o', { path: { type: 'cert', object: 'o' } }],
    ['pkcs11:library-version=1', { path: { libraryVersion: { major: 1, minor: 0 } } }],
    ['pkcs11:library-version=255.0', { path: { libraryVersion: { major: 255, minor: 0 } } }],
    ['pkcs11:slot-id=18446744073709551615', { path: { slotId: 18446744073709551615n } }],
    ['pkcs11:slot-id=0', { path: { slotId: 0n } }],
    ['pkcs11:x-foo=b%20r?x-q=1', { vendor: { path: { 'x-foo': 'b r' }, query: { 'x-q': '1' } } }],
    ['pkcs11:token=%e2%82%AC', { path: { token: '\u20ac' } }],
  ])('%s', (text, expected) => {
    const want = { path: {}, query: {}, vendor: { path: {}, query: {} }, ...expected };
    expect(parsePkcs11Uri(text)).toEqual(want);
  });

  test.each([
    ['', /starts with "pkcs11:"/],
    ['pkcs11', /starts with "pkcs11:"/],
    ['http:token=a', /starts with "pkcs11:"/],
    ['pkcs11:token=%G1', /invalid percent-encoding at position 13 in "token"/],
    ['pkcs11:token=%4', /truncated percent-encoding at position 13/],
    ['pkcs11:token=a%', /truncated percent-encoding/],
    ['pkcs11:token=a;token=b', /"token" appears more than once/],
    ['pkcs11:token=a;Token=b', /appears more than once/],
    ['pkcs11:x-a=1;x-a=2', /"x-a" appears more than once/],
    ['pkcs11:?module-name=a&module-name=b', /"module-name" appears more than once/],
    ['pkcs11:tokne=a', /unknown path attribute "tokne" at position 7/],
    ['pkcs11:vendor-aaa=x', /unknown path attribute/],
    ['pkcs11:token=a?x=1', /unknown query attribute "x"/],
    ['pkcs11:x-=a', /unknown path attribute/],
    ['pkcs11:token', /no "="/],
    ['pkcs11:=a', /invalid attribute name/],
    ['pkcs11:to ken=a', /invalid attribute name/],
    ['pkcs11:;token=a', /empty attribute at position 7/],
    ['pkcs11:token=a;', /empty attribute/],
    ['pkcs11:token=a;;object=b', /empty attribute/],
    ['pkcs11:?&', /empty attribute/],
    ['pkcs11:token=a/b', /"\/" at position 14 in "token" must be percent-encoded/],
    ['pkcs11://token=a', /no "\/\/" authority/],
    ['pkcs11:token=a b', /" " at position 14/],
    ['pkcs11:token=\u00e9', /must be percent-encoded/],
    ['pkcs11:token=a#frag', /fragments are not allowed/],
    ['pkcs11:?pin-source=a;b', /must be percent-encoded/],
    ['pkcs11:token=%FF', /not valid UTF-8/],
    ['pkcs11:token=%C3', /not valid UTF-8/],
    ['pkcs11:library-version=', /library-version/],
    ['pkcs11:library-version=1.', /library-version/],
    ['pkcs11:library-version=.1', /library-version/],
    ['pkcs11:library-version=1.2.3', /library-version/],
    ['pkcs11:library-version=a', /library-version/],
    ['pkcs11:library-version=%31', /library-version/],
    ['pkcs11:library-version=256', /out of range/],
    ['pkcs11:slot-id=', /slot-id/],
    ['pkcs11:slot-id=-1', /slot-id/],
    ['pkcs11:slot-id=0x10', /slot-id/],
    ['pkcs11:slot-id=1%30', /slot-id/],
    ['pkcs11:slot-id=18446744073709551616', /CK_SLOT_ID/],
    ['pkcs11:type=key', /type at position 12 must be one of/],
    ['pkcs11:type=', /type/],
    ['pkcs11:type=%63ert', /type/],
    ['pkcs11:pin-value=1234', /query attribute: it belongs after "\?"/],
    ['pkcs11:?token=a', /path attribute: it belongs before "\?"/],
    ['pkcs11:?pin-source=a&pin-value=b', /pin-source and pin-value/],
  ])('rejects %j', (text, message) => {
    let error: unknown;
    try {
      parsePkcs11Uri(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Pkcs11UriError);
    expect((error as Error).message).toMatch(message);
  });

  test('errors never echo the PIN', () => {
    for (const text of [
      'pkcs11:?pin-value=s3cr3t%ZZ',
      'pkcs11:?pin-value=s3cr3t s',
      'pkcs11:?pin-value=s3cr3t%FF',
      'pkcs11:?pin-value=s3cr3t;',
      'pkcs11:?pin-value=s3cr3t&pin-value=s3cr3t',
      'pkcs11:?pin-value=s3cr3t&pin-source=/x',
      'pkcs11:pin-value=s3cr3t',
    ]) {
      expect(() => parsePkcs11Uri(text)).toThrow(Pkcs11UriError);
      try {
        parsePkcs11Uri(text);
      } catch (e) {
        expect((e as Error).message).not.toMatch(/s3cr3t|" "|"s"/);
      }
    }
  });
});

describe('formatting', () => {
  const base: Pkcs11Uri = {
    path: { token: 't', id: Buffer.from([0x01, 0x02, 0x61]) },
    query: { pinValue: 'the-pin', moduleName: 'softhsm2' },
    vendor: { path: {}, query: {} },
  };

  test('id is fully percent-encoded; pin-value only on request', () => {
    expect(formatPkcs11Uri(base)).toBe('pkcs11:token=t;id=%01%02%61?module-name=softhsm2');
    expect(formatPkcs11Uri(base, { includePin: true })).toBe('pkcs11:token=t;id=%01%02%61?pin-value=the-pin&module-name=softhsm2');
  });

  test('parsed URIs never show the PIN in string forms', () => {
    const uri = parsePkcs11Uri('pkcs11:token=t?pin-value=the-pin');
    expect(uri.query.pinValue).toBe('the-pin');
    for (const shown of [String(uri), `${uri}`, JSON.stringify(uri), inspect(uri), inspect({ nested: uri }), pkcs11UriToString(uri)]) {
      expect(shown).not.toContain('the-pin');
    }
    expect(String(uri)).toBe('pkcs11:token=t');
    expect(inspect(uri)).toContain('***');
  });

  test('characters outside the unreserved and allowed sets are encoded per component', () => {
    const uri: Pkcs11Uri = {
      path: { object: 'a/b?c;d&e é', libraryVersion: { major: 2, minor: 40 }, slotId: 7n },
      query: { modulePath: '/usr/lib/a b;c&d?e|f' },
      vendor: { path: { 'x-v': ';' }, query: { 'x-w': '&' } },
    };
    expect(formatPkcs11Uri(uri)).toBe(
      'pkcs11:library-version=2.40;object=a%2Fb%3Fc%3Bd&e%20%C3%A9;slot-id=7;x-v=%3B' +
        '?module-path=/usr/lib/a%20b%3Bc%26d?e|f&x-w=%26',
    );
  });

  test.each([
    [{ path: { type: 'key' } }, /type/],
    [{ path: { libraryVersion: { major: 256, minor: 0 } } }, /library-version/],
    [{ path: { libraryVersion: { major: 1.5, minor: 0 } } }, /library-version/],
    [{ path: { slotId: -1n } }, /slot-id/],
    [{ path: { slotId: 1 } }, /slot-id/],
    [{ path: { token: 5 } }, /"token" must be a string/],
    [{ path: { token: '\ud800' } }, /well-formed/],
    [{ path: { id: 'abc' } }, /Buffer/],
    [{ vendor: { path: { 'x-a;token': 'v' }, query: {} } }, /vendor path attribute name/],
    [{ vendor: { path: { token: 'v' }, query: {} } }, /vendor path attribute name/],
    [{ vendor: { path: {}, query: { 'pin-value': 'v' } } }, /vendor query attribute name/],
  ])('rejects invalid input %#', (partial, message) => {
    const uri = { path: {}, query: {}, vendor: { path: {}, query: {} }, ...partial } as unknown as Pkcs11Uri;
    expect(() => formatPkcs11Uri(uri)).toThrow(Pkcs11UriError);
    expect(() => formatPkcs11Uri(uri)).toThrow(message);
  });

  test('pin-source and pin-value together cannot be written', () => {
    const uri: Pkcs11Uri = { path: {}, query: { pinSource: 'f', pinValue: 'p' }, vendor: { path: {}, query: {} } };
    expect(formatPkcs11Uri(uri)).toBe('pkcs11:?pin-source=f');
    expect(() => formatPkcs11Uri(uri, { includePin: true })).toThrow(/pin-source and pin-value/);
  });
});

describe('round-trip property', () => {
  const text = fc.string({ unit: 'binary', maxLength: 12 });
  const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
  const vendorName = fc.stringMatching(/^x-[A-Za-z0-9_-]{1,8}$/);
  const arbUri: fc.Arbitrary<Pkcs11Uri> = fc
    .record({
      path: fc.record({
        token: opt(text),
        manufacturer: opt(text),
        serial: opt(text),
        model: opt(text),
        libraryManufacturer: opt(text),
        libraryDescription: opt(text),
        libraryVersion: opt(fc.record({ major: fc.integer({ min: 0, max: 255 }), minor: fc.integer({ min: 0, max: 255 }) })),
        slotDescription: opt(text),
        slotManufacturer: opt(text),
        slotId: opt(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
        object: opt(text),
        type: opt(fc.constantFrom('cert' as const, 'data' as const, 'private' as const, 'public' as const, 'secret-key' as const)),
        id: opt(fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a))),
      }),
      pin: fc.oneof(
        fc.constant({}),
        text.map((pinValue) => ({ pinValue })),
        text.map((pinSource) => ({ pinSource })),
      ),
      moduleName: opt(text),
      modulePath: opt(text),
      vendorPath: fc.dictionary(vendorName, text, { maxKeys: 3 }),
      vendorQuery: fc.dictionary(vendorName, text, { maxKeys: 3 }),
    })
    .map(({ path, pin, moduleName, modulePath, vendorPath, vendorQuery }) => ({
      path: dropUndefined(path),
      query: dropUndefined({ ...pin, moduleName, modulePath }),
      vendor: { path: { ...vendorPath }, query: { ...vendorQuery } },
    }));

  test('format(parse(format(x))) is stable and parse recovers x', () => {
    fc.assert(
      fc.property(arbUri, (uri) => {
        const once = formatPkcs11Uri(uri, { includePin: true });
        const parsed = parsePkcs11Uri(once);
        expect(parsed).toEqual(uri);
        expect(formatPkcs11Uri(parsed, { includePin: true })).toBe(once);
        // The default form and the redacted form never carry the PIN.
        const redacted = parsePkcs11Uri(redactPkcs11Uri(once));
        if (uri.query.pinValue !== undefined) expect(redacted.query.pinValue).toBe('***');
        expect(parsePkcs11Uri(formatPkcs11Uri(uri)).query.pinValue).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  test('arbitrary text never makes the parser throw anything but Pkcs11UriError', () => {
    const alphabet = fc.constantFrom(...'pkcs11:;?&=%#/ aAzZ09-_.~xX\u00e9'.split(''), 'token', 'id', 'pin-value', 'x-', '%4', '%C3');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 30 }), (parts) => {
        const input = 'pkcs11:' + parts.join('');
        try {
          parsePkcs11Uri(input);
        } catch (e) {
          expect(e).toBeInstanceOf(Pkcs11UriError);
        }
        expect(typeof redactPkcs11Uri(input)).toBe('string');
      }),
      { numRuns: 2000 },
    );
  });
});

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

describe('redactPkcs11Uri', () => {
  test.each([
    ['pkcs11:token=a?pin-value=1234&module-name=m', 'pkcs11:token=a?pin-value=***&module-name=m'],
    ['pkcs11:token=a?module-name=m&pin-value=12?34', 'pkcs11:token=a?module-name=m&pin-value=***'],
    ['PKCS11:?PIN-VALUE=1234', 'PKCS11:?PIN-VALUE=***'],
    ['pkcs11:?pin%2Dvalue=1234', 'pkcs11:?pin%2Dvalue=***'],
    ['pkcs11:pin-value=1234;token=a', 'pkcs11:pin-value=***;token=a'],
    ['pkcs11:token=a&pin-value=1234', 'pkcs11:token=a&pin-value=***'],
    ['pkcs11:?pin-value=1234&pin-value=5678', 'pkcs11:?pin-value=***&pin-value=***'],
    ['pkcs11:?pin-value=1234#x', 'pkcs11:?pin-value=***#x'],
    ['pkcs11:?pin-value=', 'pkcs11:?pin-value=***'],
    ['pkcs11:token=a?pin-source=/x', 'pkcs11:token=a?pin-source=/x'],
    ['not a uri', 'not a uri'],
    ['', ''],
  ])('%s', (input, output) => {
    expect(redactPkcs11Uri(input)).toBe(output);
  });
});

describe('matching', () => {
  const token = { label: 'my token' + ' '.repeat(24), manufacturerID: 'SoftHSM project', model: 'SoftHSM v2', serialNumber: '1234' };
  const slot = { slotDescription: 'SoftHSM slot ID 0x1', manufacturerID: 'SoftHSM project' };
  const lib = { manufacturerID: 'SoftHSM', libraryDescription: 'Implementation of PKCS11', libraryVersion: { major: 2, minor: 6 } };

  test('absent attributes match anything; present ones must match exactly', () => {
    expect(matchesToken(parsePkcs11Uri('pkcs11:'), token)).toBe(true);
    expect(matchesToken(parsePkcs11Uri('pkcs11:object=x;type=private'), token)).toBe(true);
    expect(matchesToken(parsePkcs11Uri('pkcs11:token=my%20token;serial=1234'), token)).toBe(true);
    expect(matchesToken(parsePkcs11Uri('pkcs11:token=my%20toke'), token)).toBe(false);
    expect(matchesToken(parsePkcs11Uri('pkcs11:token=My%20token'), token)).toBe(false);
    expect(matchesToken(parsePkcs11Uri('pkcs11:token='), token)).toBe(false);
    expect(matchesToken(parsePkcs11Uri('pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project'), token)).toBe(true);
    expect(matchesToken(parsePkcs11Uri('pkcs11:serial=12345'), token)).toBe(false);

    expect(matchesSlot(parsePkcs11Uri('pkcs11:slot-id=5'), 5n, slot)).toBe(true);
    expect(matchesSlot(parsePkcs11Uri('pkcs11:slot-id=5'), 6n, slot)).toBe(false);
    expect(matchesSlot(parsePkcs11Uri('pkcs11:slot-manufacturer=SoftHSM%20project'), 6n, slot)).toBe(true);
    expect(matchesSlot(parsePkcs11Uri('pkcs11:slot-description=other'), 6n, slot)).toBe(false);

    expect(matchesLibrary(parsePkcs11Uri('pkcs11:library-version=2.6'), lib)).toBe(true);
    expect(matchesLibrary(parsePkcs11Uri('pkcs11:library-version=2'), lib)).toBe(false);
    expect(matchesLibrary(parsePkcs11Uri('pkcs11:library-manufacturer=SoftHSM'), lib)).toBe(true);
    expect(matchesLibrary(parsePkcs11Uri('pkcs11:library-description=Implementation'), lib)).toBe(false);
  });

  test('a vendor path attribute (not understood) matches nothing', () => {
    const uri = parsePkcs11Uri('pkcs11:token=my%20token;x-color=blue');
    expect(matchesToken(uri, token)).toBe(false);
    expect(matchesSlot(uri, 0n, slot)).toBe(false);
    expect(matchesLibrary(uri, lib)).toBe(false);
    // Vendor query attributes do not select anything, so they do not prevent a match.
    expect(matchesToken(parsePkcs11Uri('pkcs11:token=my%20token?x-color=blue'), token)).toBe(true);
  });
});

describe('readPinSource', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pin-source-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('files: plain path, file: URI forms, one trailing newline stripped', async () => {
    const file = join(dir, 'pin one');
    writeFileSync(file, '1234\n');
    expect(await readPinSource(file)).toBe('1234');
    expect(await readPinSource(pathToFileURL(file).href)).toBe('1234');
    expect(await readPinSource(`file:${pathToFileURL(file).pathname}`)).toBe('1234');

    const crlf = join(dir, 'crlf');
    writeFileSync(crlf, '12 34\r\n');
    expect(await readPinSource(crlf)).toBe('12 34');
    const two = join(dir, 'two');
    writeFileSync(two, '5678\n\n');
    expect(await readPinSource(two)).toBe('5678\n');
    const bare = join(dir, 'bare');
    writeFileSync(bare, 'pin');
    expect(await readPinSource(bare)).toBe('pin');
  });

  test('a pin-source taken from a parsed URI', async () => {
    const file = join(dir, 'token pin');
    writeFileSync(file, 'from-uri\n');
    const uri = parsePkcs11Uri(`pkcs11:token=t?pin-source=${pathToFileURL(file).href}`);
    expect(await readPinSource(uri.query.pinSource!)).toBe('from-uri');
  });

  test('env:NAME', async () => {
    process.env.PKCS11_TEST_PIN = 'env-pin';
    try {
      expect(await readPinSource('env:PKCS11_TEST_PIN')).toBe('env-pin');
    } finally {
      delete process.env.PKCS11_TEST_PIN;
    }
    await expect(readPinSource('env:PKCS11_TEST_PIN')).rejects.toThrow(/PKCS11_TEST_PIN is not set/);
    await expect(readPinSource('env:')).rejects.toThrow(PinSourceError);
  });

  test('errors never contain the PIN', async () => {
    const big = join(dir, 'big');
    writeFileSync(big, 'secretpin'.repeat(1000));
    const bad = join(dir, 'bad-utf8');
    writeFileSync(bad, Buffer.from([0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0xff]));
    for (const source of [big, bad, join(dir, 'missing'), '|/bin/cat', 'https://example.com/pin', '', 'file://remote-host/x']) {
      const error = await readPinSource(source).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PinSourceError);
      expect((error as Error).message).not.toMatch(/secret/);
    }
  });
});
