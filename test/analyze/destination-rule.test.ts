/**
 * The DestinationRule, Service and ServiceEntry analyzers
 * (src/analyze/analyzers/destination-rule.ts and its dr-*.ts modules): for
 * each, YAML that must be reported (code, resource, field, line, and a
 * message that says what to do) and YAML that must not.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzerIn, lineOf, runOne, where } from './helpers.js';
import { destinationRuleAnalyzers } from '../../src/analyze/analyzers/destination-rule.js';
import { analyzerNamed } from '../../src/analyze/registry.js';

const FILE = 'mesh.yaml';

const analyzer = (name: string) => analyzerIn(destinationRuleAnalyzers, name);
const analyze = (name: string, yaml: string) => runOne(analyzer(name), yaml, { file: FILE });

test('the five analyzers are registered under stable names, each with its Istio counterpart', () => {
  const expected: Record<string, string> = {
    'destinationrule.ca-certificates': 'destinationrule.CaCertificateAnalyzer',
    'destinationrule.subsets': 'destinationrule.SubsetSelectPodAnalyzer',
    'service.port-names': 'service.PortNameAnalyzer',
    'serviceentry.addresses': 'serviceentry.Analyzer',
    'serviceentry.conflicting-protocols': 'serviceentry.ConflictingServiceEntryProtocolAnalyzer',
  };
  assert.deepEqual(destinationRuleAnalyzers.map((a) => a.name).sort(), Object.keys(expected).sort());
  for (const [name, istio] of Object.entries(expected)) {
    const a = analyzerNamed(name);
    assert.ok(a, `${name} is in the registry`);
    assert.deepEqual(a.istio, [istio]);
    assert.ok(a.reads.length > 0 && a.messages.length > 0 && a.description.length > 20);
  }
});

describe('destinationrule.ca-certificates (TRL0128, TRL0129)', () => {
  const dr = (tls: string, extra = '') => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: db
  namespace: prod
spec:
  host: db.example.com
${extra}  trafficPolicy:
    tls:
${tls}`;

  test('SIMPLE without caCertificates at the destination level: TRL0128 on spec.trafficPolicy.tls, saying what Trellis verifies against', () => {
    const y = dr('      mode: SIMPLE\n      sni: db.example.com\n');
    const ds = analyze('destinationrule.ca-certificates', y);
    assert.deepEqual(where(ds), [`TRL0128 DestinationRule prod/db spec.trafficPolicy.tls ${FILE}:${lineOf(y, 'mode: SIMPLE')}`]);
    assert.match(ds[0]!.message, /tls mode SIMPLE to db\.example\.com/);
    assert.match(ds[0]!.message, /public root CAs only/);
    assert.match(ds[0]!.message, /set caCertificates/);
  });

  test('MUTUAL without caCertificates at port level: TRL0129 naming the port', () => {
    const y = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: db
  namespace: prod
spec:
  host: db.example.com
  trafficPolicy:
    portLevelSettings:
    - port:
        number: 5432
      tls:
        mode: MUTUAL
        clientCertificate: /etc/certs/client.pem
        privateKey: /etc/certs/client-key.pem
`;
    const ds = analyze('destinationrule.ca-certificates', y);
    assert.deepEqual(where(ds), [`TRL0129 DestinationRule prod/db spec.trafficPolicy.portLevelSettings[0].tls ${FILE}:${lineOf(y, 'mode: MUTUAL')}`]);
    assert.match(ds[0]!.message, /tls mode MUTUAL to db\.example\.com port 5432 sets no caCertificates/);
  });

  test('insecureSkipVerify: the message says verification is off', () => {
    const ds = analyze('destinationrule.ca-certificates', dr('      mode: SIMPLE\n      insecureSkipVerify: true\n'));
    assert.equal(ds.length, 1);
    assert.equal(ds[0]!.code, 'TRL0128');
    assert.match(ds[0]!.message, /insecureSkipVerify: true turns verification off/);
  });

  test('credentialName counts only with a workloadSelector, as in Istio', () => {
    const without = analyze('destinationrule.ca-certificates', dr('      mode: SIMPLE\n      credentialName: db-cert\n'));
    assert.deepEqual(without.map((d) => d.code), ['TRL0128']);
    assert.match(without[0]!.message, /credentialName counts only in a DestinationRule with a workloadSelector/);
    const selected = analyze('destinationrule.ca-certificates', dr('      mode: SIMPLE\n      credentialName: db-cert\n', '  workloadSelector:\n    matchLabels:\n      app: api\n'));
    assert.deepEqual(selected, []);
  });

  test('a subset\'s own traffic policy is checked too (Trellis applies it)', () => {
    const y = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: db
  namespace: prod
spec:
  host: db.example.com
  subsets:
  - name: v2
    labels:
      version: v2
    trafficPolicy:
      tls:
        mode: SIMPLE
`;
    const ds = analyze('destinationrule.ca-certificates', y);
    assert.deepEqual(where(ds), [`TRL0128 DestinationRule prod/db spec.subsets[0].trafficPolicy.tls ${FILE}:${lineOf(y, 'mode: SIMPLE')}`]);
    assert.match(ds[0]!.message, /db\.example\.com \(subset v2\)/);
  });

  test('nothing for caCertificates set, ISTIO_MUTUAL, DISABLE, or no TLS at all', () => {
    assert.deepEqual(analyze('destinationrule.ca-certificates', dr('      mode: SIMPLE\n      caCertificates: /etc/certs/root.pem\n')), []);
    assert.deepEqual(analyze('destinationrule.ca-certificates', dr('      mode: ISTIO_MUTUAL\n')), []);
    assert.deepEqual(analyze('destinationrule.ca-certificates', dr('      mode: DISABLE\n')), []);
    const bare = 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: bare\nspec:\n  host: db.example.com\n';
    assert.deepEqual(analyze('destinationrule.ca-certificates', bare), []);
  });
});

describe('destinationrule.subsets (TRL0173, TRL0174)', () => {
  const registry = `apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: shop
spec:
  selector:
    app: reviews
  ports:
  - name: http
    port: 9080
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v1
  namespace: shop
  labels:
    app: reviews
    version: v1
spec:
  containers:
  - name: app
    image: reviews
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v2
  namespace: shop
  labels:
    app: reviews
    version: v2
    topology.kubernetes.io/region: us-east
spec:
  containers:
  - name: app
    image: reviews
`;
  const rule = (ns: string, host: string, subsets = '', extra = '') => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: ${ns}
spec:
  host: ${host}
${extra}${subsets ? `  subsets:\n${subsets}` : ''}`;

  test('a host no service has: TRL0174 on spec.host', () => {
    const y = registry + rule('shop', 'ratings.shop.svc.cluster.local');
    const ds = analyze('destinationrule.subsets', y);
    assert.deepEqual(where(ds), [`TRL0174 DestinationRule shop/reviews spec.host ${FILE}:${lineOf(y, 'host: ratings')}`]);
    assert.match(ds[0]!.message, /host ratings\.shop\.svc\.cluster\.local matches no service visible from namespace shop/);
    assert.match(ds[0]!.message, /fix the host/);
  });

  test('a short host resolves in the rule\'s namespace', () => {
    assert.deepEqual(analyze('destinationrule.subsets', registry + rule('shop', 'reviews')), []);
    const elsewhere = analyze('destinationrule.subsets', registry + rule('other', 'reviews'));
    assert.deepEqual(elsewhere.map((d) => d.code), ['TRL0174']);
    assert.match(elsewhere[0]!.message, /host reviews matches no service visible from namespace other/);
  });

  test('a service exported away from the rule\'s namespace counts only where the rule is exported too', () => {
    const hidden = registry.replace('  namespace: shop\nspec:\n  selector:', '  namespace: shop\n  annotations:\n    networking.istio.io/exportTo: front\nspec:\n  selector:');
    const host = 'reviews.shop.svc.cluster.local';
    assert.deepEqual(analyze('destinationrule.subsets', hidden + rule('ops', host, '', '  exportTo:\n  - "."\n')).map((d) => d.code), ['TRL0174']);
    assert.deepEqual(analyze('destinationrule.subsets', hidden + rule('ops', host, '', '  exportTo:\n  - front\n')), []);
  });

  test('a subset whose labels select no endpoint: TRL0173 on its labels; the others pass', () => {
    const subsets = '  - name: v1\n    labels:\n      version: v1\n  - name: v3\n    labels:\n      version: v3\n  - name: all\n';
    const y = registry + rule('shop', 'reviews', subsets);
    const ds = analyze('destinationrule.subsets', y);
    assert.deepEqual(where(ds), [`TRL0173 DestinationRule shop/reviews spec.subsets[1].labels ${FILE}:${lineOf(y, 'version: v3', lineOf(y, 'kind: DestinationRule'))}`]);
    assert.match(ds[0]!.message, /subset v3 \(version=v3\) selects no endpoint of reviews\.shop\.svc\.cluster\.local/);
    assert.match(ds[0]!.message, /fix the labels/);
  });

  test('topology labels: an unknown locality is not held against a subset, a known one is compared, an empty value never matches', () => {
    const subsets = [
      '  - name: west', '    labels:', '      topology.kubernetes.io/zone: us-west-1a',
      '  - name: east-v2', '    labels:', '      version: v2', '      topology.kubernetes.io/region: us-east',
      '  - name: west-v2', '    labels:', '      version: v2', '      topology.kubernetes.io/region: us-west',
      '  - name: empty', '    labels:', '      topology.kubernetes.io/region: ""', '',
    ].join('\n');
    const ds = analyze('destinationrule.subsets', registry + rule('shop', 'reviews', subsets));
    assert.deepEqual(ds.map((d) => `${d.code} ${d.field}`), ['TRL0173 spec.subsets[2].labels', 'TRL0173 spec.subsets[3].labels']);
  });

  test('a ServiceEntry\'s subsets are matched against the WorkloadEntries its selector picks', () => {
    const y = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: vm-api
  namespace: vms
spec:
  hosts:
  - api.vms.internal
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - name: http
    number: 80
    protocol: HTTP
  workloadSelector:
    labels:
      app: api
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: vm-1
  namespace: vms
spec:
  address: 10.0.0.5
  labels:
    app: api
    track: stable
${rule('vms', 'api.vms.internal', '  - name: stable\n    labels:\n      track: stable\n  - name: canary\n    labels:\n      track: canary\n')}`;
    const ds = analyze('destinationrule.subsets', y);
    assert.deepEqual(ds.map((d) => `${d.code} ${d.resource} ${d.field}`), ['TRL0173 DestinationRule vms/reviews spec.subsets[1].labels']);
  });
});

describe('service.port-names (TRL0118, TRL0150)', () => {
  const svc = (name: string, ns: string, ports: string, extra = '', labels = '') => `---
apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: ${ns}
${labels}spec:
${extra}  ports:
${ports}`;

  test('an unnamed port and a port named outside the convention: TRL0118 each, saying Trellis carries them as HTTP/1.1', () => {
    const y = svc('api', 'shop', '  - port: 8080\n  - name: foo\n    port: 8081\n  - name: web\n    port: 8082\n    appProtocol: quic\n');
    const ds = analyze('service.port-names', y);
    assert.deepEqual(where(ds), [
      `TRL0118 Service shop/api spec.ports[0] ${FILE}:${lineOf(y, 'port: 8080')}`,
      `TRL0118 Service shop/api spec.ports[1].name ${FILE}:${lineOf(y, 'name: foo')}`,
      `TRL0118 Service shop/api spec.ports[2].appProtocol ${FILE}:${lineOf(y, 'appProtocol: quic')}`,
    ]);
    assert.equal(ds[0]!.level, 'info');
    assert.match(ds[0]!.message, /port 8080 of api\.shop has no name and no appProtocol: Trellis carries it as HTTP\/1\.1/);
    assert.match(ds[1]!.message, /is named "foo", which is not <protocol>\[-suffix\], and has no appProtocol/);
    assert.match(ds[2]!.message, /has appProtocol "quic", which names no protocol Trellis knows/);
    assert.match(ds[1]!.message, /name it <protocol>\[-suffix\].*or set appProtocol/);
  });

  test('nothing for conventional names, appProtocol, UDP, well-known TCP ports, or a Service without ports', () => {
    const y = svc('api', 'shop', [
      '  - name: http-web', '    port: 80', '  - name: grpc', '    port: 9090', '  - name: web', '    port: 8443', '    appProtocol: https',
      '  - name: dns', '    port: 5353', '    protocol: UDP', '  - name: db', '    port: 3306', '  - name: mesh', '    port: 15008', '    appProtocol: hbone', '',
    ].join('\n')) + '---\napiVersion: v1\nkind: Service\nmetadata:\n  name: empty\n  namespace: shop\n';
    assert.deepEqual(analyze('service.port-names', y), []);
  });

  test('system namespaces and Istio\'s own Services are skipped, as Istio does', () => {
    const y = svc('dns', 'kube-system', '  - port: 53\n  - port: 8080\n')
      + svc('ingress', 'istio-system', '  - name: foo\n    port: 8080\n', '', '  labels:\n    istio: ingressgateway\n')
      + svc('istiod', 'istio-system', '  - name: foo\n    port: 8080\n', '', '  labels:\n    release: istio\n');
    assert.deepEqual(analyze('service.port-names', y), []);
    const plain = analyze('service.port-names', svc('other', 'istio-system', '  - name: foo\n    port: 8080\n'));
    assert.deepEqual(plain.map((d) => d.code), ['TRL0118']);
  });

  test('ExternalName services: a tcp or unnamed port is TRL0150 (not TRL0118); an HTTPS port passes', () => {
    const ext = '  type: ExternalName\n  externalName: db.example.com\n';
    const y = svc('db', 'shop', '  - name: tcp\n    port: 5432\n  - port: 8080\n  - name: https\n    port: 443\n', ext);
    const ds = analyze('service.port-names', y);
    assert.deepEqual(where(ds), [
      `TRL0150 Service shop/db spec.ports[0].name ${FILE}:${lineOf(y, 'name: tcp')}`,
      `TRL0150 Service shop/db spec.ports[1] ${FILE}:${lineOf(y, 'port: 8080')}`,
    ]);
    assert.equal(ds[0]!.level, 'warning');
    assert.match(ds[0]!.message, /port 5432 of ExternalName service db\.shop is named "tcp": it is opaque TCP to db\.example\.com/);
    assert.match(ds[1]!.message, /has no name: without a protocol Trellis carries it as HTTP\/1\.1/);
    assert.match(ds[0]!.message, /name it with an HTTP or TLS protocol/);
  });
});

describe('serviceentry.addresses (TRL0134)', () => {
  const se = (ports: string, extra = '') => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ext
  namespace: egress
spec:
  hosts:
  - db.example.com
  location: MESH_EXTERNAL
  resolution: DNS
${extra}  ports:
${ports}`;
  const tcpAndBare = '  - name: tcp\n    number: 5432\n    protocol: tcp\n  - name: bare\n    number: 6000\n  - name: https\n    number: 443\n    protocol: HTTPS\n';
  const mesh = (md: string) => `---
apiVersion: trellis.dev/v1alpha1
kind: MeshConfig
metadata:
  name: mesh
spec:
  defaultConfig:
    proxyMetadata:
${md}`;

  test('a TCP port and a port without protocol, no addresses: TRL0134 each', () => {
    const y = se(tcpAndBare);
    const ds = analyze('serviceentry.addresses', y);
    assert.deepEqual(where(ds), [
      `TRL0134 ServiceEntry egress/ext spec.ports[0].protocol ${FILE}:${lineOf(y, 'protocol: tcp')}`,
      `TRL0134 ServiceEntry egress/ext spec.ports[1] ${FILE}:${lineOf(y, 'name: bare')}`,
    ]);
    assert.match(ds[0]!.message, /port 5432 of db\.example\.com is tcp and the ServiceEntry has no addresses/);
    assert.match(ds[1]!.message, /has no protocol \(Istio may treat it as TCP; Trellis carries it as HTTP\/1\.1\)/);
    assert.match(ds[0]!.message, /set spec\.addresses, or give the port an HTTP or TLS protocol/);
  });

  test('nothing when the ServiceEntry has addresses, or its status lists allocated ones', () => {
    assert.deepEqual(analyze('serviceentry.addresses', se(tcpAndBare, '  addresses:\n  - 240.0.0.10\n')), []);
    const allocated = `${se(tcpAndBare)}status:\n  addresses:\n  - host: db.example.com\n    value: 240.240.0.1\n`;
    assert.deepEqual(analyze('serviceentry.addresses', allocated), []);
  });

  test('MeshConfig DNS capture with auto-allocation silences it; DNS capture alone does not', () => {
    const on = mesh('      ISTIO_META_DNS_CAPTURE: "true"\n      ISTIO_META_DNS_AUTO_ALLOCATE: "true"\n');
    assert.deepEqual(analyze('serviceentry.addresses', se(tcpAndBare) + on), []);
    const captureOnly = mesh('      ISTIO_META_DNS_CAPTURE: "true"\n');
    assert.equal(analyze('serviceentry.addresses', se(tcpAndBare) + captureOnly).length, 2);
  });
});

describe('serviceentry.conflicting-protocols (TRL0177)', () => {
  const se = (name: string, ns: string, port: string, exportTo = '') => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  hosts:
  - api.example.com
  location: MESH_EXTERNAL
  resolution: DNS
${exportTo}  ports:
${port}`;
  const https = '  - name: https\n    number: 8443\n    protocol: HTTPS\n';
  const http = '  - name: http\n    number: 8443\n    protocol: HTTP\n';

  test('one host and port, HTTPS in one and HTTP in another, both visible everywhere: TRL0177 on each', () => {
    const y = se('a', 'egress', https) + se('b', 'egress', http);
    const ds = analyze('serviceentry.conflicting-protocols', y);
    assert.deepEqual(where(ds), [
      `TRL0177 ServiceEntry egress/a spec.ports[0].protocol ${FILE}:${lineOf(y, 'protocol: HTTPS')}`,
      `TRL0177 ServiceEntry egress/b spec.ports[0].protocol ${FILE}:${lineOf(y, 'protocol: HTTP', lineOf(y, 'name: b'))}`,
    ]);
    assert.match(ds[0]!.message, /host api\.example\.com port 8443 is HTTPS here but HTTP in ServiceEntry egress\/b, both visible in every namespace/);
    assert.match(ds[0]!.message, /keeps only one definition of a host, from ServiceEntry egress\/a/);
    assert.match(ds[1]!.message, /give the port one protocol, or declare the host once/);
  });

  test('exported to "." in different namespaces: no conflict; "." against "*": a conflict in that namespace', () => {
    const dot = '  exportTo:\n  - "."\n';
    assert.deepEqual(analyze('serviceentry.conflicting-protocols', se('a', 'ns1', https, dot) + se('b', 'ns2', http, dot)), []);
    const ds = analyze('serviceentry.conflicting-protocols', se('a', 'ns1', https, dot) + se('b', 'ns2', http));
    assert.deepEqual(ds.map((d) => d.resource), ['ServiceEntry ns1/a', 'ServiceEntry ns2/b']);
    assert.match(ds[0]!.message, /both visible in namespaces ns1/);
  });

  test('the same protocol (in any case), or different ports: no conflict', () => {
    const lower = '  - name: https-2\n    number: 8443\n    protocol: https\n';
    assert.deepEqual(analyze('serviceentry.conflicting-protocols', se('a', 'egress', https) + se('b', 'egress', lower)), []);
    const other = '  - name: http\n    number: 8080\n    protocol: HTTP\n';
    assert.deepEqual(analyze('serviceentry.conflicting-protocols', se('a', 'egress', https) + se('b', 'egress', other)), []);
  });
});
