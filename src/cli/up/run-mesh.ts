/**
 * Starts a planned mesh and supervises it: the control plane (until
 * /ready), the gateway proxies, then every instance's sidecar (until
 * /ready) followed by its app (until its health path answers). Everything
 * runs under one Supervisor, which restarts what exits and stops it all in
 * order: each instance's sidecar (it leaves rotation, waits for the control
 * plane's `drained`, drains and exits) and then its app, the instances and
 * the gateways in parallel; the control plane last.
 *
 * A crashed app is started again only once its sidecar's health check has
 * taken the instance out of rotation (bounded by `restartGateMs`); it comes
 * back into rotation when the sidecar sees the new app healthy.
 */
import { setMaxListeners } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fetchEndpoints, steadilySettled } from './control-plane-admin.js';
import { httpOk, pollUntil, tcpOpen, type WaitResult } from './http-probe.js';
import { mintJoinTokens } from '../join-tokens.js';
import { loadMesh } from '../mesh-input.js';
import { controlPlaneArgs, gatewayArgs, sidecarArgs } from './launch.js';
import { tailLines } from './log-files.js';
import type { ProcessEvent, RestartPolicy, StopResult } from './managed-process.js';
import { appEnv, meshProcessEnv, type InstancePlan, type MeshPlan } from './plan.js';
import { groupMembers, pidAlive, procStat } from './process-group.js';
import type { Progress } from './progress.js';
import { logFile, logNames, readMeshState, removeMeshState, writeMeshState, writePointer, type MeshState } from './state.js';
import { Supervisor } from './supervisor.js';

export type Tier = 'app' | 'proxy' | 'control-plane';

export interface RunOptions {
  readonly configDir: string;
  readonly stateDir: string;
  /** The argv that runs `trellis` (`[node, dist/src/cli/main.js]`); control-plane and proxy are its subcommands. */
  readonly trellis: readonly string[];
  /** The argv that runs `trellis` for the proxies (with the node flags of proxy-process.ts); `trellis` when absent. */
  readonly proxyTrellis?: readonly string[];
  /** The environment the children start from. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Time for the whole start-up. */
  readonly startupTimeoutMs: number;
  /** How long a process may take to exit after SIGTERM before SIGKILL. */
  readonly stopGraceMs: number;
  readonly restart?: RestartPolicy;
  readonly progress: Progress;
  /** Lines about the running mesh after start-up (exits, restarts). */
  readonly log: (line: string) => void;
  /** Aborting stops the start-up (Ctrl-C while starting). */
  readonly signal?: AbortSignal;
  /** How long a crashed app waits, before it is started again, for the control plane to show it out of rotation; 5 s. */
  readonly restartGateMs?: number;
}

/** What a sidecar may take on SIGTERM beyond the stop bound: waiting for `drained` (the proxy's --leave-timeout, 7 s). */
export const SIDECAR_LEAVE_MS = 7_000;

/** Start-up failed (a process never became ready) or was aborted; everything started has been stopped. */
export class StartupError extends Error {
  constructor(message: string, readonly aborted: boolean) {
    super(message);
  }
}

export class RunningMesh {
  readonly plan: MeshPlan;
  readonly #o: RunOptions;
  readonly #sup: Supervisor<Tier>;
  readonly #pids = new Map<string, number>();
  #status: MeshState['status'] = 'starting';
  #startedAt = new Date().toISOString();
  #started = false;
  /** The join token of each proxy, minted once the control plane runs. */
  #tokens = new Map<string, string>();
  #writeTimer: NodeJS.Timeout | undefined;
  #stopping: Promise<StopResult[]> | undefined;
  #removed = false;
  /** Aborted by the caller's signal, or when one start-up wait fails (so the others stop waiting). */
  readonly #ac = new AbortController();

