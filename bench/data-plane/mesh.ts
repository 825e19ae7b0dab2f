/**
 * The mesh scenario's processes, as a user runs them (docs/running-mesh.md):
 * `trellis control-plane` on a config dir holding one App manifest, and two
 * `trellis proxy` sidecars — `client.bench`, whose outbound listener the load
 * generator calls like an app would (routing by Host `upstream:8080`), and
 * `upstream.bench`, whose inbound listener forwards to the nginx upstream.
 * No health checks (a proxy without one registers healthy), so that the
 * sidecars do nothing but carry the load.
 *
 * What the sidecars observe (`MeshOptions.observability`), for the cost of
 * observability in `mesh-bare` and `mesh-observed`:
 * - `default` (the `mesh` scenario): what a user gets without configuring
 *   anything: Istio's service metrics on, no access log, no tracing;
 * - `off`: as little as can be turned off: `TRELLIS_METRICS=off` (no service
 *   metrics), so with no access log and no tracing the sidecars publish no
 *   request records at all; the proxy-level counters remain;
 * - `all`: service metrics, a JSON access log (MeshConfig `accessLogFile`, one
 *   file in the scenario's dir that both sidecars append to) and tracing at
 *   1 % sampling, exported to the bench's collector (collector.ts);
 * - `log`, `trace` (`mesh-log`, `mesh-trace`): one of those alone, for what
 *   each costs (`default` is the service metrics alone).
 * The environment's own `TRELLIS_METRICS*` / `TRELLIS_ACCESS_LOG_*` never
 * reach the sidecars: each scenario is exactly what it says.
 *
 * Plaintext between the sidecars until mTLS lands; then `MeshOptions.mtls`
 * is where a `mesh-mtls` scenario turns it on (a PeerAuthentication STRICT
 * file in `configFiles`), and the nginx scenario gets the same certificates.
 */
import { mintJoinTokens } from '../../src/cli/join-tokens.js';
import { loadMesh } from '../../src/cli/mesh-input.js';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PROXY_NODE_FLAGS } from '../../src/cli/proxy-process.js';
import { httpGet, pollUntil } from '../../src/cli/up/http-probe.js';
import type { Snapshot } from '../../src/protocol/snapshot.js';
import type { Child, Children } from './children.js';
import { answers200, statusOf } from './probe.js';

export const TRELLIS_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** The Host header the load generator sends to the caller's outbound listener. */
export const UPSTREAM_AUTHORITY = 'upstream:8080';

const APP = `apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: bench }
spec:
  namespace: bench
  services:
  - name: client
    ports: [{ name: http, port: 8080 }]
    command: [the-load-generator]
  - name: upstream
    ports: [{ name: http, port: 8080 }]
    command: [nginx]
`;

