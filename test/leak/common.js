'use strict';
/**
 * Shared by the leak loops (test/leak/*-loop.js): loads the addon the way lib/binding.ts does
 * (node-gyp-build from the package root: build/Release, or $PKCS11_NAPI_PREBUILD), and a
 * SoftHSM2 token — the one named by LEAK_TOKEN_LABEL/LEAK_USER_PIN in the SOFTHSM2_CONF
 * environment (scripts/valgrind.sh makes one), or a throw-away one made here with softhsm2-util.
 * Plain JS so valgrind runs node on it directly, without Jest or ts-jest in the picture.
 */
const { execFileSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const binding = require(path.join(ROOT, 'node_modules', 'node-gyp-build'))(ROOT);

class Pkcs11Error extends Error {}
binding.setErrorClass(Pkcs11Error);

const C = {
  CKF_RW_SESSION: 0x2,
  CKF_SERIAL_SESSION: 0x4,
  CKU_USER: 1,
  CKA_CLASS: 0x0,
  CKA_TOKEN: 0x1,
  CKA_LABEL: 0x3,
  CKA_VALUE: 0x11,
  CKA_KEY_TYPE: 0x100,
  CKA_SENSITIVE: 0x103,
  CKA_ENCRYPT: 0x104,
  CKA_DECRYPT: 0x105,
  CKA_SIGN: 0x108,
  CKA_VERIFY: 0x10a,
  CKA_VALUE_LEN: 0x161,
  CKA_EXTRACTABLE: 0x162,
  CKA_EC_PARAMS: 0x180,
  CKA_EC_POINT: 0x181,
  CKA_WRAP_TEMPLATE: 0x40000211,
  CKA_ALLOWED_MECHANISMS: 0x40000600,
  CKM_EC_KEY_PAIR_GEN: 0x1040,
  CKM_ECDSA: 0x1041,
  CKM_AES_KEY_GEN: 0x1080,
  CKM_AES_GCM: 0x1087,
  CKM_SHA256: 0x250,
};
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const SPKI_P256_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

function findSoftHsm() {
  for (const p of ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/local/lib/softhsm/libsofthsm2.so']) {
    if (fs.existsSync(p)) return p;
  }
  throw new Error('libsofthsm2.so not found (bash scripts/ensure-system-deps.sh installs it)');
}

/** The token to use: from the environment, or a fresh one removed at exit. */
function token() {
  if (process.env.LEAK_TOKEN_LABEL && process.env.SOFTHSM2_CONF) {
    return { label: process.env.LEAK_TOKEN_LABEL, userPin: process.env.LEAK_USER_PIN || 'user-pin-1234' };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pkcs11-napi-leak-'));
  fs.mkdirSync(path.join(dir, 'tokens'));
  const conf = path.join(dir, 'softhsm2.conf');
  fs.writeFileSync(conf, `directories.tokendir = ${path.join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'leak', '--so-pin', 'so-pin-1234', '--pin', 'user-pin-1234'], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    stdio: 'ignore',
  });
  process.env.SOFTHSM2_CONF = conf; // plain node: this reaches the C environment SoftHSM2 reads
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return { label: 'leak', userPin: 'user-pin-1234' };
}

/** Loaded, initialised, an R/W session logged in as the user. */
function openModule() {
  const { label, userPin } = token();
  const p11 = new binding.PKCS11();
  p11.load(process.env.LEAK_MODULE || findSoftHsm());
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
