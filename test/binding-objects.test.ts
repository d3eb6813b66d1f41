/**
 * Objects through the raw binding: attribute values of every kind in both directions, per-
 * attribute statuses, nested templates and mechanism lists, set/copy/destroy, searches, and
 * the checking of handle and template arguments. Session objects on a fresh SoftHSM2 token.
 */
import {
  Attribute,
  C,
  Handle,
  expectRejectsPkcs11,
  expectThrowsPkcs11,
  expectTypeError,
  generateAesKey,
  openTestModule,
  TestModule,
  thrownBy,
  ulongArgMessage,
  valuesOf,
} from './support/binding-helpers';

const tm: TestModule = openTestModule();
const { p11, session } = tm;
afterAll(() => tm.close());

const UNAVAILABLE = 2n ** 64n - 1n; // CK_UNAVAILABLE_INFORMATION on LP64

function dataObject(extra: Attribute[] = []): Handle {
  return p11.C_CreateObject(session, [
    { type: C.CKA_CLASS, value: C.CKO_DATA },
    { type: C.CKA_TOKEN, value: false },
    { type: C.CKA_PRIVATE, value: false },
    ...extra,
  ]);
}
/** A DER-ish placeholder: SoftHSM2 stores certificate values without parsing them. */
const CERT_STUB = Buffer.from([0x30, 0x00]);
function certificate(extra: Attribute[]): Handle {
  return p11.C_CreateObject(session, [
    { type: C.CKA_CLASS, value: C.CKO_CERTIFICATE },
    { type: C.CKA_CERTIFICATE_TYPE, value: C.CKC_X_509 },
    { type: C.CKA_TOKEN, value: false },
    { type: C.CKA_SUBJECT, value: CERT_STUB },
    { type: C.CKA_VALUE, value: CERT_STUB },
    ...extra,
  ]);
}