/** One authorization policy on the path (issue 6): the upstream accepts GETs from the client's identity only. The mesh is STRICT mTLS. */
const SECURITY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: upstream-callers, namespace: bench }
spec:
  selector: { matchLabels: { app: upstream } }
  action: ALLOW
  rules:
  - from: [{ source: { principals: [cluster.local/ns/bench/sa/client] } }]
    to: [{ operation: { methods: [GET] } }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec:
  mtls: { mode: STRICT }
`;

/** `mesh-plaintext`: the same mesh without mTLS or the policy (DestinationRule tls DISABLE), for what zero trust costs. */
const PLAINTEXT = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: upstream, namespace: bench }
spec:
  host: upstream
  trafficPolicy: { tls: { mode: DISABLE } }
`;

/**
 * `mesh-resilient` (issue 8): the `mesh` scenario's path with the resilience a
 * careful user configures on a route: retries (2, on 5xx / reset /
 * connect-failure, 2 s per try), a 10 s route timeout, outlier detection
 * (which turns locality-aware balancing on, as in Istio), a connection pool
 * with limits well above the load, and a consistent-hash balancer on the
 * source IP. None of it fires under the bench's load: what it costs is the
 * bookkeeping every request pays.
 */
const RESILIENT = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: upstream, namespace: bench }
spec:
  hosts: [upstream]
  http:
  - name: resilient
    timeout: 10s
    retries: { attempts: 2, perTryTimeout: 2s, retryOn: "5xx,reset,connect-failure" }
    route: [{ destination: { host: upstream, port: { number: 8080 } } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: upstream, namespace: bench }
spec:
  host: upstream
  trafficPolicy:
    loadBalancer: { consistentHash: { useSourceIp: true } }
    connectionPool:
      tcp: { maxConnections: 1000 }
      http: { http1MaxPendingRequests: 1000, http2MaxRequests: 1000, maxRetries: 100 }
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50 }
`;

/** The name of the bench's RateLimitPolicy (`mesh-ratelimit-local`, `mesh-ratelimit-global`), as /metrics labels it. */
export const RATE_LIMIT_POLICY = 'bench/upstream-callers';

/**
 * `mesh-ratelimit-local` / `mesh-ratelimit-global` (issue 9): the `mesh`
 * scenario's path with a RateLimitPolicy on the upstream, one limit per
 * caller far above the load (1 000 000 requests a second), enforced by the
 * upstream's sidecar: locally, or globally in the bench's own Redis (fail
 * closed, so a Redis that cannot answer shows as errors instead of passing
 * unnoticed). It never refuses: what it costs is the decision every request
 * pays (a token bucket in the sidecar, or a Lua script in Redis).
 */
function rateLimitPolicy(scope: 'local' | 'global', redis: string | undefined): string {
  if (scope === 'global' && !redis) throw new Error('the mesh with a global rate limit needs a Redis address');
  return `apiVersion: trellis.dev/v1alpha1
kind: RateLimitPolicy
metadata: { name: ${RATE_LIMIT_POLICY.split('/')[1]}, namespace: bench }
spec:
  targetRef: { kind: Service, name: upstream }
${scope === 'global' ? `  store: { redis: ${redis}, timeout: 500ms, failureMode: Closed }
` : ''}  limits:
  - name: per-caller
    scope: ${scope === 'global' ? 'Global' : 'Local'}
    rate: { requests: 1000000, per: 1s }
`;
}

export type Observability = 'default' | 'off' | 'all' | 'log' | 'trace';

/** What the sidecars of each observability setting have on: Istio's service metrics, the JSON access log, tracing. */
const PARTS: Record<Observability, { readonly metrics: boolean; readonly log: boolean; readonly trace: boolean }> = {
  default: { metrics: true, log: false, trace: false },
  off: { metrics: false, log: false, trace: false },
  all: { metrics: true, log: true, trace: true },
  log: { metrics: false, log: true, trace: false },
  trace: { metrics: false, log: false, trace: true },
};

/** What the sidecars of `o` have on. */
export const partsOf = (o: Observability | undefined) => PARTS[o ?? 'default'];
export type Security = 'mtls' | 'plaintext';

/** Trace sampling of `observability: 'all'`, percent (Istio's default). */
export const TRACE_SAMPLING_PERCENT = 1;

export interface MeshOptions {
  /** Where the config dir and state dir go (and the access log, with `observability: 'all'` or `'log'`). */
  readonly dir: string;
  readonly upstreamPort: number;
  /** What the sidecars observe; `default` when absent. */
  readonly observability?: Observability;
  /** `mtls` (the default): STRICT mTLS and one AuthorizationPolicy on the path; `plaintext`: neither. */
  readonly security?: Security;
  /** The route with retries, a timeout, outlier detection, limits and consistent hashing (`mesh-resilient`). */
  readonly resilient?: boolean;
  /** A RateLimitPolicy on the upstream that never triggers (`mesh-ratelimit-local`, `mesh-ratelimit-global`). */
  readonly rateLimit?: 'local' | 'global';
  /** The Redis (`host:port`) of a global limit. */
  readonly redis?: string;
  /** The OTLP/HTTP collector on 127.0.0.1 that `observability: 'all'` or `'trace'` exports spans to. */
  readonly collectorPort?: number;
  /** When set, the sidecars run under `node --cpu-prof` and write their profiles here on exit. */
  readonly profileDir?: string;
  /** The CLI (`dist/src/cli/main.js`) the control plane and the sidecars run: another build's for `--baseline`; this one's by default. */
  readonly main?: string;
  /** The node flags the sidecars start with: `main`'s build's for `--baseline`; this build's `PROXY_NODE_FLAGS` by default. */
  readonly nodeFlags?: readonly string[];
  /** Not yet: mTLS between the sidecars (the security issue). */
  readonly mtls?: false;
}

export interface Mesh {
  readonly controlPlane: Child;
  /** The caller's sidecar: its outbound listener takes the load. */
  readonly outbound: Child;
  /** The callee's sidecar: its inbound listener forwards to the upstream. */
  readonly inbound: Child;
  /** The outbound listener, 127.0.0.1:port. */
  readonly entryPort: number;
  /** Each sidecar's admin address (host:port), outbound first: where /metrics is. */
  readonly admin: readonly [string, string];
  /** The access log both sidecars write, with `observability: 'all'` or `'log'`. */
  readonly accessLog?: string;
}

/** The MeshConfig that turns on the access log (to `accessLog`) and tracing (to the collector at `collectorPort`, `sampling` percent), each when given. */
export function meshConfig(accessLog: string | undefined, collectorPort: number | undefined, sampling = TRACE_SAMPLING_PERCENT): string {
  return `apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh }
