/**
 * `virtualservice.unreachable-rules` (the VirtualService part of Istio's
 * schema.ValidationAnalyzer): in each of a VirtualService's http, tcp and tls
 * rule lists, a rule after a rule without match is never used (TRL0130); a
 * match that an earlier match takes entirely never takes effect (TRL0131),
 * and a rule all of whose matches earlier rules take is never used
 * (TRL0130). "Takes entirely" is `vs-match-cover.ts`: structural on the
 * compiled matches, with the data plane's string matchers, so an earlier
 * `prefix: /api` takes a later `prefix: /api/v1` and `exact: /api/x`.
 */
import { compileHttpRoutes } from '../../compile/routes.js';
import type { RouteMatch } from '../../protocol/snapshot.js';
import type { AnalysisContext, Analyzer } from '../analyzer.js';
import { gatewayKey, indexOf, type FieldPath, type VsResource } from './vs-common.js';
import { httpMatchCovers, l4MatchCovers, type L4MatchBlock } from './vs-match-cover.js';

interface Rule<M> {
  /** `http rule #0`, `http rule "reviews-v2"`. */
  readonly label: string;
  readonly path: FieldPath;
  readonly matches: readonly { readonly match: M; readonly label: string }[];
}

interface Seen<M> {
  readonly match: M;
  readonly label: string;
}

function ruleLabel(protocol: string, i: number, name?: string): string {
  return name ? `${protocol} rule "${name}"` : `${protocol} rule #${i}`;
}

function matchLabel(j: number, name?: string): string {
  return name ? `match "${name}"` : `match #${j}`;
}

/** Reports the unreachable rules and ineffective matches of one ordered rule list. */
function analyzeRules<M>(ctx: AnalysisContext, vs: VsResource, rules: readonly Rule<M>[], covers: (a: M, b: M) => boolean): void {
  const earlier: Seen<M>[] = [];
  let catchAll: string | undefined;
  for (const rule of rules) {
    if (catchAll !== undefined) {
      ctx.report('VirtualServiceUnreachableRule', {
        rule: rule.label,
        reason: `${catchAll} before it has no match and takes every request; remove this rule, or give the earlier one a match`,
      }, { resource: vs, field: rule.path });
      continue;
    }
    if (rule.matches.length === 0) {
      catchAll = rule.label;
      continue;
    }
    const own: Seen<M>[] = [];
    let takenEarlier = 0;
    rule.matches.forEach((m, j) => {
      const prior = earlier.find((e) => covers(e.match, m.match));
      const by = prior ?? own.find((o) => covers(o.match, m.match));
      if (prior) takenEarlier++;
      if (by) {
        ctx.report('VirtualServiceIneffectiveMatch', { match: m.label, rule: rule.label, earlier: by.label }, { resource: vs, field: [...rule.path, 'match', j] });
      }
      own.push({ match: m.match, label: `${m.label} of ${rule.label}` });
    });
    if (takenEarlier === rule.matches.length) {
      ctx.report('VirtualServiceUnreachableRule', {
        rule: rule.label,
        reason: 'earlier rules take every request each of its matches takes; remove it, or move it before them',
      }, { resource: vs, field: rule.path });
    }
    earlier.push(...own);
  }
}

function httpRules(vs: VsResource): Rule<RouteMatch>[] {
  const http = vs.body.spec.http ?? [];
  const compiled = compileHttpRoutes(vs.metadata.name, http, () => '', vs.metadata.namespace);
  return http.map((r, i) => ({
    label: ruleLabel('http', i, r.name),
    path: ['spec', 'http', i],
    matches: compiled[i]!.match.map((m, j) => ({ match: m, label: matchLabel(j, r.match?.[j]?.name) })),
  }));
}

type L4Rule = { readonly match?: readonly (Omit<L4MatchBlock, 'gateways'> & { readonly gateways?: readonly string[] })[] };

function l4Rules(ctx: AnalysisContext, vs: VsResource, protocol: 'tcp' | 'tls', rules: readonly L4Rule[]): Rule<L4MatchBlock>[] {
  const ns = vs.metadata.namespace;
  const index = indexOf(ctx);
  return rules.map((r, i) => ({
    label: ruleLabel(protocol, i),
    path: ['spec', protocol, i],
    matches: (r.match ?? []).map((m, j) => ({
      label: matchLabel(j),
      match: {
        ...m,
        ...(m.gateways ? { gateways: m.gateways.map((g) => gatewayKey(g, ns)) } : {}),
        ...(m.sniHosts ? { sniHosts: m.sniHosts.map((h) => index.resolve(h, ns)) } : {}),
      },
    })),
  }));
}

export const unreachableRulesAnalyzer: Analyzer = {
  name: 'virtualservice.unreachable-rules',
  description: 'No http, tcp or tls rule of a VirtualService is shadowed by earlier rules, and no match repeats one that comes before it.',
  reads: ['VirtualService'],
  messages: ['VirtualServiceUnreachableRule', 'VirtualServiceIneffectiveMatch'],
  istio: ['schema.ValidationAnalyzer.VirtualService'],
  run(ctx) {
    for (const vs of ctx.ofKind('VirtualService')) {
      const spec = vs.body.spec;
      analyzeRules(ctx, vs, httpRules(vs), httpMatchCovers);
      analyzeRules(ctx, vs, l4Rules(ctx, vs, 'tcp', spec.tcp ?? []), l4MatchCovers);
      analyzeRules(ctx, vs, l4Rules(ctx, vs, 'tls', spec.tls ?? []), l4MatchCovers);
    }
  },
};
