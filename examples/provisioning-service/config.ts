/**
 * Service configuration: environment variables (how containers are configured), with a few
 * command-line overrides. Nothing secret is read here: the PIN is named by a pin-source and
 * read when the HSM is opened.
 */
import { parseArgs } from 'node:util';

import type { ProfileName } from '../../lib/ca';
import { PROFILES } from '../../lib/ca';

export interface ServiceConfig {
  host: string;
  port: number;
  /** Provision a throw-away SoftHSM2 token, key and root CA instead of using the settings below. */
  demo: boolean;
  modulePath?: string;
  /** The CA key: a PKCS#11 URI naming the token and the private key (object= and/or id=). */
  keyUri?: string;
  /** The token, when the key URI does not name it. */
  tokenUri?: string;
  /** file:/path, a path, or env:NAME (RFC 7512 pin-source). */
  pinSource?: string;
  /** The CA certificate (PEM), optionally followed by its issuers. */
  caCertPath?: string;
  poolSize?: number;
  maxQueue: number;
  signTimeoutMs: number;
  maxBodyBytes: number;
  defaultProfile: ProfileName;
  shutdownTimeoutMs: number;
}

function integer(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}], got '${text}'`);
  return n;
}

function profile(text: string | undefined): ProfileName {
  const name = text || 'tls-server';
  if (!Object.prototype.hasOwnProperty.call(PROFILES, name)) throw new Error(`PROVISIONING_PROFILE must be one of ${Object.keys(PROFILES).join(', ')}`);
  return name as ProfileName;
}

export const USAGE = `Usage: node dist/examples/provisioning-service/server.js [--demo] [--host H] [--port N]

  --demo      provision a throw-away SoftHSM2 token, an EC P-256 CA key and a root CA
  --host H    listen address (default 127.0.0.1; PROVISIONING_HOST)
  --port N    listen port, 0 for any free one (default 8080; PROVISIONING_PORT)

Without --demo: PKCS11_MODULE, PROVISIONING_KEY_URI, PROVISIONING_PIN_SOURCE and
PROVISIONING_CA_CERT are required (PROVISIONING_TOKEN_URI when the key URI names no token).
Tuning: PROVISIONING_POOL_SIZE, PROVISIONING_MAX_QUEUE, PROVISIONING_SIGN_TIMEOUT_MS,
PROVISIONING_MAX_BODY_BYTES, PROVISIONING_PROFILE, PROVISIONING_SHUTDOWN_TIMEOUT_MS.
`;

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ServiceConfig {
  const { values } = parseArgs({
    args: argv,
    options: { demo: { type: 'boolean' }, host: { type: 'string' }, port: { type: 'string' }, help: { type: 'boolean' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const config: ServiceConfig = {
    host: values.host ?? env.PROVISIONING_HOST ?? '127.0.0.1',
    port: integer('the port', values.port ?? env.PROVISIONING_PORT, 8080, 0, 65535),
    demo: values.demo === true,
    modulePath: env.PKCS11_MODULE || undefined,
    keyUri: env.PROVISIONING_KEY_URI || undefined,
    tokenUri: env.PROVISIONING_TOKEN_URI || undefined,
    pinSource: env.PROVISIONING_PIN_SOURCE || undefined,
    caCertPath: env.PROVISIONING_CA_CERT || undefined,
    poolSize: env.PROVISIONING_POOL_SIZE ? integer('PROVISIONING_POOL_SIZE', env.PROVISIONING_POOL_SIZE, 0, 1, 1024) : undefined,
    maxQueue: integer('PROVISIONING_MAX_QUEUE', env.PROVISIONING_MAX_QUEUE, 2048, 0, 1_000_000),
    signTimeoutMs: integer('PROVISIONING_SIGN_TIMEOUT_MS', env.PROVISIONING_SIGN_TIMEOUT_MS, 10_000, 1, 600_000),
    // CSRs are a few hundred bytes to a few KiB; JSON around one stays far below this.
    maxBodyBytes: integer('PROVISIONING_MAX_BODY_BYTES', env.PROVISIONING_MAX_BODY_BYTES, 64 * 1024, 1024, 16 * 1024 * 1024),
    defaultProfile: profile(env.PROVISIONING_PROFILE),
    shutdownTimeoutMs: integer('PROVISIONING_SHUTDOWN_TIMEOUT_MS', env.PROVISIONING_SHUTDOWN_TIMEOUT_MS, 30_000, 100, 600_000),
  };
  if (!config.demo) {
    const missing = (['modulePath', 'keyUri', 'pinSource', 'caCertPath'] as const).filter((k) => config[k] === undefined);
    const names = { modulePath: 'PKCS11_MODULE', keyUri: 'PROVISIONING_KEY_URI', pinSource: 'PROVISIONING_PIN_SOURCE', caCertPath: 'PROVISIONING_CA_CERT' };
    if (missing.length > 0) throw new Error(`set ${missing.map((k) => names[k]).join(', ')} (or run with --demo)`);
  }
  return config;
}
