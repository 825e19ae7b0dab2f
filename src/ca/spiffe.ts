/**
 * SPIFFE IDs (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md):
 * `spiffe://<trust domain>/<path>`, the identity a workload certificate
 * carries. Trellis names workloads `spiffe://<td>/ns/<namespace>/sa/<account>`.
 */

/** The parts of a valid SPIFFE ID. `path` starts with `/`, or is empty for a trust domain's own ID. */
export interface SpiffeId {
  readonly trustDomain: string;
  readonly path: string;
}

const SCHEME = 'spiffe://';
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_LENGTH = 2048;

/** Why `trustDomain` is not a valid SPIFFE trust domain, or undefined when it is. */
export function trustDomainProblem(trustDomain: string): string | undefined {
  if (trustDomain === '') return 'the trust domain is empty';
  if (!TRUST_DOMAIN.test(trustDomain)) {
    return `trust domain ${JSON.stringify(trustDomain)} may hold only lowercase letters, digits, '.', '-' and '_'`;
  }
  return undefined;
}

/** Parses a SPIFFE ID strictly (lowercase scheme and trust domain, no query, fragment, port or user). */
export function parseSpiffeId(id: string): { ok: true; id: SpiffeId } | { ok: false; message: string } {
  const bad = (why: string) => ({ ok: false as const, message: `${JSON.stringify(id.slice(0, 200))} is not a SPIFFE ID: ${why}` });
  if (id.length > MAX_LENGTH) return bad(`longer than ${MAX_LENGTH} characters`);
  if (!id.startsWith(SCHEME)) return bad(`it must start with ${SCHEME}`);
  const rest = id.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  const tdProblem = trustDomainProblem(trustDomain);
  if (tdProblem) return bad(tdProblem);
  if (path !== '') {
    const segments = path.slice(1).split('/');
    for (const s of segments) {
      if (s === '') return bad('the path has an empty segment (a double or trailing slash)');
      if (s === '.' || s === '..') return bad(`the path may not have a '${s}' segment`);
      if (!SEGMENT.test(s)) return bad(`path segment ${JSON.stringify(s)} may hold only letters, digits, '.', '-' and '_'`);
    }
  }
  return { ok: true, id: { trustDomain, path } };
}

/** True when `id` is a valid SPIFFE ID. */
export function isSpiffeId(id: string): boolean {
  return parseSpiffeId(id).ok;
}

/** `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`; throws on parts that make no valid ID. */
export function workloadSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  const id = `${SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  for (const part of [namespace, serviceAccount]) {
    if (!SEGMENT.test(part)) throw new TypeError(`${JSON.stringify(id)} is not a SPIFFE ID of a workload: ${JSON.stringify(part)} is not one path segment`);
  }
  const parsed = parseSpiffeId(id);
  if (!parsed.ok) throw new TypeError(parsed.message);
  return id;
}

/** The namespace and service account of a Trellis workload ID (`…/ns/<ns>/sa/<sa>`), or undefined for other paths. */
export function workloadOf(id: string): { trustDomain: string; namespace: string; serviceAccount: string } | undefined {
  const parsed = parseSpiffeId(id);
  if (!parsed.ok) return undefined;
  const m = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(parsed.id.path);
  return m ? { trustDomain: parsed.id.trustDomain, namespace: m[1]!, serviceAccount: m[2]! } : undefined;
}
