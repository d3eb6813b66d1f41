/**
 * The HTTP routes: POST /v1/certificates, GET /v1/ca, GET /healthz, GET /metrics. Every answer
 * is counted by route and status; every error becomes a JSON body with a stable code.
 */
import type { IncomingMessage, ServerResponse } from 'http';

import { parseCertificateRequest } from './certificate-request';
import type { ServiceConfig } from './config';
import { checkHealth } from './health';
import { HttpError, toHttpError } from './http-errors';
import { readBody, send, sendError, sendJson } from './http-io';
import type { Issuer } from './issuer';
import { log } from './log';
import type { Metrics } from './metrics';

export interface ServiceState {
  /** Set on SIGTERM: responses then close their connections, /healthz reports 503. */
  draining: boolean;
  /** Responses not yet finished, so draining can mark those already under way too. */
  active: Set<ServerResponse>;
}

/** Starts draining: every response not yet begun will close its connection. */
export function startDraining(state: ServiceState): void {
  state.draining = true;
  for (const res of state.active) if (!res.headersSent) res.setHeader('Connection', 'close');
}

export interface RouteContext {
  issuer: Issuer;
  metrics: Metrics;
  config: ServiceConfig;
  state: ServiceState;
}

type Handler = (ctx: RouteContext, req: IncomingMessage, res: ServerResponse) => Promise<void>;

async function issueCertificate(ctx: RouteContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = process.hrtime.bigint();
  try {
    const body = await readBody(req, ctx.config.maxBodyBytes);
    const request = parseCertificateRequest(req.headers['content-type'], body, ctx.config.defaultProfile);
    const issued = await ctx.issuer.ca.issue({ csr: request.csr, sans: request.sans, profile: request.profile, validityDays: request.validityDays });
    ctx.metrics.issuedOne(Number(process.hrtime.bigint() - started) / 1e9);
    const headers = { 'X-Certificate-Serial': issued.serial };
    if (request.json) {
      sendJson(res, 201, { serial: issued.serial, notBefore: issued.notBefore, notAfter: issued.notAfter, certificate: issued.pem, chain: issued.chainPem }, headers);
    } else {
      send(res, 201, 'application/pem-certificate-chain', issued.chainPem, headers);
    }
  } catch (error) {
    const http = toHttpError(error);
    ctx.metrics.failure(http.code);
    throw http;
  }
}

const ROUTES: Record<string, Partial<Record<string, Handler>>> = {
  '/v1/certificates': { POST: issueCertificate },
  '/v1/ca': {
    GET: async (ctx, _req, res) => send(res, 200, 'application/x-pem-file', ctx.issuer.caPem),
  },
  '/healthz': {
    GET: async (ctx, _req, res) => {
      const health = await checkHealth(ctx.issuer.pool, ctx.state.draining);
      sendJson(res, health.ok ? 200 : 503, health.body);
    },
  },
  '/metrics': {
    GET: async (ctx, _req, res) => send(res, 200, 'text/plain; version=0.0.4', ctx.metrics.render(ctx.issuer.pool.stats())),
  },
};

export function createHandler(ctx: RouteContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const route = ROUTES[path];
    const routeLabel = route ? path : 'other';
    ctx.metrics.inFlight++;
    ctx.state.active.add(res);
    res.on('close', () => {
      ctx.state.active.delete(res);
      ctx.metrics.inFlight--;
      ctx.metrics.request(routeLabel, req.method ?? '', res.statusCode);
    });
    // While draining, every answer closes its connection so shutdown is not held up by keep-alive.
    if (ctx.state.draining) res.setHeader('Connection', 'close');
    const handler = route?.[req.method ?? ''];
    const run = handler
      ? handler(ctx, req, res)
      : Promise.reject(
          route
            ? new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`, { Allow: Object.keys(route).join(', ') })
            : new HttpError(404, 'NOT_FOUND', `no route ${path}`),
        );
    run.catch((error: unknown) => {
      const http = toHttpError(error);
      if (http.status >= 500) {
        const cause = (http as { cause?: unknown }).cause ?? error;
        log('request_failed', { path, status: http.status, code: http.code, error: cause instanceof Error ? cause.message : String(cause) });
      }
      sendError(res, http);
    });
  };
}
