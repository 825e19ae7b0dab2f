/**
 * Free loopback ports for the processes `trellis up` starts. All sockets are
 * held open until every port is read, so one call never hands out the same
 * port twice; they are closed before the children bind them. Another program
 * could take a port in that gap: the child then fails to listen and the
 * supervisor restarts it, so the race shows up as a failed start, never as
 * two processes sharing a port.
 */
import { createServer, type Server } from 'node:net';

/** Binds `count` sockets to `host`:0, reads their ports, closes them. */
export async function allocatePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen({ host, port: 0, exclusive: true }, () => resolve());
      });
      const addr = s.address();
      if (addr === null || typeof addr === 'string') throw new Error(`could not read the port bound on ${host}`);
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}

/** Hands out pre-allocated ports one by one; throws when it runs out (a planning bug). */
export class PortPool {
  readonly #ports: number[];
  constructor(ports: readonly number[]) {
    this.#ports = [...ports];
  }
  next(): number {
    const p = this.#ports.shift();
    if (p === undefined) throw new Error('port pool exhausted: the plan asked for more ports than were allocated');
    return p;
  }
  get remaining(): number {
    return this.#ports.length;
  }
}
