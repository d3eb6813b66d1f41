'use strict';
/**
 * What the tests' own processes and threads share: the scripts of test/lifecycle-*.test.ts, the
 * fork scenario (test/native/fork-*.js) and the leak loops (test/leak/). The addon loaded the way
 * lib/binding.ts loads it, the package's generated constants, a logged-in session on a token found
 * by its label, and P-256 key pairs whose public half node:crypto can check.
 * Plain JS, so that those processes run it without Jest or ts-jest (valgrind runs node on it).
 * The constants come from the compiled TypeScript (dist/), which `npm test` builds first.
 */
const crypto = require('crypto');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const C = require(path.join(ROOT, 'dist', 'lib', 'generated', 'constants.js'));
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
// DER of a P-256 SubjectPublicKeyInfo up to the point (id-ecPublicKey, prime256v1, BIT STRING).
const SPKI_P256_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

class Pkcs11Error extends Error {}

let binding;
/** The addon: node-gyp-build from the package root (build/Release, or $PKCS11_NAPI_PREBUILD). */
function loadBinding() {
  if (binding === undefined) {
    binding = require(path.join(ROOT, 'node_modules', 'node-gyp-build'))(ROOT);
    binding.setErrorClass(Pkcs11Error);
  }
  return binding;
}

/** A new PKCS11 object with `modulePath` loaded and initialised, and the slot of the token `label`. */
function openToken(modulePath, label) {
  const p11 = new (loadBinding().PKCS11)();
  p11.load(modulePath);
  p11.C_Initialize();
  const slot = p11.C_GetSlotList(true).find((id) => p11.C_GetTokenInfo(id).label.trim() === label);
  if (slot === undefined) throw new Error(`no token labelled ${label}`);
  return { p11, slot };
}

/** An R/W session on `slot`, logged in as the user (already logged in through another is fine). */
function openSession(p11, slot, pin) {
  const session = p11.C_OpenSession(slot, C.CKF_RW_SESSION | C.CKF_SERIAL_SESSION);
  try {
    p11.C_Login(session, C.CKU_USER, pin);
  } catch (error) {
    if (error.name !== 'CKR_USER_ALREADY_LOGGED_IN') throw error;
  }
  return session;
}

/** A P-256 key pair for CKM_ECDSA: session objects unless `token`, labelled when `label` is given. */
function ecKeyPair(p11, session, { token = false, label } = {}) {
  const named = label === undefined ? [] : [{ type: C.CKA_LABEL, value: label }];
  return p11.C_GenerateKeyPair(
    session,
    C.CKM_EC_KEY_PAIR_GEN,
    [{ type: C.CKA_TOKEN, value: token }, { type: C.CKA_EC_PARAMS, value: P256 }, { type: C.CKA_VERIFY, value: true }, ...named],
    [{ type: C.CKA_TOKEN, value: token }, { type: C.CKA_SIGN, value: true }, ...named],
  );
}

/** The public key object `handle` (P-256) as a node:crypto KeyObject. */
function ecPublicKey(p11, session, handle) {
  const [point] = p11.C_GetAttributeValue(session, handle, [C.CKA_EC_POINT]);
  // CKA_EC_POINT is a DER OCTET STRING (04 41) around the uncompressed point.
  const spki = Buffer.concat([SPKI_P256_PREFIX, point.value.subarray(2)]);
  return crypto.createPublicKey({ key: spki, format: 'der', type: 'spki' });
}

/** The objects of class `objectClass` labelled `label`. */
function findByLabel(p11, session, objectClass, label) {
  return p11.findObjectsSync(session, [
    { type: C.CKA_CLASS, value: objectClass },
    { type: C.CKA_LABEL, value: label },
  ]);
}

/**
 * The records of one onBatch(slab, count) call of the binding's completion sink (setSignSink),
 * as [ticket, signature] pairs, each signature copied out of the slab (the next batch rewrites it).
 */
function sinkRecords(slab, count) {
  const words = new Uint32Array(slab);
  const records = [];
  for (let i = 0, at = 0; i < count; i++) {
    const length = words[at / 4 + 1];
    records.push([words[at / 4], Buffer.from(new Uint8Array(slab, at + 8, length))]);
    at += 8 + ((length + 3) & ~3);
  }
  return records;
}

module.exports = { ROOT, C, P256, Pkcs11Error, loadBinding, openToken, openSession, ecKeyPair, ecPublicKey, findByLabel, sinkRecords };
