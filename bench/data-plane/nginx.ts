/**
 * nginx from Debian in the bench, as two parts: the upstream every scenario
 * calls (a fixed 1 KiB body from `return`, so that it is never the
 * bottleneck), and the hops of the nginx scenario, configured as a fair peer
 * of a sidecar: one worker, keep-alive to the next hop (`keepalive` in the
 * upstream block, HTTP/1.1 with an empty Connection header), no access log,
 * no limit on requests per connection (Node's servers and undici's pools
 * have none either).
 *
 * Each nginx is its own master (`daemon off`, so that it stays our child and
 * leads its process group) with its config, pid file, error log and temp
 * dirs under the bench's temp dir: no system nginx service is touched.
 *
 * mTLS, as the mesh: the hop between the two nginx proxies is TLS 1.3 with
 * client certificates from a Trellis CA (the same kind of ECDSA P-256
 * workload certificates the sidecars use): `proxy_ssl_certificate` and
 * `proxy_ssl_verify` with session reuse on the outbound hop,
 * `ssl_verify_client` on the inbound one.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { allocatePorts } from '../../src/cli/up/ports.js';
import { pollUntil } from '../../src/cli/up/http-probe.js';
import type { Child, Children } from './children.js';
import { answers200 } from './probe.js';

export const BODY_BYTES = 1024;

function mainConfig(dir: string, server: string): string {
  const d = (name: string) => join(dir, name);
  // As root, the master would run its worker as "nobody", who cannot write
  // the temp dirs; run it as root then. Not as root, nginx keeps the user.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `# written by the trellis data-plane bench
${user}daemon off;
master_process on;
worker_processes 1;
pid ${d('nginx.pid')};
error_log ${d('error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/plain;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  client_body_temp_path ${d('body')};
  proxy_temp_path ${d('proxy')};
  fastcgi_temp_path ${d('fastcgi')};
  uwsgi_temp_path ${d('uwsgi')};
  scgi_temp_path ${d('scgi')};
${server}
}
`;
}

const upstreamServer = (port: number) => `  server {
    listen 127.0.0.1:${port};
    location / { return 200 '${'x'.repeat(BODY_BYTES)}'; }
  }`;

/** The certificate files of the nginx hops (PEM). */
export interface HopPki {
  readonly root: string;
  /** The outbound hop's client certificate and key. */
  readonly clientCert: string;
  readonly clientKey: string;
  /** The inbound hop's server certificate (with the DNS name nginx verifies, HOP_NAME, beside its SPIFFE ID) and key. */
  readonly serverCert: string;
  readonly serverKey: string;
}

/** The name the outbound hop checks in the inbound hop's certificate (nginx verifies DNS names, not SPIFFE IDs). */
const HOP_NAME = 'upstream.bench.svc.cluster.local';

/** A Trellis CA in `dir` and the hops' certificates from it. */
export async function hopPki(dir: string): Promise<HopPki> {
  mkdirSync(dir, { recursive: true });
  const { CertificateAuthority } = await import('../../src/ca/authority.js');
  const { newKeyAndCsr } = await import('../../src/ca/workload-key.js');
  const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: 'cluster.local' });
  const client = await newKeyAndCsr('spiffe://cluster.local/ns/bench/sa/client');
  const issued = await ca.signCsr(client.csrPem, 'spiffe://cluster.local/ns/bench/sa/client');
  const server = await ca.issueServing({ identity: 'spiffe://cluster.local/ns/bench/sa/upstream', dnsNames: [HOP_NAME] });
  const f = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text, { mode: 0o600 }); return p; };
  return {
    root: f('root.pem', ca.trustBundle().join('\n')),
    clientCert: f('client.pem', issued.chainPem), clientKey: f('client-key.pem', client.keyPem),
    serverCert: f('server.pem', server.chainPem), serverKey: f('server-key.pem', server.keyPem),
  };
}

/** A proxy hop: 127.0.0.1:port → 127.0.0.1:next, keep-alive both sides; `tls` says which side of the hop pair is mTLS. */
const hopServer = (port: number, next: number, pki: HopPki, tls: 'to-next' | 'from-caller') => `  upstream next_hop {
    server 127.0.0.1:${next};
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port}${tls === 'from-caller' ? ' ssl' : ''};
${tls === 'from-caller' ? `    ssl_protocols TLSv1.3;
    ssl_certificate ${pki.serverCert};
    ssl_certificate_key ${pki.serverKey};
    ssl_client_certificate ${pki.root};
    ssl_verify_client on;
    ssl_session_cache shared:hop:1m;
` : ''}    location / {
      proxy_pass ${tls === 'to-next' ? 'https' : 'http'}://next_hop;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
${tls === 'to-next' ? `      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_certificate ${pki.clientCert};
      proxy_ssl_certificate_key ${pki.clientKey};
      proxy_ssl_trusted_certificate ${pki.root};
      proxy_ssl_verify on;
      proxy_ssl_name ${HOP_NAME};
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
` : ''}    }
  }`;

export interface Nginx {
  readonly child: Child;
  readonly port: number;
}

async function startNginx(children: Children, name: string, dir: string, server: (port: number) => string, probe = true): Promise<Nginx> {
  mkdirSync(dir, { recursive: true });
  // A port found free may be taken again before nginx binds it; try anew then.
  for (let attempt = 1; ; attempt++) {
    const [port] = (await allocatePorts(1)) as [number];
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, mainConfig(dir, server(port)));
    const child = children.start(name, 'nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf]);
    try {
      // A hop that speaks TLS to its callers is probed through the hop in front of it.
      if (probe) await answers200(port, `127.0.0.1:${port}`, child, 5000);
      else await listening(port, child, 5000);
      return { child, port };
    } catch (e) {
      await children.stop(child);
      if (attempt >= 3 || !/Address already in use/.test(child.tail())) throw e;
    }
  }
}

/** The upstream of every scenario. */
export function startUpstream(children: Children, dir: string): Promise<Nginx> {
  return startNginx(children, 'nginx upstream', dir, upstreamServer);
}

/** One hop of the nginx scenario, forwarding to 127.0.0.1:next; mTLS between the two hops, as between two sidecars. */
export function startHop(children: Children, name: string, dir: string, next: number, pki: HopPki, tls: 'to-next' | 'from-caller'): Promise<Nginx> {
  return startNginx(children, name, dir, (port) => hopServer(port, next, pki, tls), tls !== 'from-caller');
}

/** Waits until something accepts connections on 127.0.0.1:port. */
async function listening(port: number, child: Child, ms: number): Promise<void> {
  const r = await pollUntil(() => new Promise<true | string>((resolve) => {
    if (child.exit) return resolve(true);
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', (e) => resolve(e.message));
  }), { timeoutMs: ms, intervalMs: 50 });
  if (child.exit) throw new Error(`${child.name} exited before it listened on ${port}:\n${child.tail()}`);
  if (!r.ok) throw new Error(`${child.name} did not listen on ${port} within ${ms} ms (last: ${r.last}):\n${child.tail()}`);
}