describe('attribute values round trip', () => {
  test('a data object with bool, ulong, bytes, non-ASCII UTF-8 and a 64 KiB value', () => {
    const big = Buffer.alloc(64 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 131 + 7) & 0xff;
    const label = 'Ünïcødé ✓ 日本語 🔑';
    const handle = dataObject([
      { type: C.CKA_LABEL, value: label },
      { type: C.CKA_APPLICATION, value: 'app' },
      { type: C.CKA_OBJECT_ID, value: new Uint8Array([0x06, 0x03, 0x2a, 0x03, 0x04]) },
      { type: C.CKA_VALUE, value: big },
    ]);
    expect(typeof handle).toBe('number');
    const results = p11.C_GetAttributeValue(session, handle, [
      C.CKA_CLASS,
      C.CKA_TOKEN,
      C.CKA_PRIVATE,
      C.CKA_MODIFIABLE,
      C.CKA_LABEL,
      C.CKA_APPLICATION,
      C.CKA_OBJECT_ID,
      C.CKA_VALUE,
    ]);
    expect(results.map((r) => r.type)).toEqual([
      C.CKA_CLASS,
      C.CKA_TOKEN,
      C.CKA_PRIVATE,
      C.CKA_MODIFIABLE,
      C.CKA_LABEL,
      C.CKA_APPLICATION,
      C.CKA_OBJECT_ID,
      C.CKA_VALUE,
    ]);
    expect(results.every((r) => r.status === undefined)).toBe(true);
    const values = valuesOf(results);
    expect(values.get(C.CKA_CLASS)).toBe(C.CKO_DATA);
    expect(values.get(C.CKA_TOKEN)).toBe(false);
    expect(values.get(C.CKA_PRIVATE)).toBe(false);
    expect(values.get(C.CKA_MODIFIABLE)).toBe(true);
    expect(values.get(C.CKA_LABEL)).toBe(label);
    expect(values.get(C.CKA_APPLICATION)).toBe('app');
    expect(values.get(C.CKA_OBJECT_ID)).toEqual(Buffer.from([0x06, 0x03, 0x2a, 0x03, 0x04]));
    const value = values.get(C.CKA_VALUE) as Buffer;
    expect(Buffer.isBuffer(value)).toBe(true);
    expect(value.equals(big)).toBe(true);
  });

  test('bytes from a string (UTF-8), an ArrayBuffer and a Uint8Array view; empty values', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const fromString = dataObject([{ type: C.CKA_VALUE, value: 'é€' }]);
    const fromArrayBuffer = dataObject([{ type: C.CKA_VALUE, value: new Uint8Array([7, 8]).buffer }]);
    const fromView = dataObject([{ type: C.CKA_VALUE, value: backing.subarray(2, 5) }]);
    const empty = dataObject([
      { type: C.CKA_VALUE, value: Buffer.alloc(0) },
      { type: C.CKA_LABEL, value: '' },
    ]);
    const read = (h: Handle): unknown => p11.C_GetAttributeValue(session, h, [C.CKA_VALUE])[0].value;
    expect(read(fromString)).toEqual(Buffer.from('é€', 'utf8'));
    expect(read(fromArrayBuffer)).toEqual(Buffer.from([7, 8]));
    expect(read(fromView)).toEqual(Buffer.from([1, 2, 3]));
    expect(p11.C_GetAttributeValue(session, empty, [C.CKA_VALUE, C.CKA_LABEL])).toEqual([
      { type: C.CKA_VALUE, value: Buffer.alloc(0) },
      { type: C.CKA_LABEL, value: '' },
    ]);
  });

  test('CK_DATE from a Date (its UTC day) and from "YYYYMMDD"; an absent date reads back as null', () => {
    // 23:59 UTC on a leap day: the calendar day is taken in UTC, whatever the local zone.
    const handle = certificate([
      { type: C.CKA_START_DATE, value: new Date(Date.UTC(2024, 1, 29, 23, 59, 30)) },
      { type: C.CKA_END_DATE, value: '20301231' },
    ]);
    const [start, end] = p11.C_GetAttributeValue(session, handle, [C.CKA_START_DATE, C.CKA_END_DATE]);
    expect(Object.prototype.toString.call(start.value)).toBe('[object Date]');
    expect((start.value as Date).getTime()).toBe(Date.UTC(2024, 1, 29));
    expect((end.value as Date).getTime()).toBe(Date.UTC(2030, 11, 31));
    const undated = certificate([]);
    expect(p11.C_GetAttributeValue(session, undated, [C.CKA_START_DATE])).toEqual([{ type: C.CKA_START_DATE, value: null }]);

    for (const bad of ['2024-01-01', '2024011', new Date(NaN), 20240101]) {
      expectTypeError(
        thrownBy(() => certificate([{ type: C.CKA_START_DATE, value: bad as string }])),
        "C_CreateObject: argument 'template[5].value' must be a valid Date or a 'YYYYMMDD' string",
      );
    }
  });

  test('a sensitive key: CKA_VALUE has status CKR_ATTRIBUTE_SENSITIVE, the other attributes still arrive (sync and async)', async () => {
    const key = generateAesKey(p11, session);
    const query = [C.CKA_KEY_TYPE, C.CKA_VALUE, { type: C.CKA_VALUE_LEN }, C.CKA_SENSITIVE, C.CKA_CLASS];
    const expected = [
      { type: C.CKA_KEY_TYPE, value: C.CKK_AES },
      { type: C.CKA_VALUE, value: null, status: 'CKR_ATTRIBUTE_SENSITIVE' },
      { type: C.CKA_VALUE_LEN, value: 32 },
      { type: C.CKA_SENSITIVE, value: true },
      { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
    ];
    expect(p11.C_GetAttributeValue(session, key, query)).toEqual(expected);
    expect(await p11.C_GetAttributeValueAsync(session, key, query)).toEqual(expected);
  });

  test('an attribute type unknown to the module, or foreign to the class: status CKR_ATTRIBUTE_TYPE_INVALID', () => {
    const handle = dataObject([{ type: C.CKA_LABEL, value: 'typed' }]);
    expect(p11.C_GetAttributeValue(session, handle, [0x7ffffff0, C.CKA_LABEL, C.CKA_MODULUS, 0x80001234])).toEqual([
      { type: 0x7ffffff0, value: null, status: 'CKR_ATTRIBUTE_TYPE_INVALID' },
      { type: C.CKA_LABEL, value: 'typed' },
      { type: C.CKA_MODULUS, value: null, status: 'CKR_ATTRIBUTE_TYPE_INVALID' },
      { type: 0x80001234, value: null, status: 'CKR_ATTRIBUTE_TYPE_INVALID' },
    ]);
    // Creating with an attribute the class does not have is the module's error.
    expectThrowsPkcs11(() => dataObject([{ type: C.CKA_START_DATE, value: '20240101' }]), 'CKR_ATTRIBUTE_TYPE_INVALID', 'C_CreateObject');
  });

  test('CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE and CKA_ALLOWED_MECHANISMS round trip on an AES key; the mechanism list is enforced', () => {
    const key = generateAesKey(p11, session, [
      { type: C.CKA_WRAP, value: true },
      { type: C.CKA_UNWRAP, value: true },
      { type: C.CKA_WRAP_TEMPLATE, value: [{ type: C.CKA_EXTRACTABLE, value: true }, { type: C.CKA_KEY_TYPE, value: C.CKK_AES }] },
      { type: C.CKA_UNWRAP_TEMPLATE, value: [{ type: C.CKA_SENSITIVE, value: true }] },
      { type: C.CKA_ALLOWED_MECHANISMS, value: [C.CKM_AES_CBC_PAD, BigInt(C.CKM_AES_KEY_WRAP)] },
    ]);
    const read = p11.C_GetAttributeValue(session, key, [
      C.CKA_WRAP_TEMPLATE,
      C.CKA_UNWRAP_TEMPLATE,
      C.CKA_ALLOWED_MECHANISMS,
      C.CKA_DERIVE_TEMPLATE,
    ]);
    // SoftHSM2 keeps the template's members in its own order (by attribute type).
    const wrapTemplate = read[0].value as Array<{ type: number; value: unknown }>;
    expect([...wrapTemplate].sort((a, b) => a.type - b.type)).toEqual([
      { type: C.CKA_KEY_TYPE, value: C.CKK_AES },
      { type: C.CKA_EXTRACTABLE, value: true },
    ]);
    expect(read.slice(1)).toEqual([
      { type: C.CKA_UNWRAP_TEMPLATE, value: [{ type: C.CKA_SENSITIVE, value: true }] },
      { type: C.CKA_ALLOWED_MECHANISMS, value: [C.CKM_AES_CBC_PAD, C.CKM_AES_KEY_WRAP] },
      // SoftHSM2 2.6 has no CKA_DERIVE_TEMPLATE on secret keys.
      { type: C.CKA_DERIVE_TEMPLATE, value: null, status: 'CKR_ATTRIBUTE_TYPE_INVALID' },
    ]);
    expect(p11.encryptSync(session, { mechanism: C.CKM_AES_CBC_PAD, parameter: Buffer.alloc(16) }, key, Buffer.from('x'))).toHaveLength(16);
    expectThrowsPkcs11(
      () => p11.encryptSync(session, { mechanism: C.CKM_AES_GCM, parameter: { iv: Buffer.alloc(12) } }, key, Buffer.from('x')),
      'CKR_MECHANISM_INVALID',
      'encrypt',
    );
    // A fresh key's lists are empty, not absent.
    const plain = generateAesKey(p11, session);
    expect(p11.C_GetAttributeValue(session, plain, [C.CKA_ALLOWED_MECHANISMS, C.CKA_WRAP_TEMPLATE])).toEqual([
      { type: C.CKA_ALLOWED_MECHANISMS, value: [] },
      { type: C.CKA_WRAP_TEMPLATE, value: [] },
    ]);
  });
});

