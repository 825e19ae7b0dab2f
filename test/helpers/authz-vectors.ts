/**
 * Istio's authorization vectors (test/fixtures/authz-vectors.json, a copy of
 * the team corpus) turned into concrete cases: the policy YAML (templates
 * resolved), the workload the policies are compiled for, the request as it
 * arrives at that workload's inbound side (raw target, headers, peer
 * identity, port, validated JWT claims) and the expected verdict. The same
 * cases can drive the pure engine (test/policy/authz-vectors.test.ts, via
 * `authzAttributes`) and real proxies (send `request` to the workload).
 *
 * Conventions: a vector that names a normalization mode runs in that mode,
 * the others in Istio's default (BASE), in which their verdicts were seen; expectations
 * of vulnerable versions ("vulnerable…") are not targets; what the vectors
 * describe in prose (the bookinfo task) is spelled out below. Vectors the
 * authorization engine cannot decide (JWT validation → 401, PeerAuthentication
 * → connection reset, header stripping, advisories without requests) are
 * returned as skipped, with the reason.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PathNormalization } from '../../src/protocol/snapshot.js';
import { normalizePath, type NormalizedPath } from '../../src/policy/path-normalize.js';
import type { AuthzRequest } from '../../src/policy/authorize.js';
import { ROOT } from './mesh.js';

export const VECTORS_FILE = join(ROOT, 'test', 'fixtures', 'authz-vectors.json');
export const MODES: readonly PathNormalization[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];
/** The mode Istio ran the vectors in when they name none (its default; Trellis's default merges slashes, which changes `/store//cart`). */
const DEFAULT_MODE: PathNormalization = 'BASE';

/** A request as the destination workload's inbound listener receives it. */
export interface VectorRequest {
  readonly protocol: 'http' | 'tcp';
  readonly method: string;
  /** Raw request target, query and fragment included. */
  readonly target: string;
  readonly host: string;
  /** Header lines as sent (repeats allowed, values not trimmed). */
  readonly headers: readonly (readonly [string, string])[];
  /** The caller's SPIFFE ID (mTLS), or undefined for plaintext. */
  readonly peer?: string;
  readonly sourceIp: string;
  /** The port the workload receives on. */
  readonly port: number;
  /** Claims of a JWT that request authentication validated. */
  readonly jwt?: Readonly<Record<string, unknown>>;
}