spec:
` + (accessLog ? `  accessLogFile: ${JSON.stringify(accessLog)}
  accessLogEncoding: JSON
` : '') + (collectorPort ? `  defaultConfig: { tracing: { sampling: ${sampling} } }
  extensionProviders: [{ name: bench-collector, opentelemetry: { service: 127.0.0.1, port: ${collectorPort}, http: { path: /v1/traces } } }]
  defaultProviders: { tracing: [bench-collector] }
` : '');
}

function configFiles(o: MeshOptions, accessLog: string | undefined): Record<string, string> {
  const security: Record<string, string> = o.security === 'plaintext' ? { 'plaintext.yaml': PLAINTEXT } : { 'security.yaml': SECURITY };
  if (o.resilient) security['resilient.yaml'] = RESILIENT;
  if (o.rateLimit) security['ratelimit.yaml'] = rateLimitPolicy(o.rateLimit, o.redis);
  const parts = partsOf(o.observability);
  if (!parts.log && !parts.trace) return { 'app.yaml': APP, ...security };
  if (parts.trace && !o.collectorPort) throw new Error(`the mesh with observability "${o.observability}" needs a collector port`);
  return { 'app.yaml': APP, ...security, 'mesh.yaml': meshConfig(accessLog, parts.trace ? o.collectorPort : undefined) };
}

/** The bench's environment without telemetry settings of its own, plus the scenario's. */
function sidecarEnv(o: MeshOptions): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^TRELLIS_(METRICS|ACCESS_LOG)/.test(k)));
  return partsOf(o.observability).metrics ? env : { ...env, TRELLIS_METRICS: 'off' };
}

export async function startMesh(children: Children, o: MeshOptions): Promise<Mesh> {
  const config = join(o.dir, 'config');
  mkdirSync(config, { recursive: true });
  const accessLog = partsOf(o.observability).log ? join(o.dir, 'access.log') : undefined;
  for (const [name, text] of Object.entries(configFiles(o, accessLog))) writeFileSync(join(config, name), text);
  const env = sidecarEnv(o);
  const main = o.main ?? TRELLIS_MAIN;
  const cp = children.start('trellis control-plane', process.execPath, [
    main, 'control-plane', '--config', config, '--grpc-port', '0', '--admin-port', '0',
    '--state-dir', join(o.dir, 'state'), '--registration-grace', '0s',
  ]);
  const grpc = (await cp.line(/listening grpc=(\S+) admin=\S+/, 15_000))[1]!;
  // Join tokens as `trellis up` mints them: the sidecars talk mTLS with certificates from the control plane's CA.
  const registry = loadMesh([config]).registry;
  const tokens = new Map(mintJoinTokens(join(o.dir, 'state'), registry, ['upstream.bench', 'client.bench']).map((m) => [m.instance, m.token]));
  const sidecar = async (instance: string, extra: string[]) => {
    const node = o.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, `--cpu-prof-name=${basename(o.dir)}.${instance}.cpuprofile`] : [];
    const c = children.start(`trellis proxy ${instance}`, process.execPath, [
      ...node, ...(o.nodeFlags ?? PROXY_NODE_FLAGS), main, 'proxy', '--control-plane', grpc, '--instance', instance,
      '--leave-timeout', '2s', '--drain-timeout', '1s', ...extra,
    ], { ...env, TRELLIS_JOIN_TOKEN: tokens.get(instance)! });
    const m = await c.line(/listening inbound=(\S+) outbound=(\S+) admin=(\S+)/, 15_000);
    return { c, outbound: m[2]!, admin: m[3]! };
  };
  const [inbound, outbound] = await Promise.all([
    sidecar('upstream.bench', ['--app-port', String(o.upstreamPort)]),
    sidecar('client.bench', []),
  ]);
  const entryPort = Number(outbound.outbound.split(':')[1]);
  // Ready when a call goes all the way through: the caller's snapshot has the callee's endpoint.
  await answers200(entryPort, UPSTREAM_AUTHORITY, outbound.c, 20_000);
  return { controlPlane: cp, outbound: outbound.c, inbound: inbound.c, entryPort, admin: [outbound.admin, inbound.admin], ...(accessLog ? { accessLog } : {}) };
}

/**
 * Fails unless the sidecars, after some load, observe what `observability`
 * says: Istio's service metrics in their /metrics or not; with the access
 * log on, a non-empty access log; with tracing on, spans at the collector
 * (`spans()`: this mesh's, polled: spans leave in batches, at least every
 * second). A switch that silently did
 * nothing would make the scenario's figures mean something else.
 */
export async function checkObservability(m: Mesh, observability: Observability, spans: () => number, security: Security = 'mtls'): Promise<void> {
  const what = `the mesh with observability "${observability}" and ${security}`;
  // The path is what the scenario says: mTLS between the sidecars and the authorization policy in force (a DELETE is denied), or neither.
  const denied = await statusOf(m.entryPort, UPSTREAM_AUTHORITY, 'DELETE');
  if (denied !== (security === 'mtls' ? 403 : 200)) throw new Error(`${what}: a DELETE through the mesh answered ${denied}: the authorization policy is ${security === 'mtls' ? 'not ' : ''}on the path`);
  for (const admin of m.admin) {
    const text = (await httpGet(`http://${admin}/metrics`, 5000)).body;
    if (/^trellis_proxy_tls_handshakes_total\{[^}]*\} [1-9]/m.test(text) !== (security === 'mtls')) throw new Error(`${what}: http://${admin}/metrics ${security === 'mtls' ? 'counts no' : 'counts an'} mTLS handshake`);
    if (!/^trellis_proxy_requests_total\{/m.test(text)) throw new Error(`${what}: http://${admin}/metrics has no trellis_proxy_requests_total after the warm-up`);
    const service = /^trellis_requests_total\{/m.test(text);
    if (service !== partsOf(observability).metrics) throw new Error(`${what}: http://${admin}/metrics ${service ? 'has' : 'has no'} service metrics (trellis_requests_total)`);
  }
  const parts = partsOf(observability);
  if (parts.log) {
    const size = m.accessLog ? statSync(m.accessLog, { throwIfNoEntry: false })?.size ?? 0 : 0;
    if (size === 0) throw new Error(`${what}: the access log ${m.accessLog} is empty after the warm-up`);
  }
  if (!parts.trace) return;
  const r = await pollUntil(async () => spans() > 0 || 'no span yet', { timeoutMs: 5000, intervalMs: 100 });
  if (!r.ok) throw new Error(`${what}: the collector received no span within 5 s of the warm-up (sampling ${TRACE_SAMPLING_PERCENT} %)`);
}