describe('changing, copying and destroying objects', () => {
  test('C_SetAttributeValue (sync and async) changes what is modifiable, and refuses what is not', async () => {
    const handle = dataObject([{ type: C.CKA_LABEL, value: 'before' }, { type: C.CKA_VALUE, value: 'v' }]);
    p11.C_SetAttributeValue(session, handle, [{ type: C.CKA_LABEL, value: 'after ✓' }]);
    expect(p11.C_GetAttributeValue(session, handle, [C.CKA_LABEL])).toEqual([{ type: C.CKA_LABEL, value: 'after ✓' }]);
    await p11.C_SetAttributeValueAsync(session, handle, [{ type: C.CKA_LABEL, value: 'async' }]);
    expect(p11.C_GetAttributeValue(session, handle, [C.CKA_LABEL])).toEqual([{ type: C.CKA_LABEL, value: 'async' }]);
    expectThrowsPkcs11(
      () => p11.C_SetAttributeValue(session, handle, [{ type: C.CKA_CLASS, value: C.CKO_SECRET_KEY }]),
      'CKR_ATTRIBUTE_READ_ONLY',
      'C_SetAttributeValue',
    );
    const frozen = dataObject([{ type: C.CKA_MODIFIABLE, value: false }]);
    await expectRejectsPkcs11(
      p11.C_SetAttributeValueAsync(session, frozen, [{ type: C.CKA_LABEL, value: 'x' }]),
      'CKR_ACTION_PROHIBITED',
      'C_SetAttributeValue',
    );
  });

  test('C_CopyObject (sync and async): a new object with the changes, the original untouched', async () => {
    const original = dataObject([{ type: C.CKA_LABEL, value: 'original' }, { type: C.CKA_VALUE, value: Buffer.from([1, 2, 3]) }]);
    const copy = p11.C_CopyObject(session, original, [{ type: C.CKA_LABEL, value: 'copy' }]);
    const copy2 = await p11.C_CopyObjectAsync(session, original, [{ type: C.CKA_LABEL, value: 'copy 2' }]);
    expect(new Set([original, copy, copy2]).size).toBe(3);
    const read = (h: Handle): unknown => p11.C_GetAttributeValue(session, h, [C.CKA_LABEL, C.CKA_VALUE]).map((r) => r.value);
    expect(read(original)).toEqual(['original', Buffer.from([1, 2, 3])]);
    expect(read(copy)).toEqual(['copy', Buffer.from([1, 2, 3])]);
    expect(read(copy2)).toEqual(['copy 2', Buffer.from([1, 2, 3])]);
    expectThrowsPkcs11(
      () => p11.C_CopyObject(session, original, [{ type: C.CKA_CLASS, value: C.CKO_SECRET_KEY }]),
      'CKR_ATTRIBUTE_READ_ONLY',
      'C_CopyObject',
    );
  });

  test('C_DestroyObject, then any use of the handle: CKR_OBJECT_HANDLE_INVALID', async () => {
    const handle = dataObject([{ type: C.CKA_LABEL, value: 'doomed' }]);
    p11.C_DestroyObject(session, handle);
    expectThrowsPkcs11(() => p11.C_GetAttributeValue(session, handle, [C.CKA_LABEL]), 'CKR_OBJECT_HANDLE_INVALID', 'C_GetAttributeValue');
    expectThrowsPkcs11(() => p11.C_DestroyObject(session, handle), 'CKR_OBJECT_HANDLE_INVALID', 'C_DestroyObject');
    expectThrowsPkcs11(() => p11.C_GetObjectSize(session, handle), 'CKR_OBJECT_HANDLE_INVALID', 'C_GetObjectSize');
    await expectRejectsPkcs11(
      p11.C_CopyObjectAsync(session, handle, [{ type: C.CKA_LABEL, value: 'x' }]),
      'CKR_OBJECT_HANDLE_INVALID',
      'C_CopyObject',
    );
    const other = dataObject();
    await p11.C_DestroyObjectAsync(session, other);
    await expectRejectsPkcs11(p11.C_DestroyObjectAsync(session, other), 'CKR_OBJECT_HANDLE_INVALID', 'C_DestroyObject');
  });

  test('C_GetObjectSize: SoftHSM2 answers CK_UNAVAILABLE_INFORMATION, passed on as the all-ones bigint', () => {
    expect(p11.C_GetObjectSize(session, dataObject())).toBe(UNAVAILABLE);
  });
});

