/**
 * The VirtualService analyzers (src/analyze/analyzers/virtual-service.ts and
 * its vs-*.ts modules): for each, YAML that must be reported (code,
 * resource, field, line, and a message that says what to do) and YAML that
 * must not.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzerIn, lineOf, runOne, where } from './helpers.js';
import { virtualServiceAnalyzers } from '../../src/analyze/analyzers/virtual-service.js';
import { stringCovers } from '../../src/analyze/analyzers/vs-match-cover.js';
import { analyzerNamed } from '../../src/analyze/registry.js';

const FILE = 'mesh.yaml';

const analyzer = (name: string) => analyzerIn(virtualServiceAnalyzers, name);
const analyze = (name: string, yaml: string, extra: { rejected?: string } = {}) => runOne(analyzer(name), yaml, { file: FILE, ...extra });

const SERVICES = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec:
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec:
  selector: { app: ratings }
  ports: [{ name: http, port: 9080 }, { name: grpc, port: 9090 }]
---
apiVersion: v1
kind: Service
metadata:
  name: internal
  namespace: backend
  annotations: { networking.istio.io/exportTo: "." }
spec:
  selector: { app: internal }
  ports: [{ name: http, port: 80 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: eu, namespace: default }
spec:
  hosts: ["*.eu.example.com"]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{ number: 443, name: tls, protocol: TLS }]
`;

test('the VirtualService analyzers are registered under stable names, each with its Istio counterpart (or none: Trellis-only)', () => {
  const expected: Record<string, string | undefined> = {
    'virtualservice.hosts-without-service': undefined,
    'virtualservice.destination-hosts': 'virtualservice.DestinationHostAnalyzer',
    'virtualservice.destination-subsets': 'virtualservice.DestinationRuleAnalyzer',
    'virtualservice.gateways': 'virtualservice.GatewayAnalyzer',
    'virtualservice.conflicting-mesh-hosts': 'virtualservice.ConflictingMeshGatewayHostsAnalyzer',
    'virtualservice.unreachable-rules': 'schema.ValidationAnalyzer.VirtualService',
    'virtualservice.jwt-claim-routes': 'virtualservice.JWTClaimRouteAnalyzer',
    'deprecation.fields': 'deprecation.DeprecationAnalyzer',
  };
  assert.deepEqual(virtualServiceAnalyzers.map((a) => a.name).sort(), Object.keys(expected).sort());
  for (const [name, istio] of Object.entries(expected)) {
    const a = analyzerNamed(name);
    assert.ok(a, `${name} is in the registry`);
    assert.deepEqual(a.istio, istio === undefined ? undefined : [istio]);
    assert.ok(a.description.length > 20 && a.reads.includes(name === 'deprecation.fields' ? 'Sidecar' : 'VirtualService'));
  }
});

describe('virtualservice.hosts-without-service', () => {
  const run = (yaml: string) => analyze('virtualservice.hosts-without-service', SERVICES + yaml);
  const vs = (name: string, hosts: string, extra = '') => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: default }
spec:
  hosts: ${hosts}${extra}
  http:
  - route: [{ destination: { host: reviews } }]
`;

  test('a mesh host no service has, one only a wildcard ServiceEntry covers, and a wildcard covering none are reported at the host', () => {
    const yaml = vs('typo', '[reviewz]') + vs('covered', '[api.eu.example.com]') + vs('nothing', '["*.nowhere.example.com"]');
    const ds = run(yaml);
    const all = SERVICES + yaml;
    assert.deepEqual(where(ds), [
      `TRL1411 VirtualService default/typo spec.hosts[0] mesh.yaml:${lineOf(all, '[reviewz]')}`,
      `TRL1411 VirtualService default/covered spec.hosts[0] mesh.yaml:${lineOf(all, '[api.eu.example.com]')}`,
      `TRL1411 VirtualService default/nothing spec.hosts[0] mesh.yaml:${lineOf(all, '*.nowhere.example.com')}`,
    ]);
    assert.match(ds[0]!.message, /^host reviewz\.default\.svc\.cluster\.local is not the host of a service: no Service or ServiceEntry has that hostname; .*Add a ServiceEntry for/);
    assert.match(ds[1]!.message, /only the wildcard ServiceEntry default\/eu \(\*\.eu\.example\.com\) covers it/);
    assert.match(ds[2]!.message, /it covers no service hostname/);
    assert.ok(ds.every((d) => d.level === 'warning'));
  });

  test('hosts of services (short names included), a wildcard that covers one, and gateway-bound VirtualServices are quiet', () => {
    const yaml = vs('short', '[reviews, ratings.default]') + vs('wild', '["*.eu.example.com"]')
      + vs('edge', '[shop.example.com]', '\n  gateways: [public]');
    assert.deepEqual(run(yaml), []);
  });
});

describe('virtualservice.destination-hosts', () => {
  const run = (yaml: string) => analyze('virtualservice.destination-hosts', SERVICES + yaml);

  test('reports a route host and a mirror host that name no service, at the host', () => {
    const yaml = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviewz
    mirror:
      host: shadow.default.svc.cluster.local
`;
    const ds = run(yaml);
    const full = SERVICES + yaml;
    assert.deepEqual(where(ds), [
      `TRL0101 VirtualService default/reviews spec.http[0].route[0].destination.host ${FILE}:${lineOf(full, 'host: reviewz')}`,
      `TRL0101 VirtualService default/reviews spec.http[0].mirror.host ${FILE}:${lineOf(full, 'host: shadow')}`,
    ]);
    assert.match(ds[0]!.message, /host reviewz does not exist .*reviewz\.default\.svc\.cluster\.local.*fix the host or add a ServiceEntry/);
    assert.match(ds[1]!.message, /^mirror host shadow/);
  });

  test('honours exportTo: a service exported only to its own namespace is not found from another, nor from where the VirtualService is exported to', () => {
    const yaml = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: to-internal, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: internal.backend.svc.cluster.local }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: exported-away, namespace: backend }
spec:
  hosts: [internal]
  exportTo: [frontend]
  http:
  - route:
    - destination: { host: internal }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: local, namespace: backend }
spec:
  hosts: [internal]
  http:
  - route:
    - destination: { host: internal }
`;
    const ds = run(yaml);
    assert.deepEqual(ds.map((d) => `${d.code} ${d.resource}`), ['TRL0101 VirtualService default/to-internal', 'TRL0101 VirtualService backend/exported-away']);
    assert.match(ds[0]!.message, /Service backend\/internal exports it only to backend; export it there/);
    assert.match(ds[1]!.message, /namespace frontend, where this VirtualService applies \(its exportTo\)/);
  });

  test('reports a port the service does not have, and a missing port on a multi-port service', () => {
    const yaml = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ports, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        port:
          number: 9999
  - route:
    - destination:
        host: ratings
`;
    const ds = run(yaml);
    const full = SERVICES + yaml;
    assert.deepEqual(where(ds), [
      `TRL0101 VirtualService default/ports spec.http[0].route[0].destination.port.number ${FILE}:${lineOf(full, 'number: 9999')}`,
      `TRL0112 VirtualService default/ports spec.http[1].route[0].destination ${FILE}:${lineOf(full, 'host: ratings', lineOf(full, 'number: 9999')) }`,
    ]);
    assert.match(ds[0]!.message, /reviews:9999 does not exist: Service default\/reviews has port 9080; use one of them/);
    assert.match(ds[1]!.message, /more than one port \(9080, 9090\).*set destination\.port\.number/);
  });

  test('accepts short, FQDN and cross-namespace names, wildcard ServiceEntry hosts, and a named port of a multi-port service', () => {
    const ds = run(`---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: fine, namespace: other }
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - route:
    - destination: { host: reviews.default.svc.cluster.local }
  - route:
    - destination: { host: ratings.default.svc.cluster.local, port: { number: 9090 } }
  - route:
    - destination: { host: api.eu.example.com }
    mirror: { host: reviews.default.svc.cluster.local, port: { number: 9080 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: short, namespace: default }
spec:
  hosts: [reviews]
  tcp:
  - route:
    - destination: { host: reviews }
`);
    assert.deepEqual(where(ds), []);
  });

  test('reports a gateway route without subset to a host that a mesh VirtualService splits by subset (TRL0140), not one with a subset', () => {
    const yaml = `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: split, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews, subset: v1 }
      weight: 90
    - destination: { host: reviews, subset: v2 }
      weight: 10
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: edge, namespace: default }
spec:
  hosts: [shop.example.com]
  gateways: [public]
  http:
  - match: [{ uri: { prefix: /v1 } }]
    route:
    - destination: { host: reviews, subset: v1 }
  - route:
    - destination:
        host: reviews
`;
    const ds = run(yaml);
    const full = SERVICES + yaml;
    assert.deepEqual(where(ds), [`TRL0140 VirtualService default/edge spec.http[1].route[0].destination.host ${FILE}:${lineOf(full, '        host: reviews', lineOf(full, 'name: edge'))}`]);
    assert.match(ds[0]!.message, /without a subset, while VirtualService default\/split splits reviews\.default\.svc\.cluster\.local by subset/);
  });
});

describe('virtualservice.destination-subsets', () => {
  const DR = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews-elsewhere, namespace: unrelated }
spec:
  host: reviews.default.svc.cluster.local
  subsets: [{ name: v3, labels: { version: v3 } }]
`;
  const run = (yaml: string) => analyze('virtualservice.destination-subsets', SERVICES + '---' + DR + yaml);

  test('reports a subset no DestinationRule the namespace uses defines, in a route and in a mirror', () => {
    const yaml = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
    mirror:
      host: reviews
      subset: v3
`;
    const ds = run(yaml);
    const full = SERVICES + '---' + DR + yaml;
    assert.deepEqual(where(ds), [
      `TRL0101 VirtualService default/reviews spec.http[0].route[0].destination.subset ${FILE}:${lineOf(full, 'subset: v2')}`,
      `TRL0101 VirtualService default/reviews spec.http[0].mirror.subset ${FILE}:${lineOf(full, 'subset: v3', lineOf(full, 'subset: v2'))}`,
    ]);
    assert.match(ds[0]!.message, /subset v2 of reviews does not exist: DestinationRule default\/reviews, the DestinationRule that namespace default uses for reviews\.default\.svc\.cluster\.local, defines only v1; add the subset there/);
    // v3 is defined, but in a namespace whose DestinationRules the proxies of `default` never read.
    assert.match(ds[1]!.message, /^mirror subset v3/);
  });

  test('accepts a subset of the DestinationRule in the service\'s namespace, seen from another namespace', () => {
    assert.deepEqual(where(run(`---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - route:
    - destination: { host: reviews.default.svc.cluster.local, subset: v1 }
`)), []);
  });

  test('says when no DestinationRule is visible at all', () => {
    const ds = run(`---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings, namespace: default }
spec:
  hosts: [ratings]
  tcp:
  - route:
    - destination: { host: ratings, subset: v1, port: { number: 9090 } }
`);
    assert.deepEqual(ds.map((d) => `${d.code} ${d.field}`), ['TRL0101 spec.tcp[0].route[0].destination.subset']);
    assert.match(ds[0]!.message, /no DestinationRule for ratings\.default\.svc\.cluster\.local is visible from namespace default; add one that defines subset v1/);
  });
});

describe('virtualservice.gateways', () => {
  const GATEWAYS = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: edge }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 80, name: http, protocol: HTTP }
    hosts: ["*.shop.example.com", "./admin.example.com"]
`;
  const run = (yaml: string, extra?: { rejected?: string }) => analyze('virtualservice.gateways', GATEWAYS + yaml, extra);

  test('reports a Gateway that does not exist (a bare name is in the VirtualService\'s namespace), and accepts mesh and ns/name', () => {
    const yaml = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [www.shop.example.com]
  gateways:
  - mesh
  - edge/public
  - public
  http:
  - route:
    - destination: { host: web }
`;
    const ds = run(yaml);
    const full = GATEWAYS + yaml;
    assert.deepEqual(where(ds), [`TRL0101 VirtualService default/web spec.gateways[2] ${FILE}:${lineOf(full, '  - public')}`]);
    assert.match(ds[0]!.message, /gateway default\/public does not exist: no Gateway of that name is loaded in namespace default \(a bare name means the VirtualService's own namespace; write namespace\/name/);
  });

  test('says when the Gateway was rejected when loading', () => {
    const ds = run(`---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: edge }
spec:
  hosts: [www.shop.example.com]
  gateways: [broken]
  http:
  - route:
    - destination: { host: web }
`, { rejected: `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: broken, namespace: edge }
spec:
  selector: { istio: ingressgateway }
` });
    assert.deepEqual(ds.map((d) => d.code), ['TRL0101']);
    assert.match(ds[0]!.message, /a Gateway of that name was rejected when loading \(TRL0106: .*servers.*\); fix it so that it loads/);
  });

  test('reports hosts no server admits, honouring namespace/host (TRL0132), and accepts wildcard and ./ hosts from the right namespace', () => {
    const yaml = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: wrong-host, namespace: default }
spec:
  hosts: [www.other.example.com]
  gateways: [edge/public]
  http:
  - route:
    - destination: { host: web }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: admin-elsewhere, namespace: default }
spec:
  hosts: [admin.example.com]
  gateways: [edge/public]
  http:
  - route:
    - destination: { host: web }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: admin, namespace: edge }
spec:
  hosts: [admin.example.com]
  gateways: [public]
  http:
  - route:
    - destination: { host: web }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: default }
spec:
  hosts: [cart.shop.example.com]
  gateways: [edge/public]
  http:
  - route:
    - destination: { host: web }
`;
    const ds = run(yaml);
    const full = GATEWAYS + yaml;
    assert.deepEqual(where(ds), [
      `TRL0132 VirtualService default/wrong-host spec.gateways[0] ${FILE}:${lineOf(full, 'gateways: [edge/public]')}`,
      `TRL0132 VirtualService default/admin-elsewhere spec.gateways[0] ${FILE}:${lineOf(full, 'gateways: [edge/public]', lineOf(full, 'name: admin-elsewhere'))}`,
    ]);
    assert.match(ds[0]!.message, /none of the hosts www\.other\.example\.com is admitted by a server of gateway edge\/public.*add the host to the Gateway's servers\[\]\.hosts/);
  });

  test('reports a reference to a Gateway Istio generates for the Kubernetes Gateway API (TRL0165)', () => {
    const yaml = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [foo.com]
  gateways:
  - "istio-ingress/gateway~istio-autogenerated-k8s-gateway~http"
  http:
  - route:
    - destination: { host: web }
`;
    const ds = run(yaml);
    assert.deepEqual(where(ds), [`TRL0165 VirtualService default/web spec.gateways[0] ${FILE}:${lineOf(GATEWAYS + yaml, 'autogenerated')}`]);
    assert.match(ds[0]!.message, /bind to a networking\.istio\.io Gateway by its own name/);
  });
});

describe('virtualservice.conflicting-mesh-hosts', () => {
  const vs = (name: string, ns: string, hosts: string, more = '') => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: ${hosts}
${more}  http:
  - route:
    - destination: { host: reviews.default.svc.cluster.local }
`;
  const run = (yaml: string) => analyze('virtualservice.conflicting-mesh-hosts', yaml);

  test('reports each of two mesh VirtualServices that claim the same host, at that host', () => {
    const yaml = vs('a', 'default', '[reviews]') + vs('b', 'shop', '[other.example.com, reviews.default.svc.cluster.local]');
    const ds = run(yaml);
    assert.deepEqual(where(ds), [
      `TRL0109 VirtualService default/a spec.hosts[0] ${FILE}:${lineOf(yaml, 'hosts: [reviews]')}`,
      `TRL0109 VirtualService shop/b spec.hosts[1] ${FILE}:${lineOf(yaml, 'hosts: [other')}`,
    ]);
    assert.match(ds[0]!.message, /conflicts with VirtualService shop\/b on host reviews\.default\.svc\.cluster\.local.*merge them into one VirtualService, or narrow exportTo/);
  });

  test('reports overlapping wildcard hosts, but not an exact host under a wildcard', () => {
    const ds = run(vs('wide', 'default', '["*.example.com"]') + vs('narrow', 'default', '["*.api.example.com"]') + vs('exact', 'default', '[www.example.com]'));
    assert.deepEqual(ds.map((d) => `${d.code} ${d.resource}`), ['TRL0109 VirtualService default/wide', 'TRL0109 VirtualService default/narrow']);
  });

  test('accepts the same host where no namespace sees both, and on a gateway-only VirtualService', () => {
    assert.deepEqual(where(run(
      vs('a', 'team1', '[reviews.default.svc.cluster.local]', '  exportTo: ["."]\n')
      + vs('b', 'team2', '[reviews.default.svc.cluster.local]', '  exportTo: ["."]\n')
      + vs('c', 'team3', '[reviews.default.svc.cluster.local]', '  gateways: [edge/public]\n'),
    )), []);
  });
});

describe('virtualservice.unreachable-rules', () => {
  const run = (spec: string) => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r, namespace: default }
spec:
  hosts: [reviews]
${spec}`;
    return { yaml, ds: analyze('virtualservice.unreachable-rules', yaml) };
  };

  test('reports a rule after a rule without match (TRL0130)', () => {
    const { yaml, ds } = run(`  http:
  - route: [{ destination: { host: reviews } }]
  - name: never
    match: [{ uri: { prefix: /a } }]
    route: [{ destination: { host: reviews } }]
`);
    assert.deepEqual(where(ds), [`TRL0130 VirtualService default/r spec.http[1] ${FILE}:${lineOf(yaml, 'name: never')}`]);
    assert.match(ds[0]!.message, /http rule "never" never matches: http rule #0 before it has no match and takes every request; remove this rule/);
  });

  test('reports a repeated match (names aside) and a rule all of whose matches are covered by a shorter prefix', () => {
    const { yaml, ds } = run(`  http:
  - match:
    - name: first
      uri: { prefix: /api }
      method: { exact: GET }
    route: [{ destination: { host: reviews } }]
  - match:
    - name: second
      uri: { prefix: /api }
      method: { exact: GET }
    - uri: { prefix: /other }
    route: [{ destination: { host: reviews } }]
  - match:
    - uri: { prefix: /api/v1 }
      method: { exact: GET }
      headers: { x-user: { exact: jason } }
    - uri: { exact: /api/v2 }
      method: { exact: GET }
    route: [{ destination: { host: reviews } }]
`);
    assert.deepEqual(where(ds), [
      `TRL0131 VirtualService default/r spec.http[1].match[0] ${FILE}:${lineOf(yaml, 'name: second')}`,
      `TRL0131 VirtualService default/r spec.http[2].match[0] ${FILE}:${lineOf(yaml, 'prefix: /api/v1')}`,
      `TRL0131 VirtualService default/r spec.http[2].match[1] ${FILE}:${lineOf(yaml, 'exact: /api/v2')}`,
      `TRL0130 VirtualService default/r spec.http[2] ${FILE}:${lineOf(yaml, 'prefix: /api/v1') - 1}`,
    ]);
    assert.match(ds[0]!.message, /match "second" of http rule #1 never takes effect: match "first" of http rule #0 comes before it/);
    assert.match(ds[3]!.message, /http rule #2 never matches: earlier rules take every request each of its matches takes; remove it, or move it before them/);
  });

  test('uses the data plane\'s string matchers: a regex covers the exact values it accepts, ignoreUriCase widens, a different method or an extra header of the earlier rule does not cover', () => {
    const { ds } = run(`  http:
  - match: [{ uri: { regex: "/items/[0-9]+" } }]
    route: [{ destination: { host: reviews } }]
  - match: [{ uri: { exact: /items/42 } }]
    route: [{ destination: { host: reviews } }]
  - match: [{ uri: { exact: /Login }, ignoreUriCase: true }]
    route: [{ destination: { host: reviews } }]
  - match: [{ uri: { exact: /login } }]
    route: [{ destination: { host: reviews } }]
  - match: [{ uri: { prefix: /cart }, method: { exact: GET } }]
    route: [{ destination: { host: reviews } }]
  - match: [{ uri: { prefix: /cart }, method: { exact: POST } }]
    route: [{ destination: { host: reviews } }]
  - match: [{ uri: { prefix: /u }, headers: { x-team: { exact: a } } }]
    route: [{ destination: { host: reviews } }]
  - match: [{ uri: { prefix: /u/1 } }]
    route: [{ destination: { host: reviews } }]
`);
    assert.deepEqual(ds.map((d) => `${d.code} ${d.field}`), [
      'TRL0131 spec.http[1].match[0]', 'TRL0130 spec.http[1]',
      'TRL0131 spec.http[3].match[0]', 'TRL0130 spec.http[3]',
    ]);
  });

  test('tcp and tls rules: a repeated port or SNI name is reported; an exact SNI after a wildcard is not (the TLS router prefers exact names)', () => {
    const { yaml, ds } = run(`  tcp:
  - match: [{ port: 9000 }]
    route: [{ destination: { host: reviews } }]
  - match: [{ port: 9000 }, { port: 9001 }]
    route: [{ destination: { host: reviews } }]
  tls:
  - match: [{ port: 443, sniHosts: ["*.example.com"] }]
    route: [{ destination: { host: reviews } }]
  - match: [{ port: 443, sniHosts: [a.example.com] }]
    route: [{ destination: { host: reviews } }]
  - match: [{ port: 443, sniHosts: [A.example.com] }]
    route: [{ destination: { host: reviews } }]
`);
    assert.deepEqual(where(ds), [
      `TRL0131 VirtualService default/r spec.tcp[1].match[0] ${FILE}:${lineOf(yaml, '{ port: 9000 }, { port: 9001 }')}`,
      `TRL0131 VirtualService default/r spec.tls[2].match[0] ${FILE}:${lineOf(yaml, 'A.example.com')}`,
      `TRL0130 VirtualService default/r spec.tls[2] ${FILE}:${lineOf(yaml, 'A.example.com')}`,
    ]);
  });

  test('string coverage errs towards "not covered"', () => {
    assert.equal(stringCovers({ kind: 'prefix', value: '/a' }, { kind: 'regex', value: '/a.*' }), false);
    assert.equal(stringCovers({ kind: 'exact', value: '/a' }, { kind: 'exact', value: '/A', ignoreCase: true }), false);
    assert.equal(stringCovers({ kind: 'prefix', value: '/A', ignoreCase: true }, { kind: 'prefix', value: '/abc' }), true);
    assert.equal(stringCovers(undefined, { kind: 'exact', value: 'x' }), true);
    assert.equal(stringCovers({ kind: 'exact', value: 'x' }, undefined), false);
  });
});

describe('virtualservice.jwt-claim-routes', () => {
  const BASE = `
apiVersion: v1
kind: Pod
metadata: { name: ingress-1, namespace: istio-system, labels: { istio: ingressgateway } }
spec:
  containers: [{ name: proxy, image: trellis }]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: public, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: by-claim, namespace: default }
spec:
  hosts: [shop.example.com]
  gateways: [public]
  http:
  - match:
    - headers:
        "@request.auth.claims.group":
          exact: admins
    route: [{ destination: { host: admin } }]
  - route: [{ destination: { host: web } }]
`;
  const run = (more = '') => analyze('virtualservice.jwt-claim-routes', BASE + more);

  test('reports claim routing at a gateway whose workloads no RequestAuthentication covers', () => {
    const ds = run();
    // The position is the claim condition's value (the line after its key).
    const line = lineOf(BASE, 'exact: admins');
    assert.deepEqual(ds.map((d) => `${d.code} ${d.resource} ${d.position?.line}`), [`TRL0149 VirtualService default/by-claim ${line}`]);
    assert.equal(ds[0]!.field, 'spec.http[0].match[0].headers["@request.auth.claims.group"]');
    assert.match(ds[0]!.message, /claim group at gateway default\/public, but no RequestAuthentication applies to its workloads istio-system\/ingress-1.*add a RequestAuthentication that selects them/);
  });

  const RA = `---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: istio-system }
spec:
  selector: { matchLabels: { istio: ingressgateway } }
  jwtRules: [{ issuer: "https://issuer.example.com", jwksUri: "https://issuer.example.com/jwks" }]
`;

  test('a RequestAuthentication of the root namespace on the gateway workloads satisfies it: claim routing at a gateway is enforced, nothing to report', () => {
    assert.deepEqual(run(RA), []);
  });

  test('claim conditions in rules that apply to sidecars are reported (never holds / always holds), each at its field', () => {
    const yaml = BASE.replace('gateways: [public]', 'gateways: [public, mesh]').replace(`    route: [{ destination: { host: admin } }]`, `      withoutHeaders:
        "@request.auth.claims[realm.example][role]": { prefix: guest }
    route: [{ destination: { host: admin } }]`) + RA;
    const ds = analyze('virtualservice.jwt-claim-routes', yaml);
    assert.deepEqual(where(ds), [
      `TRL1410 VirtualService default/by-claim spec.http[0].match[0].headers["@request.auth.claims.group"] ${FILE}:${lineOf(yaml, 'exact: admins')}`,
      `TRL1410 VirtualService default/by-claim spec.http[0].match[0].withoutHeaders["@request.auth.claims[realm.example][role]"] ${FILE}:${lineOf(yaml, 'prefix: guest')}`,
    ]);
    assert.match(ds[0]!.message, /JWT claim group in a rule that applies to sidecars \(mesh\).*at sidecars this match never holds.*route on claims at a gateway/);
    assert.match(ds[1]!.message, /JWT claim realm\.example\.role .*at sidecars this withoutHeaders condition always holds/);
  });

  test('a VirtualService without gateways applies to sidecars only: TRL1410, and no TRL0149 (no gateway); a match bound to a gateway is not reported', () => {
    const mesh = BASE.replace('  gateways: [public]\n', '');
    assert.deepEqual(analyze('virtualservice.jwt-claim-routes', mesh).map((d) => d.code), ['TRL1410']);
    const matchAtGateway = BASE.replace('gateways: [public]', 'gateways: [public, mesh]').replace('    - headers:\n', '    - gateways: [public]\n      headers:\n') + RA;
    assert.deepEqual(analyze('virtualservice.jwt-claim-routes', matchAtGateway), []);
  });

  test('no claim match, nothing reported', () => {
    const ds = analyze('virtualservice.jwt-claim-routes', BASE.replace('"@request.auth.claims.group"', 'x-group'));
    assert.deepEqual(ds, []);
  });
});

describe('deprecation.fields', () => {
  test('reports fault.delay.percent and Sidecar egressProxy at the field', () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: slow, namespace: default }
spec:
  hosts: [reviews]
  http:
  - fault:
      delay:
        fixedDelay: 1s
        percent: 50
    route: [{ destination: { host: reviews } }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: egress, namespace: default }
spec:
  outboundTrafficPolicy:
    mode: ALLOW_ANY
    egressProxy:
      host: proxy.example.com
      port: { number: 3128 }
`;
    const ds = analyze('deprecation.fields', yaml);
    assert.deepEqual(where(ds), [
      `TRL0002 VirtualService default/slow spec.http[0].fault.delay.percent ${FILE}:${lineOf(yaml, 'percent: 50')}`,
      `TRL0002 Sidecar default/egress spec.outboundTrafficPolicy.egressProxy ${FILE}:${lineOf(yaml, 'host: proxy.example.com')}`,
    ]);
    assert.match(ds[0]!.message, /fault\.delay\.percent is deprecated: write fault\.delay\.percentage\.value: 50 instead/);
    assert.match(ds[1]!.message, /remove it and send external traffic through a ServiceEntry and an egress Gateway/);
  });

  test('percentage and a Sidecar without egressProxy are fine', () => {
    assert.deepEqual(analyze('deprecation.fields', `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: slow, namespace: default }
spec:
  hosts: [reviews]
  http:
  - fault: { delay: { fixedDelay: 1s, percentage: { value: 50 } } }
    route: [{ destination: { host: reviews } }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: egress, namespace: default }
spec:
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
`), []);
  });
});
