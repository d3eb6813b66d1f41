/**
 * A certificate provisioning service on node:http: clients POST a CSR and get back a
 * certificate signed by a CA key that never leaves the HSM (a SigningPool behind a
 * CertificateAuthority).
 *
 *   node dist/examples/provisioning-service/server.js --demo            # throw-away SoftHSM2 CA
 *   curl --data-binary @req.pem http://127.0.0.1:8080/v1/certificates
 *
 * Configuration: see config.ts (environment variables, --demo, --host, --port).
 */
import { createServer } from 'http';

import { loadConfig } from './config';
import { openDemoIssuer } from './demo';
import { Issuer, openIssuer } from './issuer';
import { log } from './log';
import { Metrics } from './metrics';
import { createHandler, ServiceState } from './routes';
import { installShutdown } from './shutdown';

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2), process.env);
  let issuer: Issuer;
  let caCertPath = config.caCertPath;
  if (config.demo) {
    const demo = await openDemoIssuer(config);
    issuer = demo.issuer;
    caCertPath = demo.caCertPath;
  } else {
    issuer = await openIssuer(config);
  }

  const state: ServiceState = { draining: false, active: new Set() };
  const server = createServer(createHandler({ issuer, metrics: new Metrics(), config, state }));
  // Bounds on slow clients: headers within 10 s, a whole request within 30 s.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  installShutdown(server, state, () => issuer.close(), config.shutdownTimeoutMs);

  server.on('error', (error) => {
    log('server_error', { error: error.message });
    issuer.close().finally(() => process.exit(1));
  });
  server.listen(config.port, config.host, () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    log('listening', {
      url: `http://${host}:${port}`,
      demo: config.demo,
      ca: issuer.ca.subject,
      caCertificate: caCertPath,
      poolSessions: issuer.pool.size,
    });
  });
}

main().catch((error: unknown) => {
  log('startup_failed', { error: error instanceof Error ? error.message : String(error) });
  process.exitCode = 1;
});