// Empty templates and type lists: SoftHSM2 answers a NULL template with CKR_ARGUMENTS_BAD even
// when ulCount is 0, so the binding never passes NULL (Template::data, ReadValues). With a
// non-NULL pointer and ulCount 0: C_CopyObject, C_GetAttributeValue and C_SetAttributeValue
// succeed, and C_CreateObject gives CKR_TEMPLATE_INCOMPLETE.
describe('empty templates', () => {
  test('C_CopyObject with an empty template copies the object as it is', () => {
    const original = dataObject([{ type: C.CKA_LABEL, value: 'plain copy' }]);
    const copy = p11.C_CopyObject(session, original, []);
    expect(copy).not.toEqual(original);
    expect(p11.C_GetAttributeValue(session, copy, [C.CKA_LABEL])).toEqual([{ type: C.CKA_LABEL, value: 'plain copy' }]);
  });
  test('C_GetAttributeValue with no types gives an empty list', () => {
    expect(p11.C_GetAttributeValue(session, dataObject(), [])).toEqual([]);
  });
  test('C_SetAttributeValue with an empty template changes nothing and succeeds', () => {
    expect(p11.C_SetAttributeValue(session, dataObject(), [])).toBeUndefined();
  });
  test('C_CreateObject with an empty template: the module says CKR_TEMPLATE_INCOMPLETE', () => {
    expectThrowsPkcs11(() => p11.C_CreateObject(session, []), 'CKR_TEMPLATE_INCOMPLETE', 'C_CreateObject');
  });
  test('C_FindObjectsInit with an empty template finds every object (SoftHSM2 accepts NULL there)', () => {
    const mine = dataObject();
    expect(p11.findObjectsSync(session, [])).toContain(mine);
  });
});

