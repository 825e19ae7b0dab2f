/**
 * PeerAuthentication / DestinationRule TLS contradictions: a caller's TLS
 * mode to a service port that the PeerAuthentication of the workloads behind
 * it refuses, so every call fails.
 *
 * The caller's mode is the compiler's: `buildCluster` over the
 * DestinationRule `drFor` picks (top level, port level, subset, port level of
 * the subset), or the default without one (auto mTLS: ISTIO_MUTUAL inside the
 * mesh; plaintext when MeshConfig enableAutoMtls is off or the service is
 * MESH_EXTERNAL). The server's mode is `peerAuthnMode` per endpoint and
 * target port. What the proxies then do (src/proxy/inbound-listener.ts):
 *
 * - STRICT refuses plaintext and TLS without a mesh certificate: callers in
 *   DISABLE, SIMPLE or MUTUAL fail (TRL1440);
 * - DISABLE refuses any TLS: callers in ISTIO_MUTUAL fail (TRL1441). Auto
 *   mTLS sends plaintext when every endpoint of the cluster is DISABLE
 *   (allPeersPlaintext), so the default fails only where a service mixes
 *   DISABLE endpoints with others.
 *
 * An explicit mode is reported on the DestinationRule field that sets it; the
 * default is reported on the PeerAuthentication field that refuses it. A
 * DestinationRule no workload of the registry would use is not considered.
 */
import { formatPath } from '../../api/diagnostic.js';
import type { MessageName } from '../../api/messages.js';
import type { Resource } from '../../api/resource.js';
import { buildCluster, effectivePolicy, type DestinationRuleInput, type TrafficPolicyInput } from '../../compile/clusters.js';
import { buildIndex, drFor, type ConfigIndex, type IndexedDr } from '../../compile/config-index.js';
import { allPeersPlaintext, peerAuthnMode, peerAuthnOrigin } from '../../compile/peer-authn.js';
import { selectsEndpoint } from '../../registry/endpoints.js';
import type { Endpoint, Service, Workload } from '../../registry/types.js';
import type { Analyzer, AnalysisContext } from '../analyzer.js';
import { shortList } from './sec-common.js';

type Path = readonly (string | number)[];
type ClientMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';

interface Finding {
  readonly name: MessageName;
  readonly resource: Resource;
  readonly field: Path;
  readonly client: string;
  readonly mode: ClientMode;
  readonly host: string;
  readonly port: number;
  readonly fix: string;
  readonly policies: Set<string>;
  readonly workloads: Set<string>;
}

/** The path of the `tls` block `effectivePolicy` chose (the same object), with `mode` appended. */
function tlsModePath(dr: DestinationRuleInput, tls: object): Path | undefined {
  const inPolicy = (tp: TrafficPolicyInput | undefined, base: Path): Path | undefined => {
    if (!tp) return undefined;
    if (tp.tls === tls) return [...base, 'tls', 'mode'];
    const i = tp.portLevelSettings?.findIndex((p) => p.tls === tls) ?? -1;
    return i >= 0 ? [...base, 'portLevelSettings', i, 'tls', 'mode'] : undefined;
  };
  const top = inPolicy(dr.trafficPolicy, ['spec', 'trafficPolicy']);
  if (top) return top;
  for (const [j, s] of (dr.subsets ?? []).entries()) {
    const p = inPolicy(s.trafficPolicy, ['spec', 'subsets', j, 'trafficPolicy']);
    if (p) return p;
  }
  return undefined;
}

class Check {
  readonly findings = new Map<string, Finding>();
  readonly index: ConfigIndex;

  /** The callers to resolve DestinationRules for: one per namespace unless a DestinationRule has a workloadSelector. */
  readonly clients: readonly Workload[];

  constructor(readonly ctx: AnalysisContext) {
    this.index = buildIndex(ctx.config, new Set(ctx.registry.namespaces()));
    const all = ctx.registry.workloads();
    this.clients = this.index.selectorDrs.length > 0 ? all : [...new Map(all.map((w) => [w.namespace, w])).values()];
  }

  /** The caller's TLS mode for a port (and subset) of `svc`, as the compiler builds the cluster. */
  mode(svc: Service, port: number, dr: DestinationRuleInput | undefined, subset: string | undefined): ClientMode {
    const eps = this.ctx.registry.endpoints(svc.hostname, port);
    const labels = subset !== undefined ? dr?.subsets?.find((s) => s.name === subset)?.labels ?? {} : {};
    const plaintextPeers = allPeersPlaintext(this.ctx.config, this.ctx.mesh.rootNamespace, eps.filter((e) => selectsEndpoint(labels, e)));
    return buildCluster({
      name: 'analyze', host: svc.hostname, port, service: svc, identities: [], plaintextPeers,
      ...(subset !== undefined ? { subset } : {}), ...(dr ? { dr } : {}),
      connectTimeoutMs: this.ctx.mesh.connectTimeoutMs, autoMtls: this.ctx.mesh.enableAutoMtls,
    }).tls.mode;
  }

  /** The DestinationRules of `svc` some registry workload resolves to, and whether some workload uses no tls mode of one for `port`. */
  views(svc: Service, port: number): { used: IndexedDr[]; defaultUsed: boolean } {
    const used = new Set<IndexedDr>();
    let defaultUsed = false;
    for (const w of this.clients) {
      const idr = drFor(this.index, svc.hostname, w.namespace, svc.namespace, w.labels);
      if (idr) used.add(idr);
      if (!idr || effectivePolicy(idr.res.body.spec as DestinationRuleInput, port, undefined).tls?.mode === undefined) defaultUsed = true;
    }
    return { used: [...used], defaultUsed };
  }

