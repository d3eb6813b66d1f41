'use strict';
/**
 * Run by test/native/fork-scenario.js as a child process (child_process.spawn: fork + exec) of a
 * process that has the module initialised and calls running in it. Loads the binding and the
 * module afresh, signs with the token key, and prints one JSON line. Everything it needs comes
 * in FORK_CHILD (JSON); the fault shim's control/stats files come in the FAULT_SHIM_* variables.
 */
const path = require('path');

const config = JSON.parse(process.env.FORK_CHILD);
const binding = require(path.join(config.root, 'node_modules', 'node-gyp-build'))(config.root);

// The package's generated constants (compiled by `npm test` before Jest runs).
const { CKF_RW_SESSION, CKU_USER, CKA_CLASS, CKA_LABEL, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKM_ECDSA } = require(path.join(config.root, 'dist', 'lib', 'generated', 'constants.js'));

function main() {
  const m = new binding.PKCS11();
  m.load(config.module);
  m.C_Initialize();
  const slot = m.C_GetSlotList(true).find((id) => m.C_GetTokenInfo(id).label.trim() === config.tokenLabel);
  if (slot === undefined) throw new Error(`token ${config.tokenLabel} not found`);
  const session = m.C_OpenSession(slot, CKF_RW_SESSION);
  try {
    m.C_Login(session, CKU_USER, config.userPin);
  } catch (error) {
    if (error.name !== 'CKR_USER_ALREADY_LOGGED_IN') throw error;
  }
  const find = (objectClass) =>
    m.findObjectsSync(session, [
      { type: CKA_CLASS, value: objectClass },
      { type: CKA_LABEL, value: config.keyLabel },
    ]);
  const [privateKey] = find(CKO_PRIVATE_KEY);
  const [publicKey] = find(CKO_PUBLIC_KEY);
  const data = Buffer.alloc(32, 7);
  const signature = m.signSync(session, CKM_ECDSA, privateKey, data);
  const verified = m.verifySync(session, CKM_ECDSA, publicKey, data, signature);
  m.C_CloseSession(session);
  m.close();
  return { pid: process.pid, verified, signatureLength: signature.length };
}

try {
  process.stdout.write(JSON.stringify({ ok: true, ...main() }) + '\n');
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.stack ? error.stack : error) }) + '\n');
  process.exitCode = 1;
}