describe('searching', () => {
  const APP = 'find-300';
  let created: Handle[];
  beforeAll(() => {
    created = Array.from({ length: 300 }, (_, i) =>
      dataObject([{ type: C.CKA_APPLICATION, value: APP }, { type: C.CKA_LABEL, value: `item ${i}` }]),
    );
  });
  const template = (): Attribute[] => [{ type: C.CKA_CLASS, value: C.CKO_DATA }, { type: C.CKA_APPLICATION, value: APP }];
  const sorted = (handles: Handle[]): number[] => handles.map(Number).sort((a, b) => a - b);

  test('C_FindObjectsInit / C_FindObjects / C_FindObjectsFinal in batches finds all 300', async () => {
    p11.C_FindObjectsInit(session, template());
    expectThrowsPkcs11(() => p11.C_FindObjectsInit(session, template()), 'CKR_OPERATION_ACTIVE', 'C_FindObjectsInit');
    const first = p11.C_FindObjects(session); // default maxCount: 64
    expect(first).toHaveLength(64);
    const found = [...first];
    for (;;) {
      const batch = found.length % 2 ? p11.C_FindObjects(session, 100) : await p11.C_FindObjectsAsync(session, 100);
      expect(batch.length).toBeLessThanOrEqual(100);
      if (batch.length === 0) break;
      found.push(...batch);
    }
    p11.C_FindObjectsFinal(session);
    expect(sorted(found)).toEqual(sorted(created));
    expectThrowsPkcs11(() => p11.C_FindObjects(session), 'CKR_OPERATION_NOT_INITIALIZED', 'C_FindObjects');
    await expectRejectsPkcs11(p11.C_FindObjectsFinalAsync(session), 'CKR_OPERATION_NOT_INITIALIZED', 'C_FindObjectsFinal');
  });

  test('the one-hop findObjects / findObjectsSync find the same 300, honour a limit, and leave no search active', async () => {
    expect(sorted(await p11.findObjects(session, template()))).toEqual(sorted(created));
    expect(sorted(p11.findObjectsSync(session, template()))).toEqual(sorted(created));
    const ten = await p11.findObjects(session, template(), 10);
    expect(ten).toHaveLength(10);
    for (const h of ten) expect(created).toContain(h);
    expect(p11.findObjectsSync(session, [{ type: C.CKA_APPLICATION, value: 'no such app' }])).toEqual([]);
    // Each one-hop search ended with C_FindObjectsFinal: a new search can start.
    await p11.C_FindObjectsInitAsync(session, template());
    expect(await p11.C_FindObjectsAsync(session, 1)).toHaveLength(1);
    await p11.C_FindObjectsFinalAsync(session);
    // A search already active in the session: the one-hop call reports it.
    p11.C_FindObjectsInit(session, []);
    await expectRejectsPkcs11(p11.findObjects(session, template()), 'CKR_OPERATION_ACTIVE', 'findObjects');
    p11.C_FindObjectsFinal(session);
  });

  test('search argument checks', () => {
    expectTypeError(thrownBy(() => p11.C_FindObjects(session, 0)), "C_FindObjects: argument 'maxCount' must be an integer from 1 to 100000");
    expectTypeError(thrownBy(() => p11.C_FindObjects(session, 100001)), "C_FindObjects: argument 'maxCount' must be an integer from 1 to 100000");
    expectTypeError(thrownBy(() => p11.findObjectsSync(session, [], 0)), "findObjects: argument 'limit' must be a positive integer");
    expectTypeError(
      thrownBy(() => p11.C_FindObjectsInit(session, { type: 1 } as unknown as Attribute[])),
      "C_FindObjectsInit: argument 'template' must be an array of { type, value } attributes",
    );
  });
});