export interface VectorWorkload {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface VectorCase {
  /** `group/vector#request[/variant]`. */
  readonly id: string;
  readonly group: 'integrationAuthz' | 'advisories' | 'docsTasks';
  /** Every document of the vector; only AuthorizationPolicies matter to the engine. */
  readonly yaml: string;
  /** Namespace of documents that name none. */
  readonly defaultNamespace: string;
  readonly workload: VectorWorkload;
  readonly mode: PathNormalization;
  readonly request: VectorRequest;
  readonly expect: 'allow' | 'deny';
}

export interface SkippedVector {
  readonly id: string;
  readonly group: VectorCase['group'];
  readonly reason: string;
}

const spiffe = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const INGRESS: VectorWorkload = { name: 'istio-ingressgateway', namespace: 'istio-system', labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' } };
const INGRESS_PEER = spiffe('istio-system', 'istio-ingressgateway-service-account');
const EXTERNAL_IP = '203.0.113.7';
const MESH_IP = '10.1.0.9';

function request(over: Partial<VectorRequest>): VectorRequest {
  return { protocol: 'http', method: 'GET', target: '/', host: 'svc', headers: [], sourceIp: MESH_IP, port: 8080, ...over };
}

/** allow / deny from an expectation text or status; undefined when it is not an authorization verdict. */
function verdict(e: string | number): 'allow' | 'deny' | undefined {
  if (e === 200 || e === 403) return e === 200 ? 'allow' : 'deny';
  if (typeof e !== 'string') return undefined;
  if (/^(allow|not denied|200)/i.test(e)) return 'allow';
  if (/^(deny|403)/i.test(e)) return 'deny';
  return undefined;
}

/** The claims written in a token description: `… (claims {…})`. */
function claimsOf(token: string | null | undefined): Record<string, unknown> | undefined {
  if (!token) return undefined;
  const m = /\(claims (\{.*\})\)/.exec(token);
  return m ? (JSON.parse(m[1]!) as Record<string, unknown>) : undefined;
}

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every case of the three request groups, and what was skipped. */
export function vectorCases(file = VECTORS_FILE): { cases: VectorCase[]; skipped: SkippedVector[] } {
  const v = JSON.parse(readFileSync(file, 'utf8')) as Raw;
  const cases: VectorCase[] = [];
  const skipped: SkippedVector[] = [];
  integration(v.integrationAuthz, cases);
  advisories(v.advisories, cases, skipped);
  docsTasks(v.docsTasks, cases, skipped);
  return { cases, skipped };
}

/** Istio's echo tests: a calls b in namespace echo over mTLS; b is selected by app=b. */
function integration(tests: Raw, cases: VectorCase[]): void {
  const fill: Record<string, string> = {
    '.To.ServiceName': 'b', '.GatewayIstioLabel | default "ingressgateway"': 'ingressgateway',
    '.To.ClusterLocalFQDN': 'b.echo.svc.cluster.local', '(.To.PortForName "http").ServicePort': '80',
  };
  for (const [name, t] of Object.entries(tests)) {
    const yaml = (t.policy as string).replace(/\{\{\s*(.*?)\s*\}\}/g, (_, k: string) => {
      if (!(k in fill)) throw new Error(`unknown template ${k} in ${name}`);
      return fill[k]!;
    });
    const viaIngress = /ingress/.test(t.note ?? '');
    (t.cases as Raw[]).forEach((c, i) => cases.push({
      id: `integrationAuthz/${name}#${i}`, group: 'integrationAuthz', yaml, defaultNamespace: 'echo',
      workload: { name: 'b', namespace: 'echo', labels: { app: 'b' } }, mode: DEFAULT_MODE,
      request: request({
        method: c.method ?? 'GET', target: c.path ?? '/', host: (c.host as string | undefined)?.replace('<svc>', 'b') ?? 'b',
        peer: viaIngress ? INGRESS_PEER : spiffe('echo', 'a'),
      }),
      expect: c.allow ? 'allow' : 'deny',
    }));
  }
}

/** Per advisory: where its policy applies, who calls, and the policy variants its expectations name. */
function advisories(list: Raw[], cases: VectorCase[], skipped: SkippedVector[]): void {
  for (const a of list) {
    const id = `advisories/${a.id}`;
    const reqs = a.requests as Raw[];
    if (reqs.length === 0) { skipped.push({ id, group: 'advisories', reason: 'no request vector (guidance for analyzers or the control plane)' }); continue; }
    if (a.id === 'ISTIO-SECURITY-2021-001' || a.id === 'CVE-2026-31837') {
      skipped.push({ id, group: 'advisories', reason: 'request authentication (JWT validation, JWKS), not authorization' });
      continue;
    }
    if (a.id === 'CVE-2020-8843') { skipped.push({ id, group: 'advisories', reason: 'identity-header stripping at the edge (the proxy), not a policy decision' }); continue; }
    const ns = /namespace: (\S+)/.exec(a.policyFixed ?? a.policy ?? '')?.[1] ?? 'foo';
    const gateway = /istio: ingressgateway/.test(a.policyFixed ?? a.policy ?? '');
    const workload: VectorWorkload = gateway ? INGRESS : { name: 'httpbin', namespace: ns, labels: { app: 'httpbin' } };
    reqs.forEach((r, i) => {
      for (const [key, text] of Object.entries(r.expect as Record<string, string>)) {
        const want = verdict(text);
        if (key.startsWith('vulnerable') || want === undefined) continue;
        const variant = policyVariant(a, r, key);
        if (!variant) continue;
        const modes = (MODES as readonly string[]).includes(key) ? [key as PathNormalization] : key === 'any mode' ? MODES : [DEFAULT_MODE];
        for (const mode of modes) {
          cases.push({
            id: `${id}#${i}/${key === mode ? mode : modes.length > 1 ? `${variant.label}/${mode}` : variant.label}`, group: 'advisories',
            yaml: variant.yaml, defaultNamespace: ns, workload, mode, request: advisoryRequest(r, gateway), expect: want,
          });
        }
      }
    });
  }
}

function advisoryRequest(r: Raw, gateway: boolean): VectorRequest {
  const headers: [string, string][] = [];
  if (Array.isArray(r.headers)) for (const [k, v] of r.headers as [string, string][]) headers.push([k, v]);
  if (typeof r.headers_raw === 'string') {
    const line = r.headers_raw as string;
    headers.push([line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).replace(/^ +/, '')]);
  }
  const from = /namespace (\S+) \(mTLS\)/.exec(r.from ?? '')?.[1];
  const plaintext = /plaintext/.test(r.protocol ?? '');
  const peer = r.peer ?? (from ? spiffe(from, 'default') : plaintext ? undefined : gateway ? undefined : spiffe('foo', 'sleep'));
  return request({
    protocol: /^TCP/.test(r.protocol ?? '') ? 'tcp' : 'http',
    method: r.method ?? 'GET', target: r.path ?? '/', host: r.host ?? 'httpbin.foo', headers,
    ...(peer ? { peer } : {}), sourceIp: gateway || plaintext ? EXTERNAL_IP : MESH_IP, port: r.targetPort ?? 8080,
  });
}

/** The policy YAML an expectation key refers to, with a short label; undefined when the key names no variant we can build. */
function policyVariant(a: Raw, r: Raw, key: string): { yaml: string; label: string } | undefined {
  const policy = (a.policyFixed ?? a.policy) as string;
  switch (a.id) {
    case 'ISTIO-2021-008-host-port (non-CVE)': {
      const exactOnly = policy.replace('hosts: ["httpbin.com", "httpbin.com:*"]', 'hosts: ["httpbin.com"]');
      if (key.startsWith('with hosts [httpbin.com] only')) return { yaml: exactOnly, label: 'exact-host-only' };
      if (key === 'with mitigated policy') return { yaml: policy, label: 'mitigated' };
      if (key === 'either') return { yaml: policy, label: 'mitigated' }; // the exact-only variant is checked under its own key
      return undefined;
    }
    case 'ISTIO-SECURITY-2021-002':
      if (key === 'with ports 80/443') return { yaml: policy.replace('"8080"', '"80"').replace('"8443"', '"443"'), label: 'service-ports' };
      if (key === 'with ports 8080/8443') return { yaml: policy, label: 'target-ports' };
      return undefined;
    case 'ISTIO-SECURITY-2021-004': {
      const docs = policy.split(/^---$/m);
      const allowDoc = docs.find((d) => d.includes('allow-ns-not-foo'))!;
      const rejectDoc = docs.find((d) => d.includes('reject-ns-foo'))!;
      const which = r.policy as string;
      if (which === 'allow-ns-not-foo') return { yaml: allowDoc, label: 'allow-ns-not-foo' };
      if (which === 'reject-ns-foo') return { yaml: rejectDoc, label: 'reject-ns-foo' };
      if (which.startsWith('allow-ns-not-foo +')) {
        return { yaml: allowDoc.replace('        notNamespaces: ["foo"]', '        namespaces: ["*"]\n        notNamespaces: ["foo"]'), label: 'allow-fixed' };
      }
      if (which.startsWith('reject-ns-foo +')) {
        return { yaml: `${rejectDoc.trimEnd()}\n  - from:\n    - source:\n        notNamespaces: ["*"]\n`, label: 'reject-fixed' };
      }
      return undefined;
    }
    default:
      return { yaml: policy, label: key.startsWith('fixed') ? 'fixed' : (MODES as readonly string[]).includes(key) ? key : key.replace(/\W+/g, '-') };
  }
}

/** istio.io tasks: httpbin (app=httpbin, container port 80) in foo, sleep callers, or the ingress gateway. */
function docsTasks(tasks: Raw[], cases: VectorCase[], skipped: SkippedVector[]): void {
  for (const t of tasks) {
    const id = `docsTasks/${t.task}`;
    if (typeof t.policies === 'string') { bookinfo(t, cases); continue; }
    const yaml = (t.policies as string[]).join('\n---\n');
    const hasAuthz = /kind: "?AuthorizationPolicy"?/.test(yaml);
    (t.requests as Raw[]).forEach((r, i) => {
      const rid = `${id}#${i}`;
      const want = verdict(r.expectStatus);
      if (!hasAuthz) return skipped.push({ id: rid, group: 'docsTasks', reason: 'no AuthorizationPolicy: PeerAuthentication, RequestAuthentication or routing decides' });
      if (want === undefined) return skipped.push({ id: rid, group: 'docsTasks', reason: `status ${JSON.stringify(r.expectStatus)} comes from request authentication or mTLS, not authorization` });
      const ingress = r.via === 'ingress';
      const url = ingress ? new URL(r.url as string, 'http://ingress.example') : new URL(r.url as string);
      const [svc, ns] = url.hostname.split('.') as [string, string];
      const workload = ingress ? INGRESS : { name: svc, namespace: ns, labels: { app: svc } };
      const from = /^(\w+)\.(\w+)$/.exec(r.from ?? '');
      const headers = Object.entries((r.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v] as const);
      const jwt = claimsOf(r.token);
      cases.push({
        id: rid, group: 'docsTasks', yaml, defaultNamespace: 'foo', workload, mode: DEFAULT_MODE, expect: want,
        request: request({
          method: r.method ?? 'GET', target: url.pathname + url.search, host: url.host, headers,
          ...(from ? { peer: spiffe(from[2]!, from[1]!) } : {}), sourceIp: ingress ? EXTERNAL_IP : MESH_IP,
          port: ingress ? 8080 : 80, ...(jwt ? { jwt } : {}),
        }),
      });
    });
  }
}

/**
 * The bookinfo task states its outcomes in prose; spelled out as requests:
 * ingress → productpage, productpage → details and reviews, reviews → ratings.
 */
function bookinfo(t: Raw, cases: VectorCase[]): void {
  const docs = readFileSync(join(ROOT, 'test', 'fixtures', 'istio-samples', 'security', 'authz-http-bookinfo.yaml'), 'utf8').split(/^---$/m);
  const named = (n: string) => docs.find((d) => d.includes(`name: ${n}`) || d.includes(`name: "${n}"`))!;
  const steps: { policies: string[]; calls: [string, string, 'allow' | 'deny'][] }[] = [
    { policies: ['allow-nothing'], calls: [['ingress', 'productpage', 'deny']] },
    { policies: ['allow-nothing', 'productpage-viewer'], calls: [['ingress', 'productpage', 'allow'], ['productpage', 'details', 'deny'], ['productpage', 'reviews', 'deny']] },
    { policies: ['allow-nothing', 'productpage-viewer', 'details-viewer', 'reviews-viewer'], calls: [['productpage', 'details', 'allow'], ['productpage', 'reviews', 'allow'], ['reviews', 'ratings', 'deny']] },
    { policies: ['allow-nothing', 'productpage-viewer', 'details-viewer', 'reviews-viewer', 'ratings-viewer'], calls: [['ingress', 'productpage', 'allow'], ['reviews', 'ratings', 'allow']] },
  ];
  steps.forEach((s, i) => s.calls.forEach(([from, to, expect], j) => cases.push({
    id: `docsTasks/${t.task}#${i}.${j} ${from}->${to}`, group: 'docsTasks', yaml: s.policies.map(named).join('\n---\n'), defaultNamespace: 'default',
    workload: { name: `${to}-v1`, namespace: 'default', labels: { app: to, version: 'v1' } }, mode: DEFAULT_MODE, expect,
    request: request({ target: to === 'productpage' ? '/productpage' : `/${to}/0`, host: `${to}:9080`, port: 9080, peer: from === 'ingress' ? INGRESS_PEER : spiffe('default', `bookinfo-${from}`) }),
  })));
}

/** The authorization attributes of a vector request after path normalization, or the normalizer's refusal. */
export function authzAttributes(r: VectorRequest, mode: PathNormalization): { attrs: AuthzRequest } | { refused: Exclude<NormalizedPath, { ok: true }> } {
  const principal = r.peer?.replace(/^spiffe:\/\//, '');
  const base = { tcp: r.protocol === 'tcp', sourceIp: r.sourceIp, destinationPort: r.port, ...(principal ? { principal } : {}) };
  if (r.protocol === 'tcp') return { attrs: base };
  const n = normalizePath(r.target, mode);
  if (!n.ok) return { refused: n };
  const byName = new Map<string, string[]>();
  for (const [k, v] of r.headers) byName.set(k.toLowerCase(), [...(byName.get(k.toLowerCase()) ?? []), v]);
  const jwt = r.jwt;
  return {
    attrs: {
      ...base, method: r.method, path: n.path, host: r.host,
      headers: (name) => { const vs = byName.get(name); return vs === undefined ? undefined : vs.length === 1 ? vs[0] : vs; },
      ...(jwt ? { claims: jwt, requestPrincipal: `${String(jwt.iss)}/${String(jwt.sub)}` } : {}),
    },
  };
}
