/**
 * RequestAuthentication → the JWT rules of one workload (`Snapshot.requestAuthn`),
 * with the issuers' keys inlined. Pure: the keys of `jwksUri`s come in as a
 * map filled by the control plane's JWKS cache; inline `jwks` is parsed here.
 *
 * Which policies apply (Istio's `getConfigsForWorkload` / `ShouldAttachPolicy`):
 * those of the workload's namespace and of the root namespace, without a
 * selector or with one that the workload's labels satisfy (a root-namespace
 * policy with a selector applies in every namespace). Every applicable rule
 * is kept; rules are ordered by issuer, as Istio orders them. Policies with
 * `targetRef(s)` do not apply to sidecars (Istio attaches them only to
 * Gateway API gateways and waypoints); they apply to a workload labelled
 * `gateway.networking.k8s.io/gateway-name` whose Gateway they name.
 *
 * A `jwksUri` without fetched keys compiles to a rule with no keys: tokens of
 * that issuer are refused (401), as Istio does when a JWKS cannot be fetched;
 * `requestAuthnDiagnostics` says so once per rule.
 */
import type { ConfigSet, ResourceOf } from '../api/config-set.js';
import { diagnostic, formatPath, type Diagnostic } from '../api/diagnostic.js';
import { parseDuration } from '../api/duration.js';
import type { JwtRule } from '../api/kinds/request-authentication.js';
import { deepFreeze, stableJson } from '../api/validate.js';
import { labelsMatch } from '../policy/route-match.js';
import {
  DEFAULT_JWT_LOCATIONS, DEFAULT_SPACE_DELIMITED_CLAIMS,
  type Jwk, type JwtLocations, type JwtRuleConfig, type WorkloadRequestAuthn,
} from '../protocol/request-authn.js';
import { hashText, withHash } from './hash.js';

export type RequestAuthnResource = ResourceOf<'RequestAuthentication'>;

/** What the control plane knows of one `jwksUri`. */
export interface JwksEntry {
  /** The last good key set; absent while no fetch has succeeded. */
  readonly keys?: readonly Jwk[];
  /** Why the last fetch failed, when it did (the last good keys, if any, stay in use). */
  readonly error?: string;
  /** A content hash of `keys`, when the producer has one (saves hashing here). */
  readonly version?: string;
}