describe('handles', () => {
  test('bigint handles are accepted wherever numbers are', async () => {
    const handle = dataObject([{ type: C.CKA_LABEL, value: 'big' }]);
    const expected = [{ type: C.CKA_LABEL, value: 'big' }];
    expect(p11.C_GetAttributeValue(BigInt(session), BigInt(handle), [BigInt(C.CKA_LABEL)])).toEqual(expected);
    expect(await p11.C_GetAttributeValueAsync(BigInt(session), BigInt(handle), [C.CKA_LABEL])).toEqual(expected);
    // Results come back as numbers when they fit.
    const found = p11.findObjectsSync(BigInt(session), [{ type: C.CKA_LABEL, value: 'big' }]);
    expect(found).toEqual([handle]);
    p11.C_DestroyObject(BigInt(session), BigInt(handle));
    // The largest CK_ULONG is a valid argument (no such object), not a TypeError.
    expectThrowsPkcs11(() => p11.C_DestroyObject(session, UNAVAILABLE), 'CKR_OBJECT_HANDLE_INVALID', 'C_DestroyObject');
  });

  test.each([
    ['-1', -1],
    ['1.5', 1.5],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['2**53', 2 ** 53],
    ['-1n', -1n],
    ['2n**64n', 2n ** 64n],
    ["'1'", '1'],
    ['null', null],
    ['undefined', undefined],
    ['{}', {}],
  ])('handle %s: TypeError naming the argument', (_, bad) => {
    const handle = dataObject();
    expectTypeError(thrownBy(() => p11.C_GetAttributeValue(session, bad as number, [C.CKA_LABEL])), ulongArgMessage('C_GetAttributeValue', 'object'));
    expectTypeError(thrownBy(() => p11.C_GetAttributeValue(bad as number, handle, [C.CKA_LABEL])), ulongArgMessage('C_GetAttributeValue', 'session'));
    expectTypeError(thrownBy(() => p11.C_DestroyObjectAsync(session, bad as number)), ulongArgMessage('C_DestroyObject', 'object'));
    // Nothing reached the module: the object is still there.
    expect(p11.C_GetAttributeValue(session, handle, [C.CKA_CLASS])).toEqual([{ type: C.CKA_CLASS, value: C.CKO_DATA }]);
  });
});