  private constructor(plan: MeshPlan, o: RunOptions) {
    this.plan = plan;
    this.#o = o;
    setMaxListeners(0, this.#ac.signal); // one waiter per instance, all at once
    o.signal?.addEventListener('abort', () => this.#ac.abort(), { once: true });
    this.#sup = new Supervisor<Tier>({ stopOrder: [['proxy', 'app'], 'control-plane'], ...(o.restart ? { restart: o.restart } : {}), onEvent: (e) => this.#onEvent(e) });
  }

  /** Starts everything and resolves once it is all ready; on failure stops what it started and throws StartupError. */
  static async start(plan: MeshPlan, o: RunOptions): Promise<RunningMesh> {
    const m = new RunningMesh(plan, o);
    await m.#start();
    return m;
  }

  get supervisor(): Supervisor<Tier> {
    return this.#sup;
  }

  /** The content of mesh.json now. */
  state(): MeshState {
    const p = this.plan;
    return {
      pid: process.pid,
      startedAt: this.#startedAt,
      status: this.#status,
      configDir: this.#o.configDir,
      stateDir: this.#o.stateDir,
      controlPlane: { grpc: p.controlPlane.grpcPort, admin: p.controlPlane.adminPort, ...this.#pid(logNames.controlPlane, 'pid') },
      ingress: p.gateways.map((g) => ({
        gateway: g.instance, workload: g.workload, namespace: g.namespace, gateways: g.gateways,
        ports: Object.fromEntries(Object.entries(g.listen).map(([k, v]) => [k, v])),
        adminPort: g.adminPort, ...this.#pid(logNames.ingress(g.instance), 'pid'),
      })),
      instances: p.instances.map((i) => ({
        instance: i.instance, service: i.service, workload: i.workload, namespace: i.namespace, version: i.version,
        region: i.region, zone: i.zone, appPort: i.appPort, inboundPort: i.inboundPort, outboundPort: i.outboundPort, adminPort: i.adminPort,
        ...(i.upstreams.length ? { upstreams: Object.fromEntries(i.upstreams.map((u) => [`${u.host}:${u.port}`, u.localPort])) } : {}),
        pids: { ...this.#pid(logNames.proxy(i.instance), 'proxy'), ...this.#pid(logNames.app(i.instance), 'app') },
      })),
    };
  }

  /** Stops everything (apps, proxies, control plane) and removes mesh.json and the pointer. Idempotent. */
  stop(): Promise<StopResult[]> {
    this.#stopping ??= (async () => {
      this.#status = 'stopping';
      this.#writeState();
      const results = await this.#sup.stopAll(this.#o.stopGraceMs, { proxy: this.#o.stopGraceMs + SIDECAR_LEAVE_MS });
      if (this.#writeTimer) clearTimeout(this.#writeTimer);
      this.#removed = true;
      removeMeshState(this.#o.stateDir, this.#o.env);
      return results;
    })();
    return this.#stopping;
  }

  /** SIGKILL to every process group now (when `trellis up` itself dies). */
  killNow(): void {
    this.#sup.killAllSync();
  }

  #pid<K extends string>(name: string, key: K): { [k in K]?: number } {
    const pid = this.#pids.get(name);
    return (pid === undefined ? {} : { [key]: pid }) as { [k in K]?: number };
  }

  async #start(): Promise<void> {
    const o = this.#o;
    const previous = readMeshState(o.stateDir);
    if (previous && previous.pid !== process.pid && pidAlive(previous.pid)) {
      throw new StartupError(`a mesh is already running from ${o.stateDir} (trellis up, pid ${previous.pid}); stop it, or give this one another --state-dir`, false);
    }
    if (previous && !pidAlive(previous.pid)) {
      const left = leftoverGroups(previous);
      if (left.length) o.progress.note(`warning: the trellis up of ${previous.startedAt} (pid ${previous.pid}) did not stop cleanly; process groups it started still run: ${left.join(', ')} (stop them with kill -TERM -<pgid>)`);
    }
    mkdirSync(join(o.stateDir, 'logs'), { recursive: true });
    this.#writeState();
    writePointer(o.stateDir, o.env);
    this.#started = true;
    const deadline = Date.now() + o.startupTimeoutMs;
    const left = () => Math.max(0, deadline - Date.now());
    try {
      const p = this.plan;
      await this.#startAndWait('control plane', logNames.controlPlane, 'control-plane', [...o.trellis, ...controlPlaneArgs(p, o.configDir, o.stateDir)],
        () => httpOk(`http://127.0.0.1:${p.controlPlane.adminPort}/ready`, { timeoutMs: left(), ...this.#abort() }), `admin :${p.controlPlane.adminPort}`);
      // One-time join tokens, minted into the control plane's state dir; each proxy gets its own in its environment (not its argv, which other users can read).
      this.#tokens = new Map(mintJoinTokens(o.stateDir, loadMesh([o.configDir]).registry, [...p.gateways.map((g) => g.instance), ...p.instances.map((i) => i.instance)]).map((m) => [m.instance, m.token]));
      await Promise.all(p.gateways.map((g) => this.#startAndWait(`ingress ${g.instance}`, logNames.ingress(g.instance), 'proxy', [...(o.proxyTrellis ?? o.trellis), ...gatewayArgs(p, g, o.stateDir)],
        () => httpOk(`http://127.0.0.1:${g.adminPort}/ready`, { timeoutMs: left(), ...this.#abort() }),
        Object.entries(g.listen).map(([s, l]) => `:${l} (port ${s})`).join(', '), g.instance)));
      await Promise.all(p.instances.map((i) => this.#startInstance(i, left)));
      const settle = o.progress.step('mesh in sync');
      const apps = p.instances.map((i) => i.instance);
      const proxies = [...p.gateways.map((g) => g.instance), ...apps];
      const r = await pollUntil(steadilySettled(p.controlPlane.adminPort, proxies, apps), { timeoutMs: Math.min(left(), 15_000), intervalMs: 200, ...this.#abort() });
      this.#checkAbort();
      if (r.ok) settle.done(`${proxies.length} proxies SYNCED, ${apps.length} instances in rotation (${secs(r.ms)})`);
      else settle.fail(`${r.last} after ${secs(r.ms)}; the mesh runs anyway: see \`trellis status\``);
      this.#status = 'running';
      this.#writeState();
    } catch (e) {
      this.#ac.abort();
      o.progress.close();
      await this.stop();
      if (e instanceof StartupError) throw e;
      throw new StartupError((e as Error).message, false);
    }
    o.progress.close();
  }

  async #startInstance(i: InstancePlan, left: () => number): Promise<void> {
    const o = this.#o;
    const step = o.progress.step(i.instance);
    const began = Date.now();
    step.update('starting sidecar');
    this.#sup.start({ name: logNames.proxy(i.instance), command: [...(o.proxyTrellis ?? o.trellis), ...sidecarArgs(this.plan, i, o.stateDir)], cwd: o.configDir, env: this.#proxyEnv(i.instance), logFile: logFile(o.stateDir, logNames.proxy(i.instance)) }, 'proxy', i.instance);
    const proxy = await httpOk(`http://127.0.0.1:${i.adminPort}/ready`, { timeoutMs: left(), ...this.#abort() });
    this.#failed(step, `sidecar of ${i.instance}`, logNames.proxy(i.instance), proxy);
    step.update(`sidecar ready (${secs(proxy.ms)}), starting app`);
    this.#sup.start({
      name: logNames.app(i.instance), command: i.command, cwd: o.configDir, env: appEnv(i, o.env), logFile: logFile(o.stateDir, logNames.app(i.instance)),
      beforeRestart: () => this.#outOfRotation(i),
    }, 'app', i.instance);
    const app = i.healthPath
      ? await httpOk(`http://127.0.0.1:${i.appPort}${i.healthPath}`, { timeoutMs: left(), ...this.#abort() })
      : await pollUntil(async () => (await tcpOpen(i.appPort)) || `nothing listens on 127.0.0.1:${i.appPort}`, { timeoutMs: left(), ...this.#abort() });
    this.#failed(step, `app of ${i.instance}`, logNames.app(i.instance), app);
    step.done(`${i.service}${i.version ? ` ${i.version}` : ''}  ready in ${secs(Date.now() - began)}`);
  }

  /**
   * Before a crashed app starts again: waits (bounded) until the control
   * plane has it out of rotation — its sidecar's health check failed — so
   * that the new app enters rotation only through a passing health check.
   */
  async #outOfRotation(i: InstancePlan): Promise<void> {
    const began = Date.now();
    const r = await pollUntil(async () => {
      const eps = (await fetchEndpoints(this.plan.controlPlane.adminPort)).filter((e) => e.instance === i.instance);
      return eps.every((e) => !e.healthy) ? true : 'still in rotation';
    }, { timeoutMs: this.#o.restartGateMs ?? 5000, intervalMs: 100, ...this.#abort() });
    if (this.#sup.stopping) return;
    const line = r.ok
      ? `${logNames.app(i.instance)}: out of rotation (its sidecar's health check failed) after ${secs(Date.now() - began)}; starting it again`
      : `${logNames.app(i.instance)}: still in rotation after ${secs(r.ms)} (${r.last}); starting it again anyway`;
    this.#o.log(`${new Date().toISOString().slice(11, 19)} ${line}`);
  }

  async #startAndWait(label: string, name: string, tier: Tier, command: string[], wait: () => Promise<WaitResult>, detail: string, instance?: string): Promise<void> {
    const o = this.#o;
    const step = o.progress.step(label);
    this.#sup.start({ name, command, cwd: o.configDir, env: instance ? this.#proxyEnv(instance) : meshProcessEnv(o.env), logFile: logFile(o.stateDir, name) }, tier);
    const r = await wait();
    this.#failed(step, label, name, r);
    step.done(`${detail}  ready in ${secs(r.ms)}`);
  }

  /** A proxy's environment: the mesh's, and its join token. */
  #proxyEnv(instance: string): Record<string, string | undefined> {
    const token = this.#tokens.get(instance);
    return { ...meshProcessEnv(this.#o.env), ...(token ? { TRELLIS_JOIN_TOKEN: token } : {}) };
  }

  /** Throws StartupError (with the end of the log) when a wait did not succeed. */
  #failed(step: { fail(d?: string): void }, what: string, name: string, r: WaitResult): asserts r is WaitResult & { ok: true } {
    if (r.ok) return;
    this.#checkAbort();
    const file = logFile(this.#o.stateDir, name);
    step.fail(`not ready after ${secs(r.ms)}: ${r.last}`);
    const tail = tailLines(file, 15).map((l) => `    ${l}`).join('\n');
    throw new StartupError(`${what} was not ready after ${secs(r.ms)} (last: ${r.last}). The end of ${file}:\n${tail || '    (empty)'}`, false);
  }

  #abort(): { signal: AbortSignal } {
    return { signal: this.#ac.signal };
  }

  #checkAbort(): void {
    if (this.#o.signal?.aborted) throw new StartupError('start-up interrupted', true);
  }

  #onEvent(e: ProcessEvent): void {
    if (e.type === 'spawn') {
      this.#pids.set(e.name, e.pid);
      this.#writeStateSoon();
      return;
    }
    if (this.#sup.stopping) return;
    const line =
      e.type === 'exit' ? `${e.name} exited (${e.signal ? `signal ${e.signal}` : `code ${e.code}`}) after ${secs(e.uptimeMs)}`
      : e.type === 'spawn-error' ? `${e.name} could not start: ${e.error}`
      : `${e.name}: restart #${e.restarts} in ${secs(e.delayMs)}`;
    if (e.type === 'exit') this.#pids.delete(e.name);
    if (this.#status === 'starting') this.#o.progress.note(`  ${line}`);
    else this.#o.log(`${new Date().toISOString().slice(11, 19)} ${line}`);
  }

  #writeStateSoon(): void {
    if (!this.#started || this.#writeTimer) return;
    this.#writeTimer = setTimeout(() => { this.#writeTimer = undefined; this.#writeState(); }, 50);
  }

  #writeState(): void {
    if (!this.#removed) writeMeshState(this.state());
  }
}

/** Recorded PIDs of a dead `trellis up` that still lead a process group with live members (a reused PID rarely does). */
function leftoverGroups(s: MeshState): number[] {
  const pids = [s.controlPlane.pid, ...s.ingress.map((g) => g.pid), ...s.instances.flatMap((i) => [i.pids.proxy, i.pids.app])];
  return pids.filter((p): p is number => p !== undefined && procStat(p)?.pgrp === p && groupMembers(p).length > 0);
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