/** The workload whose rules are compiled. A ProxyNode fits. */
export interface RequestAuthnWorkload {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface RequestAuthnInput {
  readonly config: ConfigSet;
  /** MeshConfig `rootNamespace` (`istio-system` by default): its policies apply mesh-wide. */
  readonly rootNamespace: string;
  readonly workload: RequestAuthnWorkload;
  /** Fetched key sets by `jwksUri`. */
  readonly jwks: ReadonlyMap<string, JwksEntry>;
}

/** A `jwksUri` the configuration names, with the longest fetch timeout its rules ask for. */
export interface JwksSource {
  readonly uri: string;
  /** The rules' `timeout` (Istio's default 5 s). */
  readonly timeoutMs: number;
}

/** Istio's JWKS fetch timeout when a rule sets none. */
export const DEFAULT_JWKS_TIMEOUT_MS = 5000;

const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

/** Whether `res` applies to `workload` (see the module comment for the rules). */
export function requestAuthnApplies(res: RequestAuthnResource, rootNamespace: string, workload: RequestAuthnWorkload): boolean {
  const at = res.metadata.namespace;
  if (at !== workload.namespace && at !== rootNamespace) return false;
  const spec = res.body.spec;
  const refs = spec.targetRefs ?? (spec.targetRef ? [spec.targetRef] : []);
  const gatewayName = workload.labels[GATEWAY_NAME_LABEL];
  if (refs.length > 0) {
    if (gatewayName === undefined || at !== workload.namespace) return false;
    return refs.some((r) => r.group === 'gateway.networking.k8s.io' && r.kind === 'Gateway' && r.name === gatewayName);
  }
  const sel = spec.selector?.matchLabels;
  return sel === undefined || labelsMatch(sel, workload.labels);
}

/** The policies that apply to a workload: its namespace's first, then the root namespace's, each in load order. */
export function applicableRequestAuthn(config: ConfigSet, rootNamespace: string, workload: RequestAuthnWorkload): RequestAuthnResource[] {
  const own: RequestAuthnResource[] = [];
  const root: RequestAuthnResource[] = [];
  for (const r of config.ofKind('RequestAuthentication')) {
    if (!requestAuthnApplies(r, rootNamespace, workload)) continue;
    (r.metadata.namespace === workload.namespace ? own : root).push(r);
  }
  return own.concat(root);
}

/** The JWT rules of one workload, or undefined when no rule applies to it. The result carries a compile hash (hash.ts). */
export function compileRequestAuthn(input: RequestAuthnInput): WorkloadRequestAuthn | undefined {
  const policies = applicableRequestAuthn(input.config, input.rootNamespace, input.workload);
  const rules: JwtRuleConfig[] = [];
  let deps = '';
  for (const res of policies) {
    deps += `${res.hash};`;
    (res.body.spec.jwtRules ?? []).forEach((rule, i) => {
      const entry = rule.jwks === undefined && rule.jwksUri !== undefined ? input.jwks.get(rule.jwksUri) : undefined;
      if (rule.jwks === undefined && rule.jwksUri !== undefined) deps += `${rule.jwksUri}=${entryVersion(entry)};`;
      rules.push(compileRule(res, rule, i, entry));
    });
  }
  if (rules.length === 0) return undefined;
  // Stable: rules of one issuer keep the namespace-then-root, load order.
  rules.sort((a, b) => {
    const x = a.issuer ?? '';
    const y = b.issuer ?? '';
    return x < y ? -1 : x > y ? 1 : 0;
  });
  return withHash(Object.freeze({ rules: Object.freeze(rules) }), hashText(deps));
}

function compileRule(res: RequestAuthnResource, rule: JwtRule, i: number, entry: JwksEntry | undefined): JwtRuleConfig {
  let keys: readonly Jwk[];
  let keysFrom: string;
  let keysError: string | undefined;
  if (rule.jwks !== undefined) {
    keysFrom = 'inline';
    const parsed = inlineKeys(res, i, rule.jwks);
    keys = parsed.keys;
    keysError = parsed.error;
  } else if (rule.jwksUri !== undefined) {
    keysFrom = rule.jwksUri;
    keys = entry?.keys ?? NO_KEYS;
    // The fetch error's text stays out of the snapshot (it varies between retries); requestAuthnDiagnostics reports it.
    if (!entry?.keys) keysError = entry?.error !== undefined ? 'JWKS fetch failed' : 'JWKS not fetched yet';
  } else {
    // Istio would discover the keys through OpenID Connect; the schema requires a jwksUri when there is no issuer.
    keysFrom = 'none';
    keys = NO_KEYS;
    keysError = 'the rule has neither jwks nor jwksUri (OpenID Connect discovery is not supported)';
  }
  const out: JwtRuleConfig = {
    ...(rule.issuer !== undefined ? { issuer: rule.issuer } : {}),
    ...(rule.audiences && rule.audiences.length > 0 ? { audiences: Object.freeze([...rule.audiences]) } : {}),
    keys,
    keysFrom,
    ...(keysError !== undefined ? { keysError } : {}),
    locations: locationsOf(rule),
    ...(rule.outputPayloadToHeader ? { outputPayloadToHeader: rule.outputPayloadToHeader.toLowerCase() } : {}),
    outputClaimToHeaders: Object.freeze((rule.outputClaimToHeaders ?? []).map((c) => Object.freeze({ header: c.header.toLowerCase(), claim: c.claim }))),
    forwardOriginalToken: rule.forwardOriginalToken ?? false,
    spaceDelimitedClaims: spaceDelimited(rule.spaceDelimitedClaims),
    source: `${res.ref} jwtRules[${i}]`,
  };
  return Object.freeze(out);
}

const NO_KEYS: readonly Jwk[] = Object.freeze([]);

function locationsOf(rule: JwtRule): JwtLocations {
  if (!rule.fromHeaders?.length && !rule.fromParams?.length && !rule.fromCookies?.length) return DEFAULT_JWT_LOCATIONS;
  return Object.freeze({
    headers: Object.freeze((rule.fromHeaders ?? []).map((h) => Object.freeze({ name: h.name.toLowerCase(), prefix: h.prefix ?? '' }))),
    params: Object.freeze([...(rule.fromParams ?? [])]),
    cookies: Object.freeze([...(rule.fromCookies ?? [])]),
  });
}

function spaceDelimited(extra: readonly string[] | undefined): readonly string[] {
  if (!extra?.length) return DEFAULT_SPACE_DELIMITED_CLAIMS;
  return Object.freeze([...new Set([...extra, ...DEFAULT_SPACE_DELIMITED_CLAIMS])].sort());
}

interface ParsedKeys {
  readonly keys: readonly Jwk[];
  readonly error?: string;
  /** How many `keys` entries were dropped (not an object with a string `kty`). */
  readonly dropped: number;
}

/** Parsed inline key sets, per resource and rule: resources are immutable, so parse once. */
const inlineMemo = new WeakMap<RequestAuthnResource, Map<number, ParsedKeys>>();

function inlineKeys(res: RequestAuthnResource, i: number, text: string): ParsedKeys {
  let byRule = inlineMemo.get(res);
  if (!byRule) inlineMemo.set(res, (byRule = new Map()));
  let parsed = byRule.get(i);
  if (!parsed) byRule.set(i, (parsed = parseJwks(text)));
  return parsed;
}

/** Parses a JSON Web Key Set document, keeping the keys that are objects with a `kty`. */
export function parseJwks(text: string): ParsedKeys {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { keys: NO_KEYS, error: `jwks is not valid JSON: ${(e as Error).message}`, dropped: 0 };
  }
  const list = doc !== null && typeof doc === 'object' ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(list)) return { keys: NO_KEYS, error: 'jwks must be an object with a "keys" list', dropped: 0 };
  const keys = list.filter((k): k is Jwk => k !== null && typeof k === 'object' && !Array.isArray(k) && typeof (k as { kty?: unknown }).kty === 'string');
  for (const k of keys) deepFreeze(k);
  return {
    keys: Object.freeze(keys),
    dropped: list.length - keys.length,
    ...(keys.length === 0 ? { error: 'jwks lists no usable key' } : {}),
  };
}