describe('template errors name the path', () => {
  const base: Attribute[] = [{ type: C.CKA_CLASS, value: C.CKO_DATA }];
  test.each<[string, unknown[], string]>([
    ['string attribute given a number', [...base, { type: C.CKA_LABEL, value: 5 }], "'template[1].value' must be a Buffer, Uint8Array or string"],
    ['bool attribute given a number', [...base, { type: C.CKA_TOKEN, value: 1 }], "'template[1].value' must be a boolean"],
    ['ulong attribute given a string', [{ type: C.CKA_CLASS, value: 'data' }], "'template[0].value' must be a non-negative integer"],
    ['bytes attribute given a number', [...base, { type: C.CKA_VALUE, value: 5 }], "'template[1].value' must be a Buffer, Uint8Array or string"],
    ['negative type', [...base, { type: -1, value: 'x' }], "'template[1].type' must be an attribute type (non-negative integer)"],
    ['missing type', [...base, { value: 'x' }], "'template[1].type' must be an attribute type (non-negative integer)"],
    ['entry not an object', [...base, 5], "'template[1]' must be an object { type, value }"],
    ['entry an array', [...base, [C.CKA_LABEL, 'x']], "'template[1]' must be an object { type, value }"],
    ['nested template member', [...base, { type: C.CKA_WRAP_TEMPLATE, value: [{ type: C.CKA_TOKEN, value: 'yes' }] }], "'template[1].value[0].value' must be a boolean"],
    ['nested template inside a nested template', [{ type: C.CKA_WRAP_TEMPLATE, value: [{ type: C.CKA_UNWRAP_TEMPLATE, value: [] }] }], "'template[0].value' must be a template without nested templates"],
    ['mechanism list with a negative entry', [{ type: C.CKA_ALLOWED_MECHANISMS, value: [C.CKM_ECDSA, -1] }], "'template[0].value' must be an array of mechanism types"],
    ['mechanism list not an array', [{ type: C.CKA_ALLOWED_MECHANISMS, value: C.CKM_ECDSA }], "'template[0].value' must be an array of mechanism types"],
  ])('%s', (_, template, message) => {
    expectTypeError(thrownBy(() => p11.C_CreateObject(session, template as Attribute[])), `C_CreateObject: argument ${message}`);
  });

  test('the template itself, its size, and the other template-taking functions', () => {
    const handle = dataObject();
    expectTypeError(
      thrownBy(() => p11.C_CreateObject(session, undefined as unknown as Attribute[])),
      "C_CreateObject: argument 'template' must be an array of { type, value } attributes",
    );
    expectTypeError(
      thrownBy(() => p11.C_CreateObject(session, Array.from({ length: 1025 }, () => ({ type: C.CKA_LABEL, value: 'x' })))),
      "C_CreateObject: argument 'template' must be at most 1024 attributes",
    );
    expectTypeError(
      thrownBy(() => p11.C_SetAttributeValue(session, handle, [{ type: C.CKA_LABEL, value: true }])),
      "C_SetAttributeValue: argument 'template[0].value' must be a Buffer, Uint8Array or string",
    );
    expectTypeError(
      thrownBy(() => p11.C_CopyObjectAsync(session, handle, [{ type: C.CKA_TOKEN, value: 'no' }])),
      "C_CopyObject: argument 'template[0].value' must be a boolean",
    );
    expectTypeError(
      thrownBy(() => p11.findObjects(session, [{ type: C.CKA_CLASS, value: -2 }])),
      "findObjects: argument 'template[0].value' must be a non-negative integer",
    );
    expectTypeError(
      thrownBy(() => p11.C_GetAttributeValue(session, handle, [C.CKA_LABEL, 'label' as unknown as number])),
      "C_GetAttributeValue: argument 'types' must be an array of attribute types (or { type } objects)",
    );
    expectTypeError(
      thrownBy(() => p11.C_GetAttributeValue(session, handle, Array.from({ length: 1025 }, () => C.CKA_LABEL))),
      "C_GetAttributeValue: argument 'types' must be at most 1024 attribute types",
    );
  });
});
