/**
 * `trellis.dev/v1alpha1` RateLimitPolicy: how many requests the callers of a
 * service may make. Istio has no such kind; this one is Trellis's own
 * (docs/rate-limits.md).
 *
 *     spec:
 *       targetRef: { kind: Service, name: ledger }
 *       store: { redis: 127.0.0.1:6379, timeout: 50ms, failureMode: Open }
 *       limits:
 *       - name: per-caller                       # each verified caller its own bucket
 *         rate: { requests: 20, per: 1s, burst: 40 }
 *       - name: transfers
 *         match: [{ methods: [POST], paths: [/transfer] }]
 *         callers: { labels: { app: web } }      # a caller group, resolved to identities
 *         by: All                                # the whole group shares one bucket
 *         scope: Global                          # shared by every replica (Redis)
 *         quota: { requests: 1000, per: 1h }
 *
 * A limit is a token bucket (`rate`) or a fixed-window quota (`quota`); every
 * limit whose `match` and `callers` select a request must allow it.
 * `enforce: InboundAndOutbound` has the callers' sidecars apply the limits
 * too, on their outbound side, to shed load before it crosses the network.
 */
import { z, type DeepReadonly } from '../schema.js';
import { parseDuration } from '../duration.js';
import { defineKind } from '../kind.js';
import { isDnsSubdomain, selectorIssues } from './names.js';

const DAY_MS = 86_400_000;

/** A window: an Istio duration (`1s`, `1m`, `1h`) or whole days (`1d`); milliseconds, or undefined when malformed. */
export function parseWindow(text: string): number | undefined {
  const days = /^(\d+)d$/.exec(text);
  return days ? Number(days[1]) * DAY_MS : parseDuration(text);
}

const window = (what: string, minMs: number) => z.string().superRefine((s, ctx) => {
  const ms = parseWindow(s);
  if (ms === undefined) ctx.addIssue({ code: 'custom', message: `"${s}" is not a ${what}: use a number with a unit, such as 1s, 1m, 1h or 1d` });
  else if (ms < minMs) ctx.addIssue({ code: 'custom', message: `${what} must be at least ${minMs}ms, got "${s}"` });
  else if (ms > 366 * DAY_MS) ctx.addIssue({ code: 'custom', message: `${what} must be at most 366d, got "${s}"` });
});

const count = (what: string) => z.number({ error: `${what} must be a number` })
  .refine((n) => Number.isInteger(n), { message: `${what} must be a whole number` })
  .refine((n) => n > 0, { message: `${what} must be greater than 0; to refuse every request use an AuthorizationPolicy` })
  .refine((n) => n <= 1e9, { message: `${what} must be at most 1000000000` });

/** A token bucket: `requests` tokens every `per`, holding at most `burst` (default: `requests`). */
const rate = z.strictObject({
  requests: count('rate.requests'),
  per: window('rate period', 1).optional(),
  burst: count('rate.burst').optional(),
});

/** A fixed window: at most `requests` in each `per` (the windows are aligned on the store's clock). */
const quota = z.strictObject({
  requests: count('quota.requests'),
  per: window('quota window', 1000),
});

const nonEmpty = z.string().refine((s) => s !== '', { message: 'must not be an empty string' });

const match = z.strictObject({
  paths: z.array(nonEmpty).optional(),
  methods: z.array(nonEmpty).optional(),
}).superRefine((m, ctx) => {
  if (!m.paths?.length && !m.methods?.length) ctx.addIssue({ code: 'custom', path: [], message: 'a match needs paths or methods; to match every request, leave out "match"' });
});

const callers = z.strictObject({
  principals: z.array(nonEmpty).optional(),
  namespaces: z.array(nonEmpty).optional(),
  labels: z.record(z.string(), z.string()).optional(),
}).superRefine((c, ctx) => {
  if (c.labels) {
    if (Object.keys(c.labels).length === 0) ctx.addIssue({ code: 'custom', path: ['labels'], message: 'a caller label group needs at least one label' });
    selectorIssues(c.labels, ctx, ['labels']);
  }
  if (!c.principals?.length && !c.namespaces?.length && !c.labels) {
    ctx.addIssue({ code: 'custom', path: [], message: 'callers needs principals, namespaces or labels; to limit every caller, leave out "callers"' });
  }
});

const HEADER = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