const versions = new WeakMap<readonly Jwk[], string>();

function entryVersion(entry: JwksEntry | undefined): string {
  if (!entry?.keys) return entry?.error ? 'failed' : 'pending';
  if (entry.version !== undefined) return entry.version;
  let v = versions.get(entry.keys);
  if (v === undefined) versions.set(entry.keys, (v = hashText(stableJson(entry.keys))));
  return v;
}

/** Every `jwksUri` the configuration names (inline `jwks` wins over a `jwksUri` beside it), sorted. */
export function jwksSources(config: ConfigSet): JwksSource[] {
  const byUri = new Map<string, number>();
  for (const r of config.ofKind('RequestAuthentication')) {
    for (const rule of r.body.spec.jwtRules ?? []) {
      if (rule.jwksUri === undefined || rule.jwks !== undefined) continue;
      const t = (rule.timeout !== undefined ? parseDuration(rule.timeout) : undefined) ?? DEFAULT_JWKS_TIMEOUT_MS;
      byUri.set(rule.jwksUri, Math.max(byUri.get(rule.jwksUri) ?? 0, t));
    }
  }
  return [...byUri.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([uri, timeoutMs]) => ({ uri, timeoutMs }));
}

/** A catalogue diagnostic (src/api/messages.ts) about one field of `res`. */
function message(name: 'JwksUnavailable' | 'JwksUnusable' | 'JwksSourceMissing', args: Readonly<Record<string, string>>, res: RequestAuthnResource, path: readonly (string | number)[]): Diagnostic {
  return diagnostic(name, args, { resource: res.ref, position: res.locator.locate(path), field: formatPath(path) });
}

/**
 * What is wrong with the key sets of the configuration, once per rule (not
 * per workload): a `jwksUri` with no keys fetched, an inline `jwks` that
 * lists no usable key or that drops entries, a rule with neither (Istio
 * would use OpenID Connect discovery, which Trellis does not do).
 */
export function requestAuthnDiagnostics(config: ConfigSet, jwks: ReadonlyMap<string, JwksEntry>): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const res of config.ofKind('RequestAuthentication')) {
    (res.body.spec.jwtRules ?? []).forEach((rule, i) => {
      const issuer = rule.issuer ?? '(any)';
      if (rule.jwks !== undefined) {
        const parsed = inlineKeys(res, i, rule.jwks);
        const detail = parsed.error ?? (parsed.dropped > 0 ? `${parsed.dropped} entries of "keys" are not JSON Web Keys (an object with "kty") and are ignored` : undefined);
        if (detail !== undefined) out.push(message('JwksUnusable', { issuer, detail }, res, ['spec', 'jwtRules', i, 'jwks']));
      } else if (rule.jwksUri !== undefined) {
        const entry = jwks.get(rule.jwksUri);
        if (!entry?.keys) {
          out.push(message('JwksUnavailable', { issuer, uri: rule.jwksUri, detail: entry?.error ?? 'not fetched yet' }, res, ['spec', 'jwtRules', i, 'jwksUri']));
        }
      } else {
        out.push(message('JwksSourceMissing', { issuer }, res, ['spec', 'jwtRules', i]));
      }
    });
  }
  return out;
}
