'use strict';
/**
 * Leak loop: 50 rounds of key generation and object handling through the raw binding — EC
 * key pairs (sync and async), AES keys, attribute reads (values, nested templates, sensitive
 * attributes), C_SetAttributeValue, C_CopyObject, searches, AES-GCM round trips, destroying
 * everything again — then close(). For scripts/valgrind.sh; runs standalone too:
 *   node test/leak/keygen-loop.js [rounds]
 */
const crypto = require('crypto');
const { C, openModule, ecKeyPair, expectFailure } = require('./common');

const ROUNDS = Number(process.argv[2] || process.env.LEAK_KEYGENS || 50);

(async () => {
  const { p11, session } = openModule();
  let generated = 0;
  let problems = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const pair = i % 2 === 0
      ? ecKeyPair(p11, session, `leak-key-${i}`)
      : await p11.C_GenerateKeyPairAsync(session, C.CKM_EC_KEY_PAIR_GEN,
          [{ type: C.CKA_TOKEN, value: false }, { type: C.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }, { type: C.CKA_VERIFY, value: true }],
          [{ type: C.CKA_TOKEN, value: false }, { type: C.CKA_SIGN, value: true }, { type: C.CKA_LABEL, value: `leak-key-${i}` },
           { type: C.CKA_ALLOWED_MECHANISMS, value: [C.CKM_ECDSA] }]);
    const aes = await p11.C_GenerateKeyAsync(session, C.CKM_AES_KEY_GEN, [
      { type: C.CKA_TOKEN, value: false }, { type: C.CKA_VALUE_LEN, value: 32 }, { type: C.CKA_ENCRYPT, value: true }, { type: C.CKA_DECRYPT, value: true },
      { type: C.CKA_EXTRACTABLE, value: true }, { type: C.CKA_SENSITIVE, value: false },
      { type: C.CKA_WRAP_TEMPLATE, value: [{ type: C.CKA_TOKEN, value: false }] },
    ]);
    generated += 2;
    // Attribute reads: plain values, a nested template, a sensitive value (status instead of value).
    const attributes = await p11.C_GetAttributeValueAsync(session, pair.privateKey, [C.CKA_CLASS, C.CKA_LABEL, C.CKA_KEY_TYPE, C.CKA_VALUE, C.CKA_ALLOWED_MECHANISMS]);
    if (attributes[3].value !== null) problems++; // EC private keys default to sensitive
    const [value, template] = p11.C_GetAttributeValue(session, aes, [C.CKA_VALUE, C.CKA_WRAP_TEMPLATE]);
    if (value.value.length !== 32 || !Array.isArray(template.value)) problems++;
    p11.C_SetAttributeValue(session, pair.publicKey, [{ type: C.CKA_LABEL, value: `renamed-${i}` }]);
    const copy = p11.C_CopyObject(session, aes, [{ type: C.CKA_LABEL, value: 'copy' }]);
    const found = await p11.findObjects(session, [{ type: C.CKA_LABEL, value: `renamed-${i}` }]);
    if (found.length !== 1) problems++;
    // AES-GCM round trip with the generated key.
    const iv = crypto.randomBytes(12);
    const mechanism = { mechanism: C.CKM_AES_GCM, parameter: { iv, aad: Buffer.from('aad'), tagBits: 128 } };
    const plain = crypto.randomBytes(100);
    const sealed = await p11.encrypt(session, mechanism, aes, plain);
    const opened = p11.decryptSync(session, mechanism, copy, sealed);
    if (!opened.equals(plain)) problems++;
    expectFailure(() => p11.C_GenerateKeyPair(session, C.CKM_EC_KEY_PAIR_GEN, [{ type: C.CKA_EC_PARAMS, value: 5 }], []));
    await expectFailure(() => p11.C_GenerateKeyAsync(session, C.CKM_AES_KEY_GEN, [{ type: C.CKA_VALUE_LEN, value: 7 }]));
    for (const handle of [pair.privateKey, pair.publicKey, aes]) p11.C_DestroyObject(session, handle);
    await p11.C_DestroyObjectAsync(session, copy);
  }
  p11.C_CloseSession(session);
  const { drained } = p11.close();
  console.log(JSON.stringify({ generated, problems, drained }));
  if (problems !== 0 || !drained) process.exitCode = 1;
})().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