/**
 * Fails unless the caller's sidecar runs the resilient route (`mesh-resilient`):
 * its applied snapshot (admin /config_dump) has the route with its retries
 * and timeout, and the upstream's cluster with outlier detection, locality
 * and a consistent-hash balancer. Without it the scenario would measure the
 * plain route under another name.
 */
export async function checkResilient(m: Mesh): Promise<void> {
  const snap = (JSON.parse((await httpGet(`http://${m.admin[0]}/config_dump`, 5000)).body) as { snapshot: Snapshot | null }).snapshot;
  const route = snap?.outbound.http.flatMap((t) => t.virtualHosts).flatMap((v) => v.routes).find((r) => r.name === 'resilient');
  if (route?.action.kind !== 'forward' || route.action.retry.attempts !== 2 || route.action.timeoutMs !== 10_000) {
    throw new Error(`mesh-resilient: the caller's sidecar has no route "resilient" with 2 retries and a 10 s timeout in http://${m.admin[0]}/config_dump`);
  }
  const target = route.action.clusters[0]?.cluster;
  const cluster = snap?.clusters.find((c) => c.name === target);
  if (!cluster?.outlierDetection || cluster.lb.policy !== 'CONSISTENT_HASH' || !cluster.lb.locality.enabled) {
    throw new Error(`mesh-resilient: the upstream's cluster in http://${m.admin[0]}/config_dump lacks outlier detection, locality or consistent hashing`);
  }
}

