/**
 * A real Redis for the global rate-limit tests: Debian's `redis-server` on a
 * free loopback port, without persistence, in its own process group, stopped
 * (and restartable on the same port) by the test. Where redis-server is not
 * installed the tests are skipped with a message saying how to install it —
 * except under CI (`CI` set), where that is a failure.
 */
import { execFileSync } from 'node:child_process';
import { Proc } from '../integration/processes.js';
import { freePort } from '../integration/running-mesh.js';

/** Why Redis tests cannot run here, or undefined. Throws under CI, which must never skip them. */
export function redisUnavailable(): string | undefined {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    const msg = 'redis-server is not installed: apt-get install redis-server (Debian), as .ci/run does';
    if (process.env.CI) throw new Error(`${msg}; CI never skips these tests`);
    return msg;
  }
}

export class RedisServer {
  #proc: Proc | undefined;
  private constructor(readonly port: number) {}

  static async start(): Promise<RedisServer> {
    const r = new RedisServer(await freePort());
    await r.restart();
    return r;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts the server (again) on its port; resolves once it accepts connections. */
  async restart(): Promise<void> {
    if (this.#proc && !this.#proc.exit) return;
    this.#proc = new Proc(`redis-server :${this.port}`, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { program: 'redis-server' });
    await this.#proc.line(/Ready to accept connections/, 10_000);
  }

  async stop(): Promise<void> {
    await this.#proc?.stop(2000);
  }
}
