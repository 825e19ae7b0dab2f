/**
 * Several "hosts" on one machine for tests: each host is a network namespace
 * (`trellis-t<pid>-<n>`) with its own address, and a switch namespace
 * (`trellis-t<pid>-sw`) holds a bridge that joins them through one veth pair
 * per host (../shared/TESTING.md, "Several hosts on one machine"). The veths
 * are made inside the switch namespace, so the machine's own network is never
 * touched; no namespace gets a default route, so traffic goes only between
 * the test hosts (and to loopback inside each one).
 *
 * Processes run inside a host with `ip netns exec <ns> node …`, each in its
 * own process group. `close()` stops them and deletes every namespace. If the
 * test process dies without closing (a crash, SIGKILL, a runner's timeout), a
 * small reaper process, told each namespace and process group as they are
 * made, sees its stdin close and removes them: only what this test made.
 *
 * Needs root and iproute2's `ip`: `netnsUnavailable()` says why not, for the
 * test's skip message.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { ROOT } from './mesh.js';
import { Proc } from '../integration/processes.js';

/** Why network-namespace hosts cannot be made here (not root, no `ip`); undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return `network-namespace hosts need root (uid ${process.getuid?.() ?? '?'} here): run as root, as CI does`;
  const ip = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (ip.error || ip.status !== 0) return `network-namespace hosts need iproute2's "ip" command (${ip.error?.message ?? `ip -V exited ${ip.status}`}): apt-get install iproute2`;
  return undefined;
}

function ip(...args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`ip ${args.join(' ')} failed: ${err || (e as Error).message}`, { cause: e });
  }
}

/** A process inside a test host: `ip netns exec <ns> <command>`, which execs the command (the PID is the command's), in its own process group. */
export class HostProc extends Proc {
  constructor(name: string, netns: string, command: readonly string[], opts: { env?: NodeJS.ProcessEnv; stdin?: boolean } = {}) {
    super(name, ['netns', 'exec', netns, ...command], { ...opts, program: 'ip' });
  }
}

/** A request the in-host client makes: HTTP (with a keep-alive agent), or raw bytes on a TCP connection. */
export type ClientRequest =
  | { kind: 'http'; host: string; port: number; path: string; method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number }
  | { kind: 'raw'; host: string; port: number; data: string; timeoutMs?: number };

/** What it got: status 0 and `error` on a transport error; for raw, the bytes received and whether the peer closed. */
export interface ClientAnswer {
  status?: number;
  headers?: Record<string, string | string[]>;
  body?: string;
  error?: string;
  received?: string;
  closed?: boolean;
}

/** The client's program: one JSON request a line on stdin, one JSON answer a line on stdout. */
const CLIENT_JS = String.raw`
const http = require('node:http'), net = require('node:net');
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
const say = (id, r) => process.stdout.write(JSON.stringify({ id, ...r }) + '\n');
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const q = JSON.parse(line);
  let done = false;
  const once = (r) => { if (!done) { done = true; say(q.id, r); } };
  if (q.kind === 'http') {
    const req = http.request({ host: q.host, port: q.port, path: q.path, method: q.method || 'GET', headers: q.headers || {}, agent, timeout: q.timeoutMs || 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => once({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', (e) => once({ status: 0, error: String(e) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => once({ status: 0, error: String(e) }));
    req.end(q.body);
  } else {
    const s = net.connect({ host: q.host, port: q.port });
    let got = '';
    s.setEncoding('latin1');
    s.on('connect', () => s.write(q.data, 'latin1'));
    s.on('data', (c) => (got += c));
    s.on('error', (e) => once({ received: got, closed: true, error: String(e) }));
    s.on('close', () => once({ received: got, closed: true }));
    s.setTimeout(q.timeoutMs || 5000, () => { once({ received: got, closed: false }); s.destroy(); });
  }
});
console.log('client ready');
`;

/** A long-lived client process inside a host: the test's hands on that host (an app calling its sidecar, curl on an admin port). */
export class HostClient {
  readonly #proc: HostProc;
  readonly #waiting = new Map<number, (a: ClientAnswer) => void>();
  #next = 0;
  #buffered = '';

