/**
 * ServiceEntry checks:
 *
 * - addresses (Istio's `serviceentry.Analyzer`, TRL0134): a port that is TCP,
 *   or has no protocol, in a ServiceEntry without `addresses`. TCP carries
 *   no host name, so a proxy that captures connections by address cannot
 *   route it; Trellis's proxies route TCP by `host:port` (a CONNECT tunnel, a
 *   per-upstream port) or by the service's addresses (policy/l4-routes.ts).
 *   Not reported, as in Istio, when the ServiceEntry's status lists
 *   allocated addresses, or MeshConfig `defaultConfig.proxyMetadata` turns
 *   on DNS capture with address auto-allocation.
 * - conflicting protocols (Istio's
 *   `serviceentry.ConflictingServiceEntryProtocolAnalyzer`, TRL0177): two
 *   ServiceEntries whose exportTo overlap give one host and port different
 *   protocols. The registry keeps one definition per host (TRL1101), so one
 *   of them is silently not in force.
 */
import type { ResourceOf } from '../../api/config-set.js';
import { parseProtocol } from '../../registry/protocol.js';
import { serviceEntryHost } from '../../registry/sources/istio.js';
import { exportTo } from '../../registry/sources/make.js';
import type { Analyzer, AnalysisContext } from '../analyzer.js';

type SeResource = ResourceOf<'ServiceEntry'>;

/** Whether MeshConfig asks the proxies to capture DNS and allocate addresses to ServiceEntries (Istio's proxyMetadata switches). */
function autoAllocates(ctx: AnalysisContext): boolean {
  return ctx.ofKind('MeshConfig').some((m) => {
    const md = m.body.spec.defaultConfig?.proxyMetadata ?? {};
    if (md.ISTIO_META_DNS_CAPTURE !== 'true') return false;
    return md.ISTIO_META_DNS_AUTO_ALLOCATE === 'true' || md.PILOT_ENABLE_IP_AUTOALLOCATE === 'true';
  });
}

/** Whether the ServiceEntry's status lists addresses allocated by a controller. */
function allocated(r: SeResource): boolean {
  const status = r.body.status as { addresses?: unknown } | null | undefined;
  return !!status && typeof status === 'object' && Array.isArray(status.addresses) && status.addresses.length > 0;
}

export const serviceEntryAddressesAnalyzer: Analyzer = {
  name: 'serviceentry.addresses',
  description: 'ServiceEntry ports that are TCP (or have no protocol) in a ServiceEntry without addresses, which address-based capture cannot route.',
  reads: ['ServiceEntry', 'MeshConfig'],
  messages: ['ServiceEntryAddressesRequired'],
  istio: ['serviceentry.Analyzer'],
  run(ctx) {
    if (autoAllocates(ctx)) return;
    for (const r of ctx.ofKind('ServiceEntry')) {
      const spec = r.body.spec;
      if ((spec.addresses?.length ?? 0) > 0 || allocated(r)) continue;
      const hosts = spec.hosts.join(', ');
      (spec.ports ?? []).forEach((p, i) => {
        const proto = p.protocol ?? '';
        if (proto !== '' && proto.toUpperCase() !== 'TCP') return;
        const protocol = proto === '' ? 'has no protocol (Istio may treat it as TCP; Trellis carries it as HTTP/1.1)' : `is ${proto}`;
        ctx.report('ServiceEntryAddressesRequired', { port: p.number, host: hosts, protocol }, {
          resource: r, field: proto === '' ? ['spec', 'ports', i] : ['spec', 'ports', i, 'protocol'],
        });
      });
    }
  },
};

interface PortUse {
  readonly r: SeResource;
  readonly index: number;
  /** Normalized: Trellis's protocol name, `UNSPECIFIED` when unset. */
  readonly protocol: string;
  /** As written (`''` when unset). */
  readonly written: string;
  readonly scope: readonly string[];
}

/** The namespaces two exportTo scopes share: `*` for everywhere, `[]` for none. */
function shared(a: readonly string[], b: readonly string[]): string[] {
  if (a.length === 0 || b.length === 0) return [];
  if (a.includes('*')) return [...b];
  if (b.includes('*')) return [...a];
  return a.filter((n) => b.includes(n));
}

const shown = (u: PortUse): string => u.written || 'without a protocol';

export const conflictingProtocolsAnalyzer: Analyzer = {
  name: 'serviceentry.conflicting-protocols',
  description: 'Two ServiceEntries visible in the same namespace that give one host and port different protocols.',
  reads: ['ServiceEntry'],
  messages: ['ConflictingServiceEntryProtocol'],
  istio: ['serviceentry.ConflictingServiceEntryProtocolAnalyzer'],
  run(ctx) {
    const uses = new Map<string, PortUse[]>();
    for (const r of ctx.ofKind('ServiceEntry')) {
      const spec = r.body.spec;
      const scope = exportTo(spec.exportTo, r.metadata.annotations['networking.istio.io/exportTo'], r.metadata.namespace);
      for (const h of new Set(spec.hosts.map(serviceEntryHost))) {
        (spec.ports ?? []).forEach((p, index) => {
          const written = p.protocol ?? '';
          const protocol = written === '' ? 'UNSPECIFIED' : parseProtocol(written) ?? written.toUpperCase();
          const key = `${h}:${p.number}`;
          let list = uses.get(key);
          if (!list) uses.set(key, (list = []));
          list.push({ r, index, protocol, written, scope });
        });
      }
    }
    const reported = new Set<string>();
    for (const [key, list] of uses) {
      const [host, port] = [key.slice(0, key.lastIndexOf(':')), key.slice(key.lastIndexOf(':') + 1)];
      for (const u of list) {
        if (reported.has(u.r.key)) continue;
        const others = list.filter((o) => o.r.key !== u.r.key && o.protocol !== u.protocol && shared(u.scope, o.scope).length > 0);
        if (others.length === 0) continue;
        reported.add(u.r.key);
        const where = [...new Set(others.flatMap((o) => shared(u.scope, o.scope)))];
        const kept = ctx.registry.service(host)?.source;
        ctx.report('ConflictingServiceEntryProtocol', {
          host, port,
          protocol: shown(u),
          otherProtocol: [...new Set(others.map(shown))].join(', '),
          other: others.map((o) => o.r.ref).join(', '),
          where: where.includes('*') ? 'every namespace' : `namespaces ${where.sort().join(', ')}`,
          effect: kept ? `Trellis keeps only one definition of a host, from ${kept}, and ignores the others` : 'Trellis keeps only one definition of a host and ignores the others',
        }, { resource: u.r, field: ['spec', 'ports', u.index, ...(u.written === '' ? [] : ['protocol'])] });
      }
    }
  },
};
