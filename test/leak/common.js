'use strict';
/**
 * Shared by the leak loops (test/leak/*-loop.js): loads the addon the way lib/binding.ts does
 * (node-gyp-build from the package root: build/Release, or $PKCS11_NAPI_PREBUILD), and a
 * SoftHSM2 token — the one named by LEAK_TOKEN_LABEL/LEAK_USER_PIN in the SOFTHSM2_CONF
 * environment, or a throw-away one made by the package's own provisioner.
 * Plain JS so valgrind runs node on it directly, without Jest or ts-jest in the picture; the
 * constants and the provisioner come from the compiled TypeScript (dist/, `npm run build:ts`).
 */
const crypto = require('crypto');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const binding = require(path.join(ROOT, 'node_modules', 'node-gyp-build'))(ROOT);

class Pkcs11Error extends Error {}
binding.setErrorClass(Pkcs11Error);

const DIST = path.join(ROOT, 'dist', 'lib');
const C = require(path.join(DIST, 'generated', 'constants.js'));
const { findSoftHsmModule, provisionSoftHsmToken } = require(path.join(DIST, 'softhsm', 'provision.js'));
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const SPKI_P256_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/** The token to use: from the environment, or a fresh one removed at exit. */
function token() {
  if (process.env.LEAK_TOKEN_LABEL && process.env.SOFTHSM2_CONF) {
    return { label: process.env.LEAK_TOKEN_LABEL, userPin: process.env.LEAK_USER_PIN || 'user-pin-1234', modulePath: findSoftHsmModule() };
  }
  const fresh = provisionSoftHsmToken({ label: 'leak' });
  process.env.SOFTHSM2_CONF = fresh.conf; // plain node: this reaches the C environment SoftHSM2 reads
  process.on('exit', () => fresh.cleanup());
  return fresh;
}

/** Loaded, initialised, an R/W session logged in as the user. */
function openModule() {
  const { label, userPin, modulePath } = token();
  const p11 = new binding.PKCS11();
  p11.load(process.env.LEAK_MODULE || modulePath);
  p11.C_Initialize();
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label === label);
  if (slot === undefined) throw new Error(`no token labelled ${label}`);
  const session = p11.C_OpenSession(slot, C.CKF_RW_SESSION | C.CKF_SERIAL_SESSION);
  p11.C_Login(session, C.CKU_USER, userPin);
  return { p11, slot, session };
}

function ecKeyPair(p11, session, label) {
  const pair = p11.C_GenerateKeyPair(
    session,
    C.CKM_EC_KEY_PAIR_GEN,
    [{ type: C.CKA_TOKEN, value: false }, { type: C.CKA_EC_PARAMS, value: P256 }, { type: C.CKA_VERIFY, value: true }, { type: C.CKA_LABEL, value: label }],
    [{ type: C.CKA_TOKEN, value: false }, { type: C.CKA_SIGN, value: true }, { type: C.CKA_LABEL, value: label }],
  );
  const [point] = p11.C_GetAttributeValue(session, pair.publicKey, [C.CKA_EC_POINT]);
  const key = crypto.createPublicKey({ key: Buffer.concat([SPKI_P256_PREFIX, point.value.subarray(2)]), format: 'der', type: 'spki' });
  return { ...pair, key };
}

/** Runs `fn`, which must throw a TypeError or a Pkcs11Error (the error paths allocate too). */
function expectFailure(fn) {
  try {
    const result = fn();
    if (result && typeof result.then === 'function') return result.then(() => { throw new Error('expected a rejection'); }, check);
  } catch (error) {
    return check(error);
  }
  throw new Error('expected a failure');
  function check(error) {
    if (!(error instanceof TypeError) && !(error instanceof Pkcs11Error)) throw error;
    return error;
  }
}

module.exports = { binding, C, Pkcs11Error, openModule, ecKeyPair, expectFailure };
