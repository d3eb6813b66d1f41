'use strict';
/**
 * Leak loop: 2,000 ECDSA signatures through every signing path of the raw binding — one-hop
 * async sign(), signSync(), C_SignInit + C_Sign (sync and async), a multi-part token digest,
 * verify(), signTo() and signToBatch() answering through a completion sink — plus the error
 * paths (argument TypeErrors, module errors), then close().
 * Engine threads beyond one per core end and start again throughout (a 5 ms idle timeout).
 * Every signature is checked with node:crypto. For scripts/valgrind.sh; runs standalone too:
 *   node test/leak/sign-loop.js [count]
 */
const crypto = require('crypto');
const { C, openModule, ecKeyPair, expectFailure, sinkRecords } = require('./common');

const COUNT = Number(process.argv[2] || process.env.LEAK_SIGNS || 2000);

// signTo() answers through the sink: each ticket's promise is settled from it. A 256-byte slab
// holds three ECDSA records, so batches of eight cross slab boundaries.
const waiting = new Map();
function answer(ticket, value, failed) {
  const settle = waiting.get(ticket);
  waiting.delete(ticket);
  if (settle) settle(failed ? Promise.reject(value) : value);
}
function useSink(binding) {
  binding.setSignSink((slab, count) => {
    for (const [ticket, signature] of sinkRecords(slab, count)) answer(ticket, signature, false);
  }, answer, 256);
}
let nextTicket = 0;
function signTo(p11, ...args) {
  const ticket = nextTicket++;
  return new Promise((resolve) => {
    waiting.set(ticket, resolve);
    p11.signTo(...args, ticket);
  });
}

// signToBatch(): one call for several signTo() requests (six numbers each, the data packed).
function signToBatch(p11, session, mechanism, key, inputs) {
  const fields = new Float64Array(inputs.length * 6);
  const data = new Uint8Array(inputs.reduce((n, input) => n + input.length, 0));
  let at = 0;
  const answers = inputs.map((input, i) => {
    const ticket = nextTicket++;
    fields.set([session, mechanism, key, ticket, at, input.length], i * 6);
    data.set(input, at);
    at += input.length;
    return new Promise((resolve) => waiting.set(ticket, resolve));
  });
  p11.signToBatch(inputs.length, fields, data);
  return Promise.all(answers);
}

(async () => {
  // Threads beyond one per core end after 5 ms idle, so the bursts of eight below start them and
  // the synchronous calls between retire them, again and again (native/async/engine.cc).
  const { p11, session, binding } = openModule({ threadIdleMs: 5 });
  useSink(binding);
  const { privateKey, publicKey, key } = ecKeyPair(p11, session, 'leak-sign');
  let signed = 0;
  let invalid = 0;
  const check = (message, signature) => {
    signed++;
    if (!crypto.verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, signature)) invalid++;
  };
  for (let i = 0; signed < COUNT; i++) {
    const message = Buffer.from(`message ${i}`);
    const digest = crypto.createHash('sha256').update(message).digest();
    switch (i % 7) {
      case 0: {
        // A batch of one-hop async signs, in flight together.
        const batch = await Promise.all(Array.from({ length: 8 }, () => p11.sign(session, C.CKM_ECDSA, privateKey, digest)));
        for (const s of batch) check(message, s);
        break;
      }
      case 1:
        check(message, p11.signSync(session, C.CKM_ECDSA, privateKey, digest));
        break;
      case 2:
        p11.C_SignInit(session, C.CKM_ECDSA, privateKey);
        check(message, p11.C_Sign(session, digest));
        break;
      case 3:
        await p11.C_SignInitAsync(session, { mechanism: C.CKM_ECDSA, parameter: null }, privateKey);
        check(message, await p11.C_SignAsync(session, new Uint8Array(digest)));
        break;
      case 4: {
        // The digest computed on the token in parts, then signed.
        p11.C_DigestInit(session, C.CKM_SHA256);
        p11.C_DigestUpdate(session, message.subarray(0, 3));
        await p11.C_DigestUpdateAsync(session, message.subarray(3));
        const tokenDigest = p11.C_DigestFinal(session);
        if (!tokenDigest.equals(digest)) invalid++;
        check(message, p11.signSync(session, C.CKM_ECDSA, privateKey, tokenDigest));
        break;
      }
      case 5: {
        const signature = p11.signSync(session, C.CKM_ECDSA, privateKey, digest);
        check(message, signature);
        if (!(await p11.verify(session, C.CKM_ECDSA, publicKey, digest, signature))) invalid++;
        if (p11.verifySync(session, C.CKM_ECDSA, publicKey, digest, Buffer.alloc(64))) invalid++;
        // Error paths: a TypeError from argument checks, a Pkcs11Error from the module.
        expectFailure(() => p11.signSync(session, C.CKM_ECDSA, privateKey, 'not bytes'));
        expectFailure(() => p11.signSync(session, { mechanism: C.CKM_AES_GCM, parameter: { iv: Buffer.alloc(12) } }, privateKey, digest));
        await expectFailure(() => p11.sign(session, C.CKM_ECDSA, 0xfffff, digest));
        break;
      }
      case 6: {
        // signTo: eight in flight, answered through the sink, and one the module fails.
        const batch = await Promise.all(Array.from({ length: 8 }, () => signTo(p11, session, C.CKM_ECDSA, privateKey, digest)));
        for (const s of batch) check(message, s);
        await expectFailure(() => signTo(p11, session, C.CKM_ECDSA, 0xfffff, digest));
        expectFailure(() => p11.signTo(session, C.CKM_ECDSA, privateKey, digest, -1));
        // signToBatch: eight in one call, and a batch refused for a bad field (nothing submitted).
        for (const s of await signToBatch(p11, session, C.CKM_ECDSA, privateKey, Array(8).fill(digest))) check(message, s);
        expectFailure(() => p11.signToBatch(2, new Float64Array([session, C.CKM_ECDSA, privateKey, 0, 0, 32, -1, 0, 0, 0, 0, 0]), digest));
        break;
      }
    }
  }
  p11.C_CloseSession(session);
  const { threadsRetired } = binding.engineInfo();
  const { drained } = p11.close();
  console.log(JSON.stringify({ signed, invalid, drained, threadsRetired }));
  if (invalid !== 0 || !drained) process.exitCode = 1;
})().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
