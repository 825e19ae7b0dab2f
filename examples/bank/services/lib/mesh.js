// What every bank service shares: an HTTP server on $PORT that answers
// /healthz, labels every answer with the instance and version that served
// it, and a client that calls other services through the sidecar.
//
// Node's http client does not read HTTP_PROXY by itself, so `call()` sends
// absolute-form requests to the sidecar's outbound listener
// (TRELLIS_OUTBOUND), as a forward proxy expects:
//   GET http://accounts:8080/balance HTTP/1.1   Host: accounts:8080
import { createServer, request } from 'node:http';

const env = process.env;
/** Who this process is, as `trellis up` describes it in the environment. */
export const self = Object.freeze({
  service: env.SERVICE ?? 'service',
  instance: env.INSTANCE ?? `${env.SERVICE ?? 'service'}-0`,
  version: env.VERSION ?? '',
  namespace: env.NAMESPACE ?? '',
});

const outbound = new URL(env.TRELLIS_OUTBOUND ?? env.HTTP_PROXY ?? 'http://127.0.0.1:15001');

/** Headers a service passes on to the services it calls: tracing, and the canary opt-in. */
const PROPAGATED = ['x-request-id', 'traceparent', 'tracestate', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'b3', 'x-canary'];

/**
 * Calls another service through the sidecar: `call(req, 'POST', 'http://debit-credit:8080/debit', {account, amount})`.
 * Resolves to `{status, body}` (body parsed as JSON when it is JSON); never rejects: a failure is `{status: 0, error}`.
 */
export function call(incoming, method, url, payload) {
  const u = new URL(url);
  const headers = { host: u.host, accept: 'application/json' };
  for (const h of PROPAGATED) if (incoming?.headers[h] !== undefined) headers[h] = incoming.headers[h];
  const data = payload === undefined ? undefined : Buffer.from(JSON.stringify(payload));
  if (data) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(data.length) });
  return new Promise((resolve) => {
    const req = request({ host: outbound.hostname, port: outbound.port, method, path: u.href, headers, timeout: 5000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body = text;
        try { body = JSON.parse(text); } catch { /* not JSON: keep the text */ }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', (e) => resolve({ status: 0, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 5s`)));
    req.on('error', (e) => resolve({ status: 0, error: `${method} ${url} through ${outbound.host}: ${e.message}` }));
    req.end(data);
  });
}

/** Reads a JSON request body; `{}` when there is none or it is not JSON. */
export function readJson(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')); } catch { resolve({}); }
    });
    req.on('error', () => resolve({}));
  });
}

/**
 * Starts the service: `routes` maps `METHOD /path` to an async handler
 * `(req, url) => ({status?, body})`. Every answer is JSON that names the
 * instance and version that served it.
 */
export function serve(routes) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    const handler = routes[`${req.method} ${url.pathname}`];
    let status = 404;
    let body = { error: `no route for ${req.method} ${url.pathname}`, routes: Object.keys(routes) };
    if (handler) {
      try {
        ({ status = 200, body } = await handler(req, url));
      } catch (e) {
        status = 500;
        body = { error: e instanceof Error ? e.message : String(e) };
      }
    }
    const answer = { service: self.service, instance: self.instance, ...(self.version ? { version: self.version } : {}), ...body };
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer, null, 2) + '\n');
  });
  const port = Number(env.PORT ?? 8080);
  server.listen(port, '127.0.0.1', () => console.log(`${self.instance} (${self.service} ${self.version || 'unversioned'}) listening on 127.0.0.1:${port}`));
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return server;
}

/** A downstream answer is good when it is 2xx. */
export const ok = (r) => r.status >= 200 && r.status < 300;