const limit = z.strictObject({
  name: z.string().superRefine((s, ctx) => {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(s)) ctx.addIssue({ code: 'custom', message: `limit name "${s}" must be a lowercase DNS label (a-z, 0-9, "-"), as it names the limit in metrics and headers` });
  }),
  match: z.array(match).optional(),
  callers: callers.optional(),
  by: z.enum(['Caller', 'All', 'Header']).optional(),
  header: z.string().optional(),
  scope: z.enum(['Local', 'Global']).optional(),
  rate: rate.optional(),
  quota: quota.optional(),
}).superRefine((l, ctx) => {
  if ((l.rate === undefined) === (l.quota === undefined)) {
    ctx.addIssue({ code: 'custom', path: l.rate ? ['quota'] : [], message: 'a limit needs exactly one of rate (a token bucket) or quota (a fixed window); write two limits for both' });
  }
  if (l.by === 'Header') {
    if (l.header === undefined) ctx.addIssue({ code: 'custom', path: ['header'], message: 'by: Header needs "header", the name of the request header whose values get their own buckets' });
    else if (!HEADER.test(l.header)) ctx.addIssue({ code: 'custom', path: ['header'], message: `"${l.header}" is not a lowercase header name` });
  } else if (l.header !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['header'], message: `"header" is only for by: Header; this limit is by ${l.by ?? 'Caller'}` });
  }
  if (l.match?.length === 0) ctx.addIssue({ code: 'custom', path: ['match'], message: '"match" must not be empty; leave it out to match every request' });
});

const store = z.strictObject({
  redis: z.string().superRefine((s, ctx) => {
    const m = /^(.+):(\d{1,5})$/.exec(s);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535 || !(isDnsSubdomain(m[1]!) || /^[0-9.]+$/.test(m[1]!) || /^\[[0-9a-fA-F:.]+\]$/.test(m[1]!))) {
      ctx.addIssue({ code: 'custom', message: `"${s}" is not host:port of a Redis server (such as 127.0.0.1:6379 or redis.infra:6379)` });
    }
  }),
  timeout: window('store timeout', 1).optional(),
  failureMode: z.enum(['Open', 'Closed']).optional(),
});

export const rateLimitPolicySpec = z.strictObject({
  targetRef: z.strictObject({
    group: z.string().optional(),
    kind: z.literal('Service', { error: 'a RateLimitPolicy targets a Service (kind: Service)' }),
    name: z.string().refine((s) => isDnsSubdomain(s), { message: 'targetRef.name must name a Service in the policy\'s namespace' }),
  }).superRefine((r, ctx) => {
    if (r.group !== undefined && r.group !== '' && r.group !== 'core') ctx.addIssue({ code: 'custom', path: ['group'], message: 'a Service is in the core group: leave out group, or write ""' });
  }),
  enforce: z.enum(['Inbound', 'InboundAndOutbound']).optional(),
  store: store.optional(),
  limits: z.array(limit).min(1, { message: 'a RateLimitPolicy needs at least one limit' }).max(64, { message: 'at most 64 limits' }),
}).superRefine((s, ctx) => {
  const seen = new Map<string, number>();
  s.limits.forEach((l, i) => {
    if (seen.has(l.name)) ctx.addIssue({ code: 'custom', path: ['limits', i, 'name'], message: `limit "${l.name}" is defined twice (first at limits[${seen.get(l.name)}]); names must be unique in a policy` });
    else seen.set(l.name, i);
    if (l.scope === 'Global' && !s.store) ctx.addIssue({ code: 'custom', path: ['limits', i, 'scope'], message: 'a Global limit needs "store" (a Redis server shared by every replica of the service)' });
  });
});

export type RateLimitPolicySpec = DeepReadonly<z.infer<typeof rateLimitPolicySpec>>;
export type RateLimitSpec = RateLimitPolicySpec['limits'][number];

export const RateLimitPolicy = defineKind({
  kind: 'RateLimitPolicy',
  group: 'trellis.dev',
  versions: ['v1alpha1'],
  namespaced: true,
  body: z.strictObject({ spec: rateLimitPolicySpec, status: z.unknown().optional() }),
  docs: 'Rate limits and quotas on the callers of a Service: token buckets and fixed windows, per caller identity, caller group, header value or for all callers, local to each proxy or global (Redis).',
});