  constructor(readonly host: TestHost) {
    this.#proc = host.node(`client@${host.label}`, ['-e', CLIENT_JS], { stdin: true });
    this.#proc.child.stdout!.on('data', (b: Buffer) => {
      this.#buffered += b.toString();
      for (let nl = this.#buffered.indexOf('\n'); nl >= 0; nl = this.#buffered.indexOf('\n')) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        const { id, ...answer } = JSON.parse(line) as ClientAnswer & { id: number };
        this.#waiting.get(id)?.(answer);
        this.#waiting.delete(id);
      }
    });
    void this.#proc.exited.then(() => {
      for (const resolve of this.#waiting.values()) resolve({ status: 0, error: `the client on host ${host.label} exited:\n${this.#proc.tail()}` });
      this.#waiting.clear();
    });
  }

  /** Sends one request from inside the host. */
  send(q: ClientRequest): Promise<ClientAnswer> {
    if (this.#proc.exit) return Promise.resolve({ status: 0, error: `the client on host ${this.host.label} exited:\n${this.#proc.tail()}` });
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#proc.child.stdin!.write(`${JSON.stringify({ id, ...q })}\n`);
    });
  }

  /** GET (or `method`) `http://<addr><path>`; `addr` is `host:port`. */
  http(addr: string, path: string, o: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<ClientAnswer> {
    const i = addr.lastIndexOf(':');
    return this.send({ kind: 'http', host: addr.slice(0, i), port: Number(addr.slice(i + 1)), path, ...o });
  }

  /** A JSON document from `http://<addr><path>` (throws with what came back otherwise). */
  async json<T>(addr: string, path: string): Promise<T> {
    const r = await this.http(addr, path);
    if (r.status !== 200) throw new Error(`GET http://${addr}${path} from host ${this.host.label}: ${r.status} ${r.error ?? r.body}`);
    return JSON.parse(r.body!) as T;
  }

  /** Raw bytes to `addr`; what came back until the peer closed (or `timeoutMs`). */
  raw(addr: string, data: string, timeoutMs = 5000): Promise<ClientAnswer> {
    const i = addr.lastIndexOf(':');
    return this.send({ kind: 'raw', host: addr.slice(0, i), port: Number(addr.slice(i + 1)), data, timeoutMs });
  }
}

/**
 * The reaper's program: lines `pg <pgid>`, `gone <pgid>` (it exited) and `ns <name>` on stdin; when
 * stdin closes (the test process is gone without `close()`, which kills the
 * reaper first) it kills those process groups and deletes those namespaces.
 */
const REAPER_JS = String.raw`
const { spawnSync } = require('node:child_process');
const groups = new Set(), namespaces = [];
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (b) => {
  buf += b;
  for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
    const [k, v] = buf.slice(0, i).split(' ');
    buf = buf.slice(i + 1);
    if (k === 'pg') groups.add(Number(v));
    else if (k === 'gone') groups.delete(Number(v));
    else if (k === 'ns') namespaces.push(v);
  }
});
process.stdin.on('end', () => {
  for (const g of groups) { try { process.kill(-g, 'SIGKILL'); } catch {} }
  for (const n of namespaces.reverse()) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  process.exit(0);
});
`;

/** One test host: a network namespace with one address on the test network. */
export class TestHost {
  readonly #started: (p: HostProc) => void;
  #client: HostClient | undefined;

  constructor(readonly label: string, readonly netns: string, readonly address: string, started: (p: HostProc) => void) {
    this.#started = started;
  }

  /** `node <args>` inside this host. */
  node(name: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; stdin?: boolean } = {}): HostProc {
    const p = new HostProc(name, this.netns, [process.execPath, ...args], opts);
    this.#started(p);
    return p;
  }

  /** `trellis <args>` (the built CLI) inside this host. */
  trellis(name: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): HostProc {
    return this.node(name, [`${ROOT}/dist/src/cli/main.js`, ...args], opts);
  }

  /** `trellis <args>` inside this host, run to its end (at most `ms`). */
  async run(args: readonly string[], ms = 15_000): Promise<{ code: number | null; out: string; err: string }> {
    const p = this.trellis(`trellis ${args[0]}@${this.label}`, args);
    const t = setTimeout(() => p.signal('SIGKILL'), ms);
    const exit = await p.exited;
    clearTimeout(t);
    return { code: exit.code, out: p.out, err: p.err };
  }

  /** The long-lived client inside this host (started on first use). */
  get client(): HostClient {
    return (this.#client ??= new HostClient(this));
  }
}

