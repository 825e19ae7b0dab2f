/**
 * Locality-aware load balancing, as Istio programs Envoy with a
 * DestinationRule's `localityLbSetting`: the proxy's own locality
 * (snapshot `node.locality`) splits a cluster's endpoints into priority
 * levels, best first; priority-load.ts then sends traffic to the best level
 * that has healthy hosts.
 *
 * - failover (the default): same region+zone+subzone, then same zone, same
 *   region, then other regions; a `failover` rule `{from: <proxy region>,
 *   to: R}` puts region R before the remaining ones.
 * - `failoverPriority` (a label list): an endpoint ranks by how many of the
 *   leading labels it shares with the proxy (`key=value` compares with the
 *   value instead); the topology labels fall back to the locality fields.
 *   Combined with `failover` when both are set, as Istio does.
 * - `distribute` (`from` glob → `{to glob: weight}`): one level, localities
 *   weighted instead of ranked; localities no `to` names get nothing.
 *
 * Plain functions of plain objects, tested without sockets.
 */
import type { LoadBalancer, Locality } from '../protocol/snapshot.js';

/** What locality ranking reads of an endpoint (or of the proxy, weight aside). */
export interface Placed {
  readonly locality: Locality;
  readonly labels: Readonly<Record<string, string>>;
  readonly weight: number;
}

export type LocalitySetting = LoadBalancer['locality'];

/** The endpoints of one locality within a level, with the weight `distribute` gave it (1 otherwise). */
export interface LocalityGroup<T> {
  readonly locality: string;
  readonly members: readonly T[];
  readonly weight: number;
}

/** A priority level: its localities (one group when no weights apply). */
export type PriorityLevel<T> = readonly LocalityGroup<T>[];

export function localityKey(l: Locality): string {
  return `${l.region}/${l.zone}/${l.subzone}`;
}

/** Istio's locality match: `region[/zone[/subzone]]`, `*` for any part; missing parts match anything. */
export function localityMatch(l: Locality, rule: string): boolean {
  const [region = '', zone = '', subzone = ''] = rule.split('/');
  return (region === '*' || l.region === region)
    && (zone === '*' || zone === '' || l.zone === zone)
    && (subzone === '*' || subzone === '' || l.subzone === subzone);
}

/** 0 same region, zone and subzone; 1 same zone; 2 same region; 3 elsewhere. */
export function lbPriority(proxy: Locality, ep: Locality): number {
  if (proxy.region !== ep.region) return 3;
  if (proxy.zone !== ep.zone) return 2;
  return proxy.subzone === ep.subzone ? 0 : 1;
}

const TOPOLOGY: Readonly<Record<string, keyof Locality>> = {
  'topology.kubernetes.io/region': 'region',
  'topology.kubernetes.io/zone': 'zone',
  'topology.istio.io/subzone': 'subzone',
};

function labelOf(p: Pick<Placed, 'labels' | 'locality'>, key: string): string | undefined {
  const v = p.labels[key];
  if (v !== undefined) return v;
  const f = TOPOLOGY[key];
  return f && p.locality[f] !== '' ? p.locality[f] : undefined;
}

/** Istio's failoverPriority rank: 0 when the endpoint matches on every label, else the count of labels from the first mismatch on. */
export function labelPriority(proxy: Pick<Placed, 'labels' | 'locality'>, ep: Pick<Placed, 'labels' | 'locality'>, keys: readonly string[]): number {
  for (let j = 0; j < keys.length; j++) {
    const k = keys[j]!;
    const eq = k.indexOf('=');
    const want = eq > 0 ? k.slice(eq + 1) : labelOf(proxy, k);
    if (labelOf(ep, eq > 0 ? k.slice(0, eq) : k) !== want) return keys.length - j;
  }
  return 0;
}

function byLocality<T extends Placed>(members: readonly T[]): { key: string; locality: Locality; members: T[]; weight: number }[] {
  const groups = new Map<string, { key: string; locality: Locality; members: T[]; weight: number }>();
  for (const m of members) {
    const key = localityKey(m.locality);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { key, locality: m.locality, members: [], weight: 0 }));
    g.members.push(m);
    g.weight += m.weight > 0 ? m.weight : 1;
  }
  return [...groups.values()];
}

const one = <T>(members: readonly T[]): PriorityLevel<T>[] => [[{ locality: '*', members, weight: 1 }]];

/**
 * A cluster's endpoints as priority levels for a proxy (best first), per
 * its locality setting. Disabled: one level of everything.
 */
export function priorityLevels<T extends Placed>(members: readonly T[], proxy: Pick<Placed, 'labels' | 'locality'>, s: LocalitySetting): PriorityLevel<T>[] {
  if (!s.enabled || members.length === 0) return one(members);
  if (s.distribute.length > 0) {
    const rule = s.distribute.find((d) => localityMatch(proxy.locality, d.from));
    if (!rule) return one(members);
    const groups = byLocality(members);
    const left = new Set(groups);
    const out: LocalityGroup<T>[] = [];
    for (const [to, weight] of Object.entries(rule.to)) {
      const hit = [...left].filter((g) => localityMatch(g.locality, to));
      const sum = hit.reduce((n, g) => n + g.weight, 0);
      for (const g of hit) {
        left.delete(g);
        const w = Math.ceil((g.weight * weight) / sum);
        if (w > 0) out.push({ locality: g.key, members: g.members, weight: w });
      }
    }
    return out.length ? [out] : [];
  }
  const rank = new Map<T, number>();
  const fp = s.failoverPriority;
  const rule = s.failover.find((f) => f.from === proxy.locality.region);
  for (const m of members) {
    let p = 0;
    if (fp.length === 0 || s.failover.length > 0) {
      p = lbPriority(proxy.locality, m.locality);
      if (p === 3 && rule && m.locality.region !== rule.to) p = 4;
    }
    if (fp.length > 0) p += labelPriority(proxy, m, fp) * 5;
    rank.set(m, p);
  }
  const ranks = [...new Set(rank.values())].sort((a, b) => a - b);
  return ranks.map((r) => [{ locality: `priority ${r}`, members: members.filter((m) => rank.get(m) === r), weight: 1 }]);
}
