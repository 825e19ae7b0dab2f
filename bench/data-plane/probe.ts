/** Readiness of a bench hop: a GET through it, with the Host header the load generator will send, answers 200. */
import { request } from 'node:http';
import { pollUntil } from '../../src/cli/up/http-probe.js';
import type { Child } from './children.js';

function status(port: number, host: string): Promise<true | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host }, timeout: 1000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? true : `HTTP ${res.statusCode}`));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 1000 ms')));
    req.on('error', (e) => resolve(e.message));
    req.end();
  });
}

/** The status of one request through a hop (0 when it fails). */
export function statusOf(port: number, host: string, method: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', method, headers: { host }, timeout: 2000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Waits until GET http://127.0.0.1:port/ (Host: host) answers 200; fails naming `child` and what it saw. */
export async function answers200(port: number, host: string, child: Child, ms: number): Promise<void> {
  const r = await pollUntil(async () => (child.exit ? true : status(port, host)), { timeoutMs: ms, intervalMs: 50 });
  if (child.exit) throw new Error(`${child.name} exited before 127.0.0.1:${port} answered:\n${child.tail()}`);
  if (!r.ok) throw new Error(`${child.name}: GET http://127.0.0.1:${port}/ (Host: ${host}) did not answer 200 within ${ms} ms (last: ${r.last}):\n${child.tail()}`);
}