export interface TestHostsOptions {
  /** The first three octets of the test network (a /24); host n gets `<subnet>.<n>`. Default 10.250.0. */
  readonly subnet?: string;
}

/** N hosts on one switch; `close()` in after(). */
export class TestHosts {
  readonly hosts: TestHost[] = [];
  readonly #procs: HostProc[] = [];
  readonly #namespaces: string[] = [];
  readonly #prefix = `trellis-t${process.pid}`;
  #reaper: ChildProcess | undefined;
  #closed = false;

  /** Makes `count` hosts labelled A, B, C, … at `<subnet>.1`, `.2`, …; throws (after removing what it made) if `ip` fails. */
  static create(count: number, opts: TestHostsOptions = {}): TestHosts {
    const h = new TestHosts();
    try {
      h.#build(count, opts.subnet ?? '10.250.0');
    } catch (e) {
      h.#removeNamespaces();
      h.#stopReaper();
      throw e;
    }
    return h;
  }

  #build(count: number, subnet: string): void {
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(subnet)) throw new Error(`subnet must be three octets like 10.250.0, not "${subnet}"`);
    if (!(count >= 1 && count <= 26)) throw new Error(`between 1 and 26 hosts, not ${count}`);
    this.#startReaper();
    const sw = this.#addNamespace(`${this.#prefix}-sw`);
    ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', sw, 'link', 'set', 'br0', 'up');
    for (let n = 1; n <= count; n++) {
      const ns = this.#addNamespace(`${this.#prefix}-${n}`);
      // Both ends are made in place: p<n> on the switch, eth0 in the host; nothing appears in the machine's namespace.
      ip('-n', sw, 'link', 'add', `p${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ip('-n', sw, 'link', 'set', `p${n}`, 'master', 'br0');
      ip('-n', sw, 'link', 'set', `p${n}`, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'addr', 'add', `${subnet}.${n}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      this.hosts.push(new TestHost(String.fromCharCode(64 + n), ns, `${subnet}.${n}`, (p) => {
        this.#procs.push(p);
        const pid = p.child.pid;
        if (pid === undefined) return;
        this.#tellReaper(`pg ${pid}`);
        void p.exited.then(() => this.#tellReaper(`gone ${pid}`)); // its PID may be reused: the reaper forgets it
      }));
    }
  }

  #addNamespace(name: string): string {
    // A leftover of an earlier run that had this PID: ours to remove.
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    this.#tellReaper(`ns ${name}`);
    ip('netns', 'add', name);
    this.#namespaces.push(name);
    return name;
  }

  /** Host by label (`A`, `B`, …). */
  host(label: string): TestHost {
    const h = this.hosts.find((x) => x.label === label);
    if (!h) throw new Error(`no host ${label} (there are ${this.hosts.map((x) => x.label).join(', ')})`);
    return h;
  }

  /** Takes a host's link to the switch down (a partition) or up again. */
  setLink(label: string, up: boolean): void {
    const n = this.hosts.indexOf(this.host(label)) + 1;
    ip('-n', `${this.#prefix}-sw`, 'link', 'set', `p${n}`, up ? 'up' : 'down');
  }

  /** Stops every process started in the hosts (SIGTERM, then SIGKILL), then deletes the namespaces. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#procs.map((p) => p.stop()));
    this.#removeNamespaces();
    this.#stopReaper();
  }

  #removeNamespaces(): void {
    for (const ns of this.#namespaces.splice(0).reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }

  /** The reaper: detached (a Ctrl-C to the test's process group does not reach it), not keeping this process alive. */
  #startReaper(): void {
    const r = spawn(process.execPath, ['-e', REAPER_JS], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    r.stdin!.on('error', () => {}); // it is gone: nothing left to tell it
    r.unref();
    (r.stdin as unknown as Socket).unref();
    this.#reaper = r;
  }

  /** Cleaned up already: the reaper goes without acting (a signal, so no stale PID is ever acted on). */
  #stopReaper(): void {
    this.#reaper?.kill('SIGKILL');
    this.#reaper = undefined;
  }

  #tellReaper(line: string): void {
    if (this.#reaper?.stdin?.writable) this.#reaper.stdin.write(`${line}\n`);
  }
}
