/** Test helpers: build a configuration set and registry from YAML text or files. */
import { join } from 'node:path';
import { ConfigSet } from '../../src/api/config-set.js';
import { loadConfig, parseYaml } from '../../src/api/load.js';
import type { Resource } from '../../src/api/resource.js';
import type { Diagnostic } from '../../src/api/diagnostic.js';
import { meshSettings } from '../../src/compile/mesh.js';
import { createRegistry } from '../../src/registry/registry.js';
import { configSource } from '../../src/registry/sources/config-source.js';
import type { Registry } from '../../src/registry/types.js';

export const ROOT = process.env.TRELLIS_ROOT ?? join(new URL('.', import.meta.url).pathname, '..', '..', '..');
export const SAMPLES = join(ROOT, 'test', 'fixtures', 'istio-samples');
export const BOOKINFO = join(SAMPLES, 'bookinfo');

export interface Mesh {
  readonly config: ConfigSet;
  readonly registry: Registry;
  readonly diagnostics: readonly Diagnostic[];
}

export function registryFor(config: ConfigSet): { registry: Registry; diagnostics: readonly Diagnostic[] } {
  const mesh = meshSettings(config);
  return createRegistry([configSource(config, { trustDomain: mesh.trustDomain })], { trustDomain: mesh.trustDomain, domainSuffix: mesh.domainSuffix });
}

/** A mesh from files/directories (relative to the repo root or absolute). */
export function meshFromFiles(...paths: string[]): Mesh {
  const config = loadConfig(paths.map((p) => (p.startsWith('/') ? p : join(ROOT, p))));
  const { registry, diagnostics } = registryFor(config);
  return { config, registry, diagnostics: [...config.diagnostics, ...diagnostics] };
}

/** Resources parsed from YAML text; throws when the text has errors. */
export function resources(yaml: string, file = 'inline.yaml'): Resource[] {
  const r = parseYaml(yaml, file);
  const errors = r.diagnostics.filter((d) => d.level === 'error');
  if (errors.length) throw new Error(`test YAML does not validate: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`);
  return [...r.resources];
}

/** A mesh from YAML text (plus optional files). */
export function meshFromYaml(yaml: string, ...files: string[]): Mesh {
  const base = files.length ? loadConfig(files.map((p) => (p.startsWith('/') ? p : join(ROOT, p)))).resources : [];
  const config = ConfigSet.of([...base, ...resources(yaml)]);
  const { registry, diagnostics } = registryFor(config);
  return { config, registry, diagnostics };
}

/** A Kubernetes Service document selecting `app: <name>`. */
export function k8sService(name: string, namespace: string, port: { name: string; port: number; targetPort: number }): string {
  return `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  selector: { app: ${name} }
  ports: [{ name: ${port.name}, port: ${port.port}, targetPort: ${port.targetPort} }]
`;
}

/** A Deployment of `app` with the given labels (app is added), replicas and service account (default: the app). */
export function k8sDeployment(name: string, namespace: string, app: string, opts: { labels?: Record<string, string>; replicas?: number; serviceAccount?: string } = {}): string {
  const labels = Object.entries({ app, ...(opts.labels ?? {}) }).map(([k, v]) => `${k}: ${v}`).join(', ');
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  replicas: ${opts.replicas ?? 1}
  selector: { matchLabels: { ${labels} } }
  template: { metadata: { labels: { ${labels} } }, spec: { serviceAccountName: ${opts.serviceAccount ?? app}, containers: [{ name: ${app}, image: ${app} }] } }
`;
}

/** Two Services with Deployments, for small routing tests. */
/** A VirtualService `name` in shop for `host`, with `http` rules given as YAML list items (two spaces in). */
export function shopVirtualService(host: string, http: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${host}, namespace: shop }
spec:
  hosts: [${host}]
  http:
${http.replace(/^\n/, '')}`;
}

/** web's VirtualService that routes only /only (other paths of web get 404 NR). */
export const WEB_ONLY_VS = shopVirtualService('web', `
  - name: only
    match: [{ uri: { prefix: /only } }]
    route: [{ destination: { host: web } }]
`);

export const TWO_SERVICES = '\n' + [
  k8sService('web', 'shop', { name: 'http', port: 80, targetPort: 8080 }),
  k8sDeployment('web-v1', 'shop', 'web', { labels: { version: 'v1' } }),
  k8sService('api', 'shop', { name: 'http', port: 80, targetPort: 9000 }),
  k8sDeployment('api-v1', 'shop', 'api', { labels: { version: 'v1' }, replicas: 2 }),
  k8sDeployment('api-v2', 'shop', 'api', { labels: { version: 'v2' } }),
].join('---\n')
+ `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;
