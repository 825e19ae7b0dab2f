/**
 * A generated mesh for benchmarks: `services` services over `namespaces`
 * namespaces, each with two Deployments (v1 with 3 replicas, v2 with 2: five
 * endpoints a service), one VirtualService (90/10 split plus a header match)
 * and one DestinationRule (two subsets, a connection pool, outlier detection).
 */
import { ConfigSet } from '../src/api/config-set.js';
import { parseYaml } from '../src/api/load.js';
import type { Resource } from '../src/api/resource.js';

export interface GeneratedMesh {
  readonly config: ConfigSet;
  /** Workload names (`svc-7-v1.ns-3`), two per service. */
  readonly workloads: readonly string[];
  /** A changed copy of one VirtualService (weights 80/20). */
  readonly changedVs: Resource;
}

export function virtualService(name: string, ns: string, v1: number, callee: string): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [${name}]
  http:
  - name: canary-header
    match: [{ headers: { x-canary: { exact: "yes" } } }]
    route: [{ destination: { host: ${name}, subset: v2 } }]
  - name: split
    timeout: 3s
    retries: { attempts: 3, perTryTimeout: 1s, retryOn: "5xx,connect-failure" }
    route:
    - { destination: { host: ${name}, subset: v1 }, weight: ${v1} }
    - { destination: { host: ${name}, subset: v2 }, weight: ${100 - v1} }
  - name: to-callee
    match: [{ uri: { prefix: /callee } }]
    route: [{ destination: { host: ${callee} } }]
`;
}

export function generateMesh(services = 1000, namespaces = 10): GeneratedMesh {
  const docs: string[] = [];
  const workloads: string[] = [];
  for (let i = 0; i < services; i++) {
    const ns = `ns-${i % namespaces}`;
    const name = `svc-${i}`;
    const callee = `svc-${(i + 1) % services}.ns-${(i + 1) % namespaces}`;
    docs.push(`apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${ns} }
spec:
  selector: { app: ${name} }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`);
    for (const [v, replicas] of [['v1', 3], ['v2', 2]] as const) {
      docs.push(`apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}-${v}, namespace: ${ns} }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: ${name}, version: ${v} } }
  template:
    metadata: { labels: { app: ${name}, version: ${v}, topology.kubernetes.io/region: r1, topology.kubernetes.io/zone: z${i % 3} } }
    spec:
      serviceAccountName: ${name}
      containers: [{ name: app, image: app }]
`);
      workloads.push(`${name}-${v}.${ns}`);
    }
    docs.push(virtualService(name, ns, 90, callee));
    docs.push(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: ${ns} }
spec:
  host: ${name}
  trafficPolicy:
    connectionPool: { http: { http1MaxPendingRequests: 100 } }
    outlierDetection: { consecutive5xxErrors: 7, interval: 5s }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`);
  }
  const parsed = parseYaml(docs.join('---\n'), 'generated.yaml');
  const errors = parsed.diagnostics.filter((d) => d.level === 'error');
  if (errors.length) throw new Error(`generated mesh does not validate: ${errors[0]!.field}: ${errors[0]!.message}`);
  const changed = parseYaml(virtualService('svc-0', 'ns-0', 80, 'svc-1.ns-1'), 'changed.yaml').resources[0]!;
  return { config: ConfigSet.of(parsed.resources), workloads, changedVs: changed };
}
