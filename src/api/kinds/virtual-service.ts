/** `networking.istio.io` VirtualService: how requests to a host are routed. */
import { atMostOne, duration, exactlyOne, labels, percentage, port, presenceOrStringMatch, re2, stringMatch, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';
import { exportToIssues, isIpAddress, wildcardDomainError } from './names.js';

const percent = z.strictObject({ value: percentage() });

const headerOps = z.strictObject({
  set: z.record(z.string(), z.string()).optional(),
  add: z.record(z.string(), z.string()).optional(),
  remove: z.array(z.string()).optional(),
});
export const headers = z.strictObject({ request: headerOps.optional(), response: headerOps.optional() });

export const destination = z.strictObject({
  host: z.string().min(1, { message: 'destination.host is required' }),
  subset: z.string().optional(),
  port: z.strictObject({ number: port().optional() }).optional(),
});

const matchRequest = z.strictObject({
  name: z.string().optional(),
  uri: stringMatch.optional(),
  scheme: stringMatch.optional(),
  method: stringMatch.optional(),
  authority: stringMatch.optional(),
  headers: z.record(z.string(), presenceOrStringMatch).optional(),
  port: port().optional(),
  sourceLabels: labels.optional(),
  gateways: z.array(z.string()).optional(),
  queryParams: z.record(z.string(), presenceOrStringMatch).optional(),
  ignoreUriCase: z.boolean().optional(),
  withoutHeaders: z.record(z.string(), presenceOrStringMatch).optional(),
  sourceNamespace: z.string().optional(),
  statPrefix: z.string().optional(),
}).superRefine((m, ctx) => {
  for (const field of ['headers', 'withoutHeaders'] as const) {
    for (const name of Object.keys(m[field] ?? {})) {
      // A JWT claim (`@request.auth.claims.userId`) keeps the claim's own case, as Istio accepts it.
      if (name !== name.toLowerCase() && !/^@request\.auth\.claims[.[]/i.test(name)) ctx.addIssue({ code: 'custom', path: [field, name], message: `header name "${name}" must be lowercase` });
    }
  }
});

const routeDestination = z.strictObject({
  destination,
  weight: z.number().int().min(0, { message: 'weight must not be negative' }).optional(),
  headers: headers.optional(),
});

const redirect = z.strictObject({
  uri: z.string().optional(),
  authority: z.string().optional(),
  port: port().optional(),
  derivePort: z.enum(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']).optional(),
  scheme: z.string().optional(),
  redirectCode: z.number().int().optional(),
}).superRefine((r, ctx) => {
  atMostOne(r, ['port', 'derivePort'], ctx, 'a redirect');
  if (r.redirectCode !== undefined && ![301, 302, 303, 307, 308].includes(r.redirectCode)) {
    ctx.addIssue({ code: 'custom', path: ['redirectCode'], message: `redirectCode ${r.redirectCode} is not a redirect status; use 301, 302, 303, 307 or 308` });
  }
});

const directResponse = z.strictObject({
  status: z.number().int().refine((s) => s >= 200 && s <= 599, { message: 'status must be between 200 and 599' }),
  body: z.strictObject({ string: z.string().optional(), bytes: z.string().optional() })
    .superRefine((b, ctx) => atMostOne(b, ['string', 'bytes'], ctx, 'a direct response body'))
    .optional(),
});

const rewrite = z.strictObject({
  uri: z.string().optional(),
  authority: z.string().optional(),
  uriRegexRewrite: z.strictObject({ match: re2(), rewrite: z.string() }).optional(),
}).superRefine((r, ctx) => atMostOne(r, ['uri', 'uriRegexRewrite'], ctx, 'a rewrite'));

/** Envoy's retry conditions Istio accepts in `retryOn` (besides HTTP status codes). */
const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

const retryOn = z.string().superRefine((v, ctx) => {
  for (const raw of v.split(',')) {
    const c = raw.trim();
    if (RETRY_ON.has(c) || (/^\d{3}$/.test(c) && Number(c) >= 100 && Number(c) <= 599)) continue;
    ctx.addIssue({ code: 'custom', message: `"${c}" is not a retry condition: use Envoy's (${[...RETRY_ON].join(', ')}) or an HTTP status code` });
  }
});

const retries = z.strictObject({
  attempts: z.number().int().min(0, { message: 'attempts must not be negative' }).optional(),
  perTryTimeout: duration({ min: 1 }).optional(),
  retryOn: retryOn.optional(),
  retryRemoteLocalities: z.boolean().optional(),
  retryIgnorePreviousHosts: z.boolean().optional(),
  backoff: duration({ min: 1 }).optional(),
});

const fault = z.strictObject({
  delay: z.strictObject({
    fixedDelay: duration({ min: 1 }).optional(),
    exponentialDelay: duration({ min: 1 }).optional(),
    percentage: percent.optional(),
    percent: z.number().int().min(0).max(100).optional(),
  }).superRefine((d, ctx) => exactlyOne(d, ['fixedDelay', 'exponentialDelay'], ctx, 'a delay fault')).optional(),
  abort: z.strictObject({
    httpStatus: z.number().int().refine((s) => s >= 200 && s <= 599, { message: 'httpStatus must be between 200 and 599' }).optional(),
    grpcStatus: z.string().optional(),
    http2Error: z.string().optional(),
    percentage: percent.optional(),
  }).superRefine((a, ctx) => exactlyOne(a, ['httpStatus', 'grpcStatus', 'http2Error'], ctx, 'an abort fault')).optional(),
});

const cors = z.strictObject({
  allowOrigins: z.array(stringMatch).optional(),
  allowOrigin: z.array(z.string()).optional(),
  allowMethods: z.array(z.string()).optional(),
  allowHeaders: z.array(z.string()).optional(),
  exposeHeaders: z.array(z.string()).optional(),
  maxAge: duration().optional(),
  allowCredentials: z.boolean().optional(),
  unmatchedPreflights: z.enum(['UNSPECIFIED', 'FORWARD', 'IGNORE']).optional(),
});

const httpRoute = z.strictObject({
  name: z.string().optional(),
  match: z.array(matchRequest).optional(),
  route: z.array(routeDestination).optional(),
  redirect: redirect.optional(),
  directResponse: directResponse.optional(),
  delegate: z.strictObject({ name: z.string(), namespace: z.string().optional() }).optional(),
  rewrite: rewrite.optional(),
  timeout: duration().optional(),
  retries: retries.optional(),
  fault: fault.optional(),
  mirror: destination.optional(),
  mirrors: z.array(z.strictObject({ destination, percentage: percent.optional() })).optional(),
  mirrorPercentage: percent.optional(),
  corsPolicy: cors.optional(),
  headers: headers.optional(),
}).superRefine((r, ctx) => {
  const actions = (['route', 'redirect', 'directResponse', 'delegate'] as const).filter((k) => r[k] !== undefined && !(k === 'route' && r.route?.length === 0));
  if (actions.length === 0) ctx.addIssue({ code: 'custom', path: [], message: 'an HTTP route needs one of route, redirect, directResponse or delegate' });
  if (actions.length > 1 && !(actions.length === 2 && actions.includes('redirect') && actions.includes('directResponse'))) {
    ctx.addIssue({ code: 'custom', path: [actions[1]!], message: `an HTTP route may set only one of route, redirect, directResponse, delegate; found ${actions.join(' and ')}` });
  }
  if (r.rewrite && r.redirect) ctx.addIssue({ code: 'custom', path: ['rewrite'], message: 'rewrite may not be combined with redirect' });
  if (r.mirror && r.mirrors) ctx.addIssue({ code: 'custom', path: ['mirrors'], message: 'mirror and mirrors may not be set together' });
  if (r.route && r.route.length > 1 && r.route.some((d) => d.weight === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['route'], message: 'when a route has several destinations, each needs a weight' });
  }
});

const l4Destination = z.strictObject({ destination, weight: z.number().int().min(0).optional() });

/** The match fields TLS and TCP routes share (Istio's `L4MatchAttributes`, less `sourceSubnet`). */
const l4MatchFields = {
  destinationSubnets: z.array(z.string()).optional(),
  port: port().optional(),
  sourceLabels: labels.optional(),
  gateways: z.array(z.string()).optional(),
  sourceNamespace: z.string().optional(),
};

const tlsRoute = z.strictObject({
  match: z.array(z.strictObject({
    sniHosts: z.array(z.string()).min(1, { message: 'sniHosts must name at least one host' }),
    ...l4MatchFields,
  })).min(1, { message: 'a TLS route needs at least one match' }),
  route: z.array(l4Destination).min(1, { message: 'a TLS route needs at least one destination' }),
});

const tcpRoute = z.strictObject({
  match: z.array(z.strictObject({
    ...l4MatchFields,
    sourceSubnet: z.string().optional(),
  })).optional(),
  route: z.array(l4Destination).min(1, { message: 'a TCP route needs at least one destination' }),
});

export const virtualServiceSpec = z.strictObject({
  hosts: z.array(z.string().min(1, { message: 'a host must not be empty' })).optional(),
  gateways: z.array(z.string()).optional(),
  http: z.array(httpRoute).optional(),
  tls: z.array(tlsRoute).optional(),
  tcp: z.array(tcpRoute).optional(),
  exportTo: z.array(z.string()).optional(),
}).superRefine((s, ctx) => {
  if (!s.http?.length && !s.tls?.length && !s.tcp?.length) {
    ctx.addIssue({ code: 'custom', path: [], message: 'a VirtualService needs at least one http, tls or tcp route' });
  }
  const mesh = !s.gateways?.length || s.gateways.includes('mesh');
  s.hosts?.forEach((h, i) => {
    if (h === '*' && mesh) ctx.addIssue({ code: 'custom', path: ['hosts', i], message: 'the wildcard host "*" is not allowed for a VirtualService bound to the mesh; name the hosts or bind it to a gateway' });
    else if (h !== '*' && !isIpAddress(h)) {
      const err = wildcardDomainError(h);
      if (err) ctx.addIssue({ code: 'custom', path: ['hosts', i], message: err });
    }
  });
  exportToIssues(s.exportTo, ctx, ['exportTo']);
});

export type VirtualServiceSpec = DeepReadonly<z.infer<typeof virtualServiceSpec>>;
export type HTTPRoute = VirtualServiceSpec extends { http?: readonly (infer R)[] } ? R : never;
export type HTTPMatchRequest = NonNullable<HTTPRoute['match']>[number];
export type StringMatch = DeepReadonly<z.infer<typeof stringMatch>>;
export type Destination = DeepReadonly<z.infer<typeof destination>>;
export type Headers = DeepReadonly<z.infer<typeof headers>>;

export const VirtualService = defineKind({
  kind: 'VirtualService',
  group: 'networking.istio.io',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  namespaced: true,
  body: z.strictObject({ spec: virtualServiceSpec, status: z.unknown().optional() }),
  notEnforced: [
    'spec.http[*].delegate',
    'spec.tcp[*].match[*].sourceSubnet',
    'spec.http[*].match[*].statPrefix',
  ],
  docs: 'Routing rules for one or more hosts: matches, weighted destinations, rewrites, redirects, direct responses, header edits, timeouts, retries, fault injection, mirroring, CORS.',
});