/**
 * Fails unless the upstream's sidecar enforces the bench's RateLimitPolicy
 * with the scenario's scope (`mesh-ratelimit-*`): its applied snapshot
 * (admin /config_dump) has the limit, and after the warm-up its /metrics
 * counts allowed decisions for the policy and nothing else (no refusal, no
 * store failure). Without it the scenario would measure the plain mesh.
 */
export async function checkRateLimit(m: Mesh, scope: 'local' | 'global'): Promise<void> {
  const what = `mesh-ratelimit-${scope}`;
  const admin = m.admin[1];
  const snap = (JSON.parse((await httpGet(`http://${admin}/config_dump`, 5000)).body) as { snapshot: Snapshot | null }).snapshot;
  const limit = snap?.rateLimits?.policies.find((p) => p.name === RATE_LIMIT_POLICY)?.limits[0];
  if (limit?.scope !== scope) throw new Error(`${what}: the upstream's sidecar has no ${scope} limit of ${RATE_LIMIT_POLICY} in http://${admin}/config_dump`);
  const text = (await httpGet(`http://${admin}/metrics`, 5000)).body;
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('trellis_proxy_rate_limit_requests_total{') || !line.includes(`policy="${RATE_LIMIT_POLICY}"`)) continue;
    const decision = /decision="([^"]+)"/.exec(line)?.[1] ?? '?';
    counts.set(decision, (counts.get(decision) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  if (!((counts.get('allowed') ?? 0) > 0)) throw new Error(`${what}: http://${admin}/metrics counts no allowed decision for ${RATE_LIMIT_POLICY} after the warm-up: the limit is not on the path`);
  const other = [...counts].filter(([d, n]) => d !== 'allowed' && n > 0);
  if (other.length) throw new Error(`${what}: the limit, far above the load, decided ${other.map(([d, n]) => `${n} ${d}`).join(', ')} during the warm-up`);
}

/**
 * The node flags another build (a checkout or worktree, built) starts its sidecars with (its
 * `PROXY_NODE_FLAGS`), so that a change of flags is measured like a change
 * of code; a build from before that constant existed gets this build's.
 */
export async function nodeFlagsOf(dir: string): Promise<readonly string[]> {
  const module = join(dir, 'dist', 'src', 'cli', 'proxy-process.js');
  if (!existsSync(module)) return PROXY_NODE_FLAGS;
  let theirs: unknown;
  try {
    theirs = ((await import(pathToFileURL(module).href)) as { PROXY_NODE_FLAGS?: unknown }).PROXY_NODE_FLAGS;
  } catch (e) {
    throw new Error(`${dir}: cannot read its sidecars' node flags from ${module}: ${(e as Error).message}`);
  }
  if (theirs === undefined) return PROXY_NODE_FLAGS;
  if (!Array.isArray(theirs) || !theirs.every((f) => typeof f === 'string')) throw new Error(`${dir}: PROXY_NODE_FLAGS in ${module} is not a list of strings`);
  return theirs as readonly string[];
}
