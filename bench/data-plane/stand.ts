/**
 * `node dist/bench/data-plane/stand.js [--observability O] [--security S]`:
 * the bench's mesh and nginx pair, started as `npm run bench` starts them
 * and left standing, for measurements the bench does not make (perf,
 * strace, h2load with other shapes, an allocation profile). Prints one JSON
 * line with the ports and process ids once everything answers, then waits;
 * SIGINT or SIGTERM stops every process it started.
 *
 *   upstream  nginx answering 1 KiB
 *   mesh      → client.bench's outbound listener → upstream.bench's inbound → upstream
 *   nginx     → the outbound hop → (mTLS) → the inbound hop → upstream
 *
 * Requests to the mesh need `Host: upstream:8080` (h2load: `-H ':authority:
 * upstream:8080'`). The sidecars inherit this process's environment, so
 * `NODE_OPTIONS` reaches them (sampler.ts is preloaded that way).
 * An nginx pid is its master's: the worker is its child (`pgrep -P`). With
 * tracing on (`all`, `trace`), spans go to a collector in this process
 * (`collector`: its port); with the access log on, `accessLog` is its path.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Children } from './children.js';
import { Collector } from './collector.js';
import { partsOf, startMesh, TRELLIS_MAIN, type Observability, type Security } from './mesh.js';
import { hopPki, startHop, startUpstream } from './nginx.js';

const OBSERVABILITY: readonly Observability[] = ['default', 'off', 'all', 'log', 'trace'];
const SECURITY: readonly Security[] = ['mtls', 'plaintext'];

const USAGE = `node dist/bench/data-plane/stand.js [--observability ${OBSERVABILITY.join('|')}] [--security ${SECURITY.join('|')}]

Starts the data-plane bench's upstream, mesh (two trellis sidecars) and nginx
pair, prints {"upstream": port, "mesh": port, "nginx": port, "pids": {...}} on
one line, and keeps them running until SIGINT or SIGTERM. Needs nginx.
`;

function option<T extends string>(args: string[], flag: string, allowed: readonly T[], fallback: T): T {
  const at = args.indexOf(flag);
  if (at < 0) return fallback;
  const v = args[at + 1] as T | undefined;
  if (v === undefined || !allowed.includes(v)) throw new Error(`${flag} takes one of ${allowed.join(', ')}${v === undefined ? '' : ` (not "${v}")`}`);
  args.splice(at, 2);
  return v;
}

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  if (args.includes('--help')) { process.stdout.write(USAGE); return 0; }
  let observability: Observability;
  let security: Security;
  try {
    observability = option(args, '--observability', OBSERVABILITY, 'default');
    security = option(args, '--security', SECURITY, 'mtls');
    if (args.length) throw new Error(`unknown argument "${args[0]}"`);
  } catch (e) {
    process.stderr.write(`stand: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (spawnSync('nginx', ['-v']).error) { process.stderr.write('stand: nginx is not installed. On Debian: apt-get install nginx\n'); return 2; }
  if (!existsSync(TRELLIS_MAIN)) { process.stderr.write(`stand: ${TRELLIS_MAIN} is missing: run npm run build first\n`); return 2; }
  const children = new Children();
  const dir = mkdtempSync(join(tmpdir(), 'trellis-stand-'));
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  try {
    const up = await startUpstream(children, join(dir, 'upstream'));
    // With tracing on, the sidecars export to a collector in this process (it counts spans and keeps nothing).
    const collector = partsOf(observability).trace ? new Collector() : undefined;
    const collectorPort = await collector?.start();
    const mesh = await startMesh(children, { dir: join(dir, 'mesh'), upstreamPort: up.port, observability, security, ...(collectorPort ? { collectorPort } : {}) });
    const pki = await hopPki(join(dir, 'nginx-pki'));
    const back = await startHop(children, 'nginx inbound hop', join(dir, 'nginx-inbound'), up.port, pki, 'from-caller');
    const front = await startHop(children, 'nginx outbound hop', join(dir, 'nginx-outbound'), back.port, pki, 'to-next');
    process.stdout.write(`${JSON.stringify({
      upstream: up.port, mesh: mesh.entryPort, nginx: front.port, admin: mesh.admin,
      ...(collectorPort ? { collector: collectorPort } : {}), ...(mesh.accessLog ? { accessLog: mesh.accessLog } : {}),
      pids: {
        outbound: mesh.outbound.pgid, inbound: mesh.inbound.pgid, controlPlane: mesh.controlPlane.pgid,
        nginxOutbound: front.child.pgid, nginxInbound: back.child.pgid, upstream: up.child.pgid,
      },
    })}\n`);
    await stopped;
    return 0;
  } catch (e) {
    process.stderr.write(`stand: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await children.stopAll(5000);
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main(process.argv.slice(2));
