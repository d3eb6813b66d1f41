'use strict';
/**
 * Shared by the leak loops (test/leak/*-loop.js): the addon, constants and key helpers of
 * test/support/child-kit.js, and a SoftHSM2 token — the one named by LEAK_TOKEN_LABEL/
 * LEAK_USER_PIN in the SOFTHSM2_CONF environment, or a throw-away one made by the package's own
 * provisioner. Plain JS so valgrind runs node on it directly, without Jest or ts-jest.
 */
const path = require('path');

const kit = require('../support/child-kit');

const { C, Pkcs11Error } = kit;
const { findSoftHsmModule, provisionSoftHsmToken } = require(path.join(kit.ROOT, 'dist', 'lib', 'softhsm', 'provision.js'));

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
function openModule(options = {}) {
  const { label, userPin, modulePath } = token();
  // Before the first call that starts the engine (opening a session does).
  if (options.threadIdleMs !== undefined) kit.loadBinding().setThreadIdleTimeout(options.threadIdleMs);
  const { p11, slot } = kit.openToken(process.env.LEAK_MODULE || modulePath, label);
  return { p11, slot, session: kit.openSession(p11, slot, userPin), binding: kit.loadBinding() };
}

/** A labelled P-256 session key pair, with its public half as a node:crypto key. */
function ecKeyPair(p11, session, label) {
  const pair = kit.ecKeyPair(p11, session, { label });
  return { ...pair, key: kit.ecPublicKey(p11, session, pair.publicKey) };
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

module.exports = { C, Pkcs11Error, openModule, ecKeyPair, expectFailure, sinkRecords: kit.sinkRecords };
