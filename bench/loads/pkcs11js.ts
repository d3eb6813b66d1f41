/**
 * The baseline binding, pkcs11js, through its promise API: one session per client, C_SignInit
 * synchronously on the JS thread (its only form), then C_SignAsync, which runs on libuv's thread
 * pool. The worker process sets UV_THREADPOOL_SIZE to our engine's thread count so neither
 * binding gets more threads than the other. Its callback form (C_Sign with a callback) is no
 * faster: 27.0–27.9k ECDSA signatures a second at 64 in flight, against 27.0–27.8k through the
 * promise API (alternating runs on this 2-core machine).
 */
import * as pkcs11js from 'pkcs11js';

import { MECHANISMS, signInput } from '../mechanisms';
import type { RunSpec } from '../types';
import type { Client } from './drive';
import type { NodeLoad } from './node-load';

const loaded = new Map<string, pkcs11js.PKCS11>();

function load(path: string): pkcs11js.PKCS11 {
  let p = loaded.get(path);
  if (!p) {
    p = new pkcs11js.PKCS11();
    p.load(path);
    // The same initialisation as ours and raw C: the module may use OS locking.
    p.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    loaded.set(path, p);
  }
  return p;
}

function findSlot(p: pkcs11js.PKCS11, label: string): Buffer {
  const matches = p.C_GetSlotList(true).filter((slot) => p.C_GetTokenInfo(slot).label.trim() === label);
  if (matches.length !== 1) throw new Error(`${matches.length} tokens labelled '${label}' (need exactly one)`);
  return matches[0];
}

export const pkcs11jsLoad: NodeLoad = {
  async prepare(spec: RunSpec) {
    const p = load(spec.target.modulePath);
    const slot = findSlot(p, spec.target.token);
    const sessions: Buffer[] = [];
    for (let i = 0; i < spec.concurrency; i++) sessions.push(p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION));
    try {
      p.C_Login(sessions[0], pkcs11js.CKU_USER, spec.target.pin);
    } catch (error) {
      if (!String((error as Error).message).includes('CKR_USER_ALREADY_LOGGED_IN')) throw error;
    }
    p.C_FindObjectsInit(sessions[0], [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_LABEL, value: spec.keyLabel },
    ]);
    const found = p.C_FindObjects(sessions[0], 2);
    p.C_FindObjectsFinal(sessions[0]);
    if (found.length !== 1) throw new Error(`${found.length} private keys labelled '${spec.keyLabel}' (need exactly one)`);
    const key = found[0];

    const m = MECHANISMS[spec.mechanism];
    const mechanism: pkcs11js.Mechanism = m.pss
      ? { mechanism: m.ckm, parameter: { type: pkcs11js.CK_PARAMS_RSA_PSS, ...m.pss } as pkcs11js.RsaPSS }
      : { mechanism: m.ckm };
    const data = signInput(spec.mechanism);
    // 1024 bytes holds any signature we measure (RSA-8192 included), like the other loads' buffer.
    // A fresh output buffer per call: the result is a slice of it, which the caller keeps.
    const sign = async (session: Buffer): Promise<Buffer> => {
      p.C_SignInit(session, mechanism, key);
      return p.C_SignAsync(session, data, Buffer.allocUnsafe(1024));
    };
    return {
      clients: sessions.map((session): Client => () => sign(session)),
      async close() {
        for (const session of sessions) p.C_CloseSession(session);
      },
    };
  },
};
