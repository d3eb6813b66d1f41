'use strict';
/**
 * Run by test/native/fork-scenario.js as a child process (child_process.spawn: fork + exec) of a
 * process that has the module initialised and calls running in it. Loads the binding and the
 * module afresh, signs with the token key, and prints one JSON line. Everything it needs comes
 * in FORK_CHILD (JSON); the fault shim's control/stats files come in the FAULT_SHIM_* variables.
 */
const path = require('path');

const config = JSON.parse(process.env.FORK_CHILD);
const kit = require(path.join(config.root, 'test', 'support', 'child-kit.js'));
const { C } = kit;

function main() {
  const { p11: m, slot } = kit.openToken(config.module, config.tokenLabel);
  const session = kit.openSession(m, slot, config.userPin);
  const [privateKey] = kit.findByLabel(m, session, C.CKO_PRIVATE_KEY, config.keyLabel);
  const [publicKey] = kit.findByLabel(m, session, C.CKO_PUBLIC_KEY, config.keyLabel);
  const data = Buffer.alloc(32, 7);
  const signature = m.signSync(session, C.CKM_ECDSA, privateKey, data);
  const verified = m.verifySync(session, C.CKM_ECDSA, publicKey, data, signature);
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
