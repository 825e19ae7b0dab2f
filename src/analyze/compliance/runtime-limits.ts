/**
 * compliance.runtime-limits: every HTTP route has a timeout, within the
 * upper latency limit (`runtimeLimits.maxTimeout`) when one is stated, and
 * its retries are bounded: at most `maxRetries` (3 by default), and the
 * tries ((attempts + 1) × perTryTimeout) fit in the route's timeout (or the
 * limit). Routes are compiled with the compiler's own route compiler
 * (src/compile/routes.ts: Istio's defaults, such as two retries when a
 * route says nothing); the default route of a service that no VirtualService
 * covers is found in the callers' snapshots, where the compiler put it.
 */
import { formatDuration, parseDuration } from '../../api/duration.js';
import { compileHttpRoutes } from '../../compile/routes.js';
import type { ForwardAction } from '../../protocol/snapshot.js';
import type { Service } from '../../registry/types.js';
import type { AnalysisContext, Analyzer, Target } from '../analyzer.js';
import { servicesFor } from '../lookup.js';
import { listSome, proxyViews, reportAt, serviceTarget } from './mesh.js';
import { decide, type Decided } from './policy.js';

export const runtimeLimits: Analyzer = {
  name: 'compliance.runtime-limits',
  description: 'Every HTTP route (VirtualService rules, and the default route of services without one) has a timeout within runtimeLimits.maxTimeout, at most runtimeLimits.maxRetries retries (3 by default), and tries that fit in the timeout.',
  reads: ['CompliancePolicy', 'VirtualService', 'Service', 'ServiceEntry'],
  messages: ['RouteWithoutTimeout', 'RouteTimeoutAboveLimit', 'RetriesAboveLimit', 'RetriesExceedTimeout'],
  run(ctx) {
    for (const vs of ctx.ofKind('VirtualService')) {
      const spec = vs.body.spec;
      const ns = vs.metadata.namespace;
      const services = (spec.hosts ?? []).flatMap((h) => servicesFor(ctx, h, ns));
      const d = decide(ctx, 'runtimeLimits', ns, services);
      if (!d.settings.enabled) continue;
      const http = spec.http ?? [];
      compileHttpRoutes(vs.metadata.name, http, () => '', ns).forEach((route, i) => {
        if (route.action.kind !== 'forward') return;
        const r = http[i]!;
        const label = `route ${r.name !== undefined ? `"${r.name}" ` : ''}(http[${i}])`;
        const at = (...field: (string | number)[]): Target => ({ resource: vs, field: ['spec', 'http', i, ...field] });
        checkRoute(ctx, d, label, route.action, {
          timeout: r.timeout !== undefined ? at('timeout') : at(),
          attempts: r.retries?.attempts !== undefined ? at('retries', 'attempts') : at(...(r.retries ? ['retries'] : [])),
          perTry: at('retries', 'perTryTimeout'),
          implicitRetries: r.retries?.attempts === undefined,
          timeoutOff: r.timeout !== undefined,
          fix: `set http[${i}].timeout${d.settings.maxTimeout ? ` (at most ${d.settings.maxTimeout})` : ''}`,
        });
      });
    }
    defaultRoutes(ctx);
  },
};

interface Places {
  readonly timeout: Target | undefined;
  readonly attempts: Target | undefined;
  readonly perTry: Target | undefined;
  readonly implicitRetries: boolean;
  /** The route writes a timeout, so a 0 means it was turned off. */
  readonly timeoutOff: boolean;
  readonly fix: string;
}

function checkRoute(ctx: AnalysisContext, d: Decided<'runtimeLimits'>, route: string, a: ForwardAction, at: Places): void {
  const { requireTimeout, maxRetries } = d.settings;
  const limitMs = d.settings.maxTimeout !== undefined ? parseDuration(d.settings.maxTimeout) : undefined;
  const tries = a.retry.attempts + 1;
  const triesMs = a.retry.perTryTimeoutMs > 0 ? tries * a.retry.perTryTimeoutMs : undefined;
  if (a.timeoutMs === 0 && requireTimeout) {
    const bound = at.timeoutOff ? ' (timeout 0s turns it off)' : triesMs !== undefined ? ` (only its per-try timeouts stop it, after ${formatDuration(triesMs)})` : '';
    reportAt(ctx, 'RouteWithoutTimeout', { route, bound, policy: d.by, fix: at.fix }, at.timeout);
  } else if (limitMs !== undefined && a.timeoutMs > limitMs) {
    reportAt(ctx, 'RouteTimeoutAboveLimit', { route, timeout: formatDuration(a.timeoutMs), limit: d.settings.maxTimeout!, policy: d.by }, at.timeout);
  }
  if (a.retry.attempts > maxRetries) {
    reportAt(ctx, 'RetriesAboveLimit', { route, attempts: a.retry.attempts, implicit: at.implicitRetries ? ' (it sets no retries.attempts: Istio\'s default)' : '', max: maxRetries, policy: d.by }, at.attempts);
  }
  const cap = a.timeoutMs > 0 ? { ms: a.timeoutMs, name: 'timeout' } : limitMs !== undefined ? { ms: limitMs, name: 'upper latency limit' } : undefined;
  if (triesMs !== undefined && a.retry.attempts > 0 && cap && triesMs > cap.ms) {
    reportAt(ctx, 'RetriesExceedTimeout', {
      route, tries, perTry: formatDuration(a.retry.perTryTimeoutMs), total: formatDuration(triesMs), limitName: cap.name, limit: formatDuration(cap.ms),
    }, at.perTry);
  }
}

/** The default routes of services no VirtualService covers for some callers, as the callers' snapshots have them. */
function defaultRoutes(ctx: AnalysisContext): void {
  const found = new Map<string, { service: Service; callers: Set<string>; action: ForwardAction }>();
  for (const v of proxyViews(ctx)) {
    for (const table of v.snapshot.outbound.http) {
      for (const vh of table.virtualHosts) {
        if (vh.source !== undefined) continue;
        const route = vh.routes.find((r) => r.name === 'default');
        if (!route || route.action.kind !== 'forward') continue;
        const host = vh.name.slice(0, vh.name.lastIndexOf(':'));
        const service = ctx.registry.service(host);
        if (!service) continue;
        let f = found.get(host);
        if (!f) found.set(host, (f = { service, callers: new Set(), action: route.action }));
        f.callers.add(v.workload.namespace);
      }
    }
  }
  for (const { service: s, callers, action } of found.values()) {
    const d = decide(ctx, 'runtimeLimits', s.namespace, [s]);
    if (!d.settings.enabled) continue;
    const at = serviceTarget(ctx, s);
    const ns = [...callers];
    checkRoute(ctx, d, `the default route of service ${s.name}.${s.namespace} (no VirtualService applies to callers in namespace${ns.length > 1 ? 's' : ''} ${listSome(ns)})`, action, {
      timeout: at, attempts: at, perTry: at, implicitRetries: true, timeoutOff: false,
      fix: `add a VirtualService for ${s.hostname} whose http routes set timeout${d.settings.maxTimeout ? ` (at most ${d.settings.maxTimeout})` : ''}`,
    });
  }
}
