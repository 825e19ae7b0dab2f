/**
 * The control plane's view of the mesh: the configuration in force, the live
 * instances (registrations and health), the registry built from both, and
 * the ONE compiler every proxy's snapshot comes from. The registry is rebuilt
 * lazily, with the previous one as `previous`, so unchanged services and
 * endpoint lists keep their identity and the compiler's memos hit.
 */
import type { ConfigSet } from '../api/config-set.js';
import type { Diagnostic } from '../api/diagnostic.js';
import { createCompiler, type Compiler, type SecurityInput } from '../compile/index.js';
import { meshSettings } from '../compile/mesh.js';
import { rateLimitIssues } from '../compile/rate-limits.js';
import type { ProxyNode, Snapshot } from '../protocol/snapshot.js';
import type { LiveInstance } from '../registry/live.js';
import { createRegistry } from '../registry/registry.js';
import { configSource } from '../registry/sources/config-source.js';
import type { Registry, RegistrySource, Workload } from '../registry/types.js';

export class MeshState {
  readonly #compiler: Compiler = createCompiler();
  readonly #live = new Map<string, LiveInstance>();
  #config: ConfigSet;
  #source: RegistrySource;
  #registry: Registry | undefined;
  #registryDiagnostics: readonly Diagnostic[] = [];
  #dirty = true;
  #security: SecurityInput | undefined;

  constructor(config: ConfigSet) {
    this.#config = config;
    this.#source = this.#sourceFor(config);
  }

  get config(): ConfigSet {
    return this.#config;
  }

  /** The registry of the current configuration and live instances. */
  get registry(): Registry {
    if (this.#dirty || !this.#registry) {
      const mesh = meshSettings(this.#config);
      const build = createRegistry([this.#source], {
        trustDomain: mesh.trustDomain,
        domainSuffix: mesh.domainSuffix,
        instances: this.#live,
        ...(this.#registry ? { previous: this.#registry } : {}),
      });
      this.#registry = build.registry;
      // References the registry resolves: a RateLimitPolicy whose target Service does not exist.
      this.#registryDiagnostics = [...build.diagnostics, ...rateLimitIssues(this.#config.ofKind('RateLimitPolicy'), build.registry)];
      this.#dirty = false;
    }
    return this.#registry;
  }

  /** What building the registry reported (duplicate hosts, unresolved ports), and references into it that resolve to nothing. */
  get registryDiagnostics(): readonly Diagnostic[] {
    void this.registry;
    return this.#registryDiagnostics;
  }

  setConfig(config: ConfigSet): void {
    if (config === this.#config) return;
    this.#config = config;
    this.#source = this.#sourceFor(config);
    this.#dirty = true;
  }

  /** Sets (or, with undefined, removes) an instance's registration. Returns whether anything changed. */
  setLive(instance: string, live: LiveInstance | undefined): boolean {
    const old = this.#live.get(instance);
    if (live === undefined) {
      if (!old) return false;
      this.#live.delete(instance);
    } else {
      if (old && old.address === live.address && old.port === live.port && old.healthy === live.healthy) return false;
      this.#live.set(instance, Object.freeze({ ...live }));
    }
    this.#dirty = true;
    return true;
  }

  live(instance: string): LiveInstance | undefined {
    return this.#live.get(instance);
  }

  /** The snapshot of a workload's proxies. Throws a TrellisError when the workload is not declared. */
  snapshot(w: Pick<Workload, 'name' | 'namespace'>): Snapshot {
    return this.#compiler.compile(this.#config, this.registry, { workload: w.name, namespace: w.namespace }, this.#security);
  }

  /** The CA's trust bundle, carried by every snapshot from now on. */
  setTrustBundle(pems: readonly string[]): void {
    this.#security = { ...this.#security, trustBundle: pems };
  }

  /** The JWKS the control plane fetched, inlined into the snapshots of workloads with RequestAuthentication. */
  setJwks(jwks: SecurityInput['jwks']): void {
    this.#security = { trustBundle: this.#security?.trustBundle ?? [], ...(jwks ? { jwks } : {}) };
  }

  node(w: Pick<Workload, 'name' | 'namespace'>): ProxyNode {
    return this.#compiler.node(this.#config, this.registry, { workload: w.name, namespace: w.namespace });
  }

  #sourceFor(config: ConfigSet): RegistrySource {
    return configSource(config, { trustDomain: meshSettings(config).trustDomain });
  }
}