  service(svc: Service): void {
    const { config, mesh, registry } = this.ctx;
    for (const sp of svc.ports) {
      const eps = registry.endpoints(svc.hostname, sp.port).filter((e) => e.identity !== '');
      const strictOrOff = eps.filter((e) => peerAuthnMode(config, mesh.rootNamespace, e.namespace, e.labels, e.port) !== 'PERMISSIVE');
      if (strictOrOff.length === 0) continue;
      const { used, defaultUsed } = this.views(svc, sp.port);
      for (const idr of used) {
        const dr = idr.res.body.spec as DestinationRuleInput;
        for (const subset of [undefined, ...new Set((dr.subsets ?? []).map((s) => s.name))]) {
          const tls = effectivePolicy(dr, sp.port, subset).tls;
          if (tls?.mode === undefined) continue; // the default: below
          if (subset !== undefined && tls === effectivePolicy(dr, sp.port, undefined).tls) continue; // inherited: the whole service's finding covers it
          const field = tlsModePath(dr, tls);
          if (!field) continue;
          const labels = subset !== undefined ? dr.subsets?.find((s) => s.name === subset)?.labels ?? {} : {};
          const client = subset !== undefined ? `subset ${subset} of this rule` : 'this rule';
          for (const e of strictOrOff) {
            if (selectsEndpoint(labels, e)) this.endpoint(e, svc, sp.port, this.mode(svc, sp.port, dr, subset), { resource: idr.res, field, client });
          }
        }
      }
      if (!defaultUsed) continue;
      const mode = this.mode(svc, sp.port, undefined, undefined);
      const why = mode === 'ISTIO_MUTUAL' ? 'auto mTLS'
        : svc.location === 'MESH_EXTERNAL' ? 'a MESH_EXTERNAL service gets no auto mTLS, so plaintext' : 'MeshConfig enableAutoMtls is off, so plaintext';
      for (const e of strictOrOff) this.endpoint(e, svc, sp.port, mode, { client: `a caller without a DestinationRule tls mode for the host (${why})` });
    }
  }

  /** Records a contradiction between `mode` and the PeerAuthentication of one endpoint, if there is one. */
  endpoint(e: Endpoint, svc: Service, port: number, mode: ClientMode, by: { resource?: Resource; field?: Path; client: string }): void {
    const origin = peerAuthnOrigin(this.ctx.config, this.ctx.mesh.rootNamespace, e.namespace, e.labels, e.port);
    if (!origin) return;
    const refused = (origin.mode === 'STRICT' && mode !== 'ISTIO_MUTUAL') || (origin.mode === 'DISABLE' && mode === 'ISTIO_MUTUAL');
    if (!refused) return;
    const strict = origin.mode === 'STRICT';
    const onDr = by.resource !== undefined;
    const resource = by.resource ?? origin.resource;
    const field = by.field ?? origin.field;
    const portLevel = origin.field[1] === 'portLevelMtls' ? ` for port ${e.port}` : '';
    const fix = strict
      ? onDr ? 'set the mode to ISTIO_MUTUAL (or leave it out to use auto mTLS), or make that PeerAuthentication PERMISSIVE for the port'
        : 'turn MeshConfig enableAutoMtls on or give the host a DestinationRule with tls mode ISTIO_MUTUAL, or make this policy PERMISSIVE'
      : onDr ? 'set the mode to DISABLE for this port, or make that PeerAuthentication PERMISSIVE'
        : 'auto mTLS in Trellis does not read the server\'s PeerAuthentication: give the host a DestinationRule with tls mode DISABLE for this port, or make this policy PERMISSIVE';
    const key = `${strict}|${resource.key}|${formatPath(field)}|${svc.hostname}|${port}|${mode}|${by.client}`;
    let f = this.findings.get(key);
    if (!f) {
      f = {
        name: strict ? 'ClientTlsRefusedByStrictMtls' : 'MtlsRefusedByDisabledMtls', resource, field, client: by.client, mode,
        host: svc.hostname, port, fix, policies: new Set(), workloads: new Set(),
      };
      this.findings.set(key, f);
    }
    f.policies.add(onDr ? `${origin.resource.ref}${portLevel}` : `this policy${portLevel}`);
    f.workloads.add(`${e.workload}.${e.namespace}`);
  }
}

export const mtlsContradictionsAnalyzer: Analyzer = {
  name: 'security.mtls-contradictions',
  description: 'Callers whose TLS mode (DestinationRule, or auto mTLS) the PeerAuthentication of the workloads they call refuses.',
  reads: ['PeerAuthentication', 'DestinationRule', 'MeshConfig', 'Service', 'ServiceEntry', 'Pod', 'Deployment', 'WorkloadEntry', 'App'],
  messages: ['ClientTlsRefusedByStrictMtls', 'MtlsRefusedByDisabledMtls'],
  run(ctx) {
    if (ctx.ofKind('PeerAuthentication').length === 0) return; // everything PERMISSIVE: any mode is accepted
    const check = new Check(ctx);
    for (const svc of ctx.registry.services()) check.service(svc);
    for (const f of check.findings.values()) {
      ctx.report(f.name, {
        client: f.client, mode: f.mode, host: f.host, port: f.port, fix: f.fix,
        policy: [...f.policies].sort().join(', '), workloads: shortList([...f.workloads].sort()),
      }, { resource: f.resource, field: f.field });
    }
  },
};

