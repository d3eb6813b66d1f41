/**
 * Ours without the pool: the one-hop binding call module.native.sign(session, mechanism, key,
 * data), which runs C_SignInit + C_Sign as one job on the addon's threads. Each client owns one
 * session, so this is the binding's ceiling with no pool bookkeeping on the JS thread.
 */
import * as C from '../../lib/generated/constants';
import { Pkcs11Error } from '../../lib';
import { signInput } from '../mechanisms';
import type { Handle } from '../../lib/native/types';
import type { RunSpec } from '../types';
import type { Client } from './drive';
import type { NodeLoad } from './node-load';
import { engineState, loadModule } from './ours-module';
import { oursMechanism } from './ours-pool';

export const oursRaw: NodeLoad = {
  async prepare(spec: RunSpec) {
    const module = loadModule(spec.target.modulePath, spec.deepBind);
    const native = module.native;
    const slot = module.findSlot(spec.target.token);
    const sessions: Handle[] = [];
    for (let i = 0; i < spec.concurrency; i++) sessions.push(native.C_OpenSession(slot.id, C.CKF_SERIAL_SESSION));
    try {
      native.C_Login(sessions[0], C.CKU_USER, spec.target.pin);
    } catch (error) {
      if (!Pkcs11Error.is(error, 'CKR_USER_ALREADY_LOGGED_IN')) throw error;
    }
    const found = native.findObjectsSync(
      sessions[0],
      [
        { type: C.CKA_CLASS, value: C.CKO_PRIVATE_KEY },
        { type: C.CKA_LABEL, value: spec.keyLabel },
      ],
      2,
    );
    if (found.length !== 1) throw new Error(`${found.length} private keys labelled '${spec.keyLabel}' (need exactly one)`);
    const key = found[0];
    const data = signInput(spec.mechanism);
    const mechanism = oursMechanism(spec);
    return {
      clients: sessions.map((session): Client => () => native.sign(session, mechanism, key, data)),
      async close() {
        for (const session of sessions) native.C_CloseSession(session);
      },
      state: engineState,
    };
  },
};
