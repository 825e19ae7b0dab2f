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
 * mTLS hook: once the mesh has mTLS, the hop between the two nginx proxies
 * gets the same certificates (`proxy_ssl_certificate` on the outbound hop,
 * `ssl_verify_client` on the inbound one); `hopServer` is where it goes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allocatePorts } from '../../src/cli/up/ports.js';
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

/** A proxy hop: 127.0.0.1:port → 127.0.0.1:next, keep-alive both sides. */
const hopServer = (port: number, next: number) => `  upstream next_hop {
    server 127.0.0.1:${next};
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://next_hop;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`;

export interface Nginx {
  readonly child: Child;
  readonly port: number;
}

async function startNginx(children: Children, name: string, dir: string, server: (port: number) => string): Promise<Nginx> {
  mkdirSync(dir, { recursive: true });
  // A port found free may be taken again before nginx binds it; try anew then.
  for (let attempt = 1; ; attempt++) {
    const [port] = (await allocatePorts(1)) as [number];
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, mainConfig(dir, server(port)));
    const child = children.start(name, 'nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf]);
    try {
      await answers200(port, `127.0.0.1:${port}`, child, 5000);
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

/** One hop of the nginx scenario, forwarding to 127.0.0.1:next. */
export function startHop(children: Children, name: string, dir: string, next: number): Promise<Nginx> {
  return startNginx(children, name, dir, (port) => hopServer(port, next));
}
