/**
 * The Redis of `mesh-ratelimit-global`: Debian's `redis-server`, started by
 * the bench on a free loopback port without persistence (`--save ''
 * --appendonly no`), in its own process group like every other child, and
 * stopped with them. Its CPU is measured beside the sidecars'.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import type { Child, Children } from './children.js';

/** What to install when redis-server is missing. */
export const REDIS_INSTALL = 'apt-get install redis-server';

export interface Redis {
  readonly child: Child;
  /** `127.0.0.1:<port>` */
  readonly address: string;
}

/** redis-server's version line, or undefined when it is not installed. */
export function redisVersion(): string | undefined {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return r.error ? undefined : r.stdout.trim().split('\n')[0];
}

/** A port nothing listens on now (the kernel's choice, released at once). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export async function startRedis(children: Children): Promise<Redis> {
  const port = await freePort();
  const child = children.start('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await child.line(/Ready to accept connections/, 10_000);
  return { child, address: `127.0.0.1:${port}` };
}
