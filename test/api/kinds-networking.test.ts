/** Schemas of DestinationRule, Gateway, Sidecar, MeshConfig, and the kinds Trellis rejects by name. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseYaml } from '../../src/api/load.js';
import { errorsOf, loadSample, loadSpec, runTable, type Row } from './kind-table.js';

const NET = 'networking.istio.io/v1';
const host = 'reviews.prod.svc.cluster.local';
const tp = (trafficPolicy: unknown) => ({ host, trafficPolicy });
const lb = (loadBalancer: unknown) => tp({ loadBalancer });
const server = (s: Record<string, unknown>) => ({ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'], ...s });
const gw = (...servers: unknown[]) => ({ selector: { istio: 'ingressgateway' }, servers });
const https = (tls: unknown) => gw(server({ port: { number: 443, name: 'https', protocol: 'HTTPS' }, tls }));

const destinationRule: Row[] = [
  { name: 'subsets with their own policy', spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }] } },
  { name: 'a wildcard host with SIMPLE TLS', spec: { host: '*.example.com', trafficPolicy: { tls: { mode: 'SIMPLE', sni: 'api.example.com' } } } },
  { name: 'sticky sessions by cookie', spec: lb({ consistentHash: { httpCookie: { name: 'user', ttl: '0s' }, ringHash: { minimumRingSize: 1024 } } }) },
  { name: 'a circuit breaker', spec: tp({
    connectionPool: { tcp: { maxConnections: 100, connectTimeout: '30ms', tcpKeepalive: { time: '7200s', interval: '75s' } }, http: { http2MaxRequests: 1000, maxRequestsPerConnection: 10 } },
    outlierDetection: { consecutive5xxErrors: 7, interval: '5m', baseEjectionTime: '15m', maxEjectionPercent: 50 },
  }) },
  { name: 'per-port settings and client mTLS', spec: tp({ portLevelSettings: [{ port: { number: 80 }, loadBalancer: { simple: 'LEAST_REQUEST' } }, { port: { number: 9443 }, tls: { mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem' } }] }) },
  { name: 'locality distribution', spec: lb({ localityLbSetting: { enabled: true, distribute: [{ from: 'us-west/zone1/*', to: { 'us-west/zone1/*': 80, 'us-west/zone2/*': 20 } }] } }) },
  { name: 'maglev with a prime table size', spec: lb({ consistentHash: { useSourceIp: true, maglev: { tableSize: 65537 } } }) },
  { name: 'a workloadSelector exported only here', spec: { host, workloadSelector: { matchLabels: { app: 'a' } }, exportTo: ['.'], trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } } },
  { name: 'no host', spec: { trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }, code: 'TRL0106', field: 'spec.host' },
  { name: 'a host with an underscore', spec: { host: 'bad_host.example.com' }, code: 'TRL0106', field: 'spec.host' },
  { name: 'a misspelled field', spec: lb({ simpel: 'RANDOM' }), code: 'TRL1002', field: 'spec.trafficPolicy.loadBalancer.simpel' },
  { name: 'an unknown algorithm', spec: lb({ simple: 'FASTEST' }), code: 'TRL0106', field: 'spec.trafficPolicy.loadBalancer.simple' },
  { name: 'simple and consistentHash together', spec: lb({ simple: 'RANDOM', consistentHash: { useSourceIp: true } }), code: 'TRL0106', field: 'spec.trafficPolicy.loadBalancer.consistentHash' },
  { name: 'two hash keys', spec: lb({ consistentHash: { useSourceIp: true, httpHeaderName: 'x-user' } }), code: 'TRL0106', field: 'spec.trafficPolicy.loadBalancer.consistentHash.useSourceIp' },
  { name: 'a maglev table size that is not prime', spec: lb({ consistentHash: { useSourceIp: true, maglev: { tableSize: 1000 } } }), code: 'TRL0106', field: 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize' },
  { name: 'locality weights that do not add up to 100', spec: lb({ localityLbSetting: { distribute: [{ from: 'us-west/*', to: { 'us-west/*': 60, 'us-east/*': 30 } }] } }), code: 'TRL0106', field: 'spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to' },
  { name: 'distribute and failover together', spec: lb({ localityLbSetting: { distribute: [{ from: 'a', to: { a: 100 } }], failover: [{ from: 'a', to: 'b' }] } }), code: 'TRL0106', field: 'spec.trafficPolicy.loadBalancer.localityLbSetting.failover' },
  { name: 'warmup without duration', spec: lb({ warmup: { minimumPercent: 10 } }), code: 'TRL0106', field: 'spec.trafficPolicy.loadBalancer.warmup.duration' },
  { name: 'an empty traffic policy', spec: tp({}), code: 'TRL0106', field: 'spec.trafficPolicy' },
  { name: 'an empty connection pool', spec: tp({ connectionPool: {} }), code: 'TRL0106', field: 'spec.trafficPolicy.connectionPool' },
  { name: 'a negative connection limit', spec: tp({ connectionPool: { tcp: { maxConnections: -1 } } }), code: 'TRL0106', field: 'spec.trafficPolicy.connectionPool.tcp.maxConnections' },
  { name: 'a connect timeout without unit', spec: tp({ connectionPool: { tcp: { connectTimeout: '10' } } }), code: 'TRL0106', field: 'spec.trafficPolicy.connectionPool.tcp.connectTimeout' },
  { name: 'UPGRADE with useClientProtocol', spec: tp({ connectionPool: { http: { h2UpgradePolicy: 'UPGRADE', useClientProtocol: true } } }), code: 'TRL0106', field: 'spec.trafficPolicy.connectionPool.http.useClientProtocol' },
  { name: 'local-origin failures without splitting', spec: tp({ outlierDetection: { consecutiveLocalOriginFailures: 3 } }), code: 'TRL0106', field: 'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures' },
  { name: 'a max ejection of 150%', spec: tp({ outlierDetection: { maxEjectionPercent: 150 } }), code: 'TRL0106', field: 'spec.trafficPolicy.outlierDetection.maxEjectionPercent' },
  { name: 'MUTUAL without a client certificate', spec: tp({ tls: { mode: 'MUTUAL', privateKey: '/k.pem' } }), code: 'TRL0106', field: 'spec.trafficPolicy.tls.clientCertificate' },
  { name: 'credentialName with certificate files', spec: tp({ tls: { mode: 'SIMPLE', credentialName: 'c', caCertificates: '/ca.pem' } }), code: 'TRL0106', field: 'spec.trafficPolicy.tls.caCertificates' },
  { name: 'an unknown TLS mode', spec: tp({ tls: { mode: 'STRICT' } }), code: 'TRL0106', field: 'spec.trafficPolicy.tls.mode' },
  { name: 'a port-level policy without a port', spec: tp({ portLevelSettings: [{ tls: { mode: 'SIMPLE' } }] }), code: 'TRL0106', field: 'spec.trafficPolicy.portLevelSettings[0].port' },
  { name: 'a port-level policy with nothing in it', spec: tp({ portLevelSettings: [{ port: { number: 80 } }] }), code: 'TRL0106', field: 'spec.trafficPolicy.portLevelSettings[0]' },
  { name: 'tunnel and proxyProtocol together', spec: tp({ tunnel: { targetHost: 'proxy.example.com', targetPort: 3128 }, proxyProtocol: { version: 'V2' } }), code: 'TRL0106', field: 'spec.trafficPolicy.proxyProtocol' },
  { name: 'duplicate subset names', spec: { host, subsets: [{ name: 'v1' }, { name: 'v1' }] }, code: 'TRL0106', field: 'spec.subsets[1].name' },
  { name: 'a subset name that is not a DNS label', spec: { host, subsets: [{ name: 'V1_beta' }] }, code: 'TRL0106', field: 'spec.subsets[0].name' },
  { name: 'exportTo * with a namespace', spec: { host, exportTo: ['*', 'ns'] }, code: 'TRL0106', field: 'spec.exportTo[0]' },
  { name: 'a workloadSelector exported everywhere', spec: { host, workloadSelector: { matchLabels: { app: 'a' } }, exportTo: ['*'] }, code: 'TRL0106', field: 'spec.exportTo' },
];

const gateway: Row[] = [
  { name: 'plain HTTP on port 80', spec: gw(server({})) },
  { name: 'HTTPS with a credential and an HTTP redirect', spec: gw(
    server({ hosts: ['./bookinfo.example.com'], tls: { httpsRedirect: true } }),
    server({ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['bookinfo/*.example.com'], tls: { mode: 'SIMPLE', credentialName: 'bookinfo-cert' } }),
  ) },
  { name: 'TLS passthrough', spec: gw(server({ port: { number: 443, name: 'tls', protocol: 'TLS' }, hosts: ['*/db.example.com'], tls: { mode: 'PASSTHROUGH' } })) },
  { name: 'MUTUAL with certificate files', spec: https({ mode: 'MUTUAL', serverCertificate: '/s.pem', privateKey: '/k.pem', caCertificates: '/ca.pem' }) },
  { name: 'no servers', spec: gw(), code: 'TRL0106', field: 'spec.servers' },
  { name: 'a server without hosts', spec: gw(server({ hosts: [] })), code: 'TRL0106', field: 'spec.servers[0].hosts' },
  { name: 'a short host name', spec: gw(server({ hosts: ['reviews'] })), code: 'TRL0106', field: 'spec.servers[0].hosts[0]' },
  { name: 'a partial wildcard', spec: gw(server({ hosts: ['*foo.example.com'] })), code: 'TRL0106', field: 'spec.servers[0].hosts[0]' },
  { name: 'a namespace that is not a name', spec: gw(server({ hosts: ['Bad_NS/foo.example.com'] })), code: 'TRL0106', field: 'spec.servers[0].hosts[0]' },
  { name: 'an unknown protocol', spec: gw(server({ port: { number: 80, name: 'http', protocol: 'SPDY' } })), code: 'TRL0106', field: 'spec.servers[0].port.protocol' },
  { name: 'a port out of range', spec: gw(server({ port: { number: 70000, name: 'http', protocol: 'HTTP' } })), code: 'TRL0106', field: 'spec.servers[0].port.number' },
  { name: 'a port without name', spec: gw(server({ port: { number: 80, protocol: 'HTTP' } })), code: 'TRL0106', field: 'spec.servers[0].port.name' },
  { name: 'a targetPort', spec: gw(server({ port: { number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 } })), code: 'TRL0106', field: 'spec.servers[0].port.targetPort' },
  { name: 'duplicate port names', spec: gw(server({}), server({ port: { number: 8080, name: 'http', protocol: 'HTTP' } })), code: 'TRL0106', field: 'spec.servers[1].port.name' },
  { name: 'duplicate server names', spec: gw(server({ name: 'web' }), server({ name: 'web', port: { number: 8080, name: 'alt', protocol: 'HTTP' } })), code: 'TRL0106', field: 'spec.servers[1].name' },
  { name: 'HTTPS without tls', spec: gw(server({ port: { number: 443, name: 'https', protocol: 'HTTPS' } })), code: 'TRL0106', field: 'spec.servers[0].tls' },
  { name: 'SIMPLE TLS on a plain HTTP port', spec: gw(server({ tls: { mode: 'SIMPLE', credentialName: 'c' } })), code: 'TRL0106', field: 'spec.servers[0].tls' },
  { name: 'SIMPLE without a certificate', spec: https({ mode: 'SIMPLE' }), code: 'TRL0106', field: 'spec.servers[0].tls.serverCertificate' },
  { name: 'MUTUAL without a CA', spec: https({ mode: 'MUTUAL', serverCertificate: '/s.pem', privateKey: '/k.pem' }), code: 'TRL0106', field: 'spec.servers[0].tls.caCertificates' },
  { name: 'ISTIO_MUTUAL with a credential', spec: https({ mode: 'ISTIO_MUTUAL', credentialName: 'c' }), code: 'TRL0106', field: 'spec.servers[0].tls.credentialName' },
  { name: 'two certificate sources', spec: https({ mode: 'SIMPLE', credentialName: 'c', serverCertificate: '/s.pem', privateKey: '/k.pem' }), code: 'TRL0106', field: 'spec.servers[0].tls' },
  { name: 'a bind that is not an IP', spec: gw(server({ bind: 'localhost' })), code: 'TRL0106', field: 'spec.servers[0].bind' },
];

const sidecar: Row[] = [
  { name: 'egress to this namespace and istio-system', spec: { egress: [{ hosts: ['./*', 'istio-system/*'] }] } },
  { name: 'REGISTRY_ONLY for one workload', spec: { workloadSelector: { labels: { app: 'ratings' } }, outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } } },
  { name: 'an ingress listener with a default endpoint', spec: { ingress: [{ port: { number: 9080, protocol: 'HTTP', name: 'http' }, defaultEndpoint: '127.0.0.1:8080' }] } },
  { name: 'an egress proxy under ALLOW_ANY', spec: { outboundTrafficPolicy: { mode: 'ALLOW_ANY', egressProxy: { host: 'proxy.example.com', port: { number: 3128 } } } } },
  { name: 'an empty spec', spec: {}, code: 'TRL0106', field: 'spec' },
  { name: 'an egress host without namespace', spec: { egress: [{ hosts: ['reviews.default.svc.cluster.local'] }] }, code: 'TRL0106', field: 'spec.egress[0].hosts[0]' },
  { name: 'a short egress host', spec: { egress: [{ hosts: ['./reviews'] }] }, code: 'TRL0106', field: 'spec.egress[0].hosts[0]' },
  { name: 'an egress listener without hosts', spec: { egress: [{ hosts: [] }] }, code: 'TRL0106', field: 'spec.egress[0].hosts' },
  { name: 'a catch-all egress listener that is not last', spec: { egress: [{ hosts: ['./*'] }, { port: { number: 80, protocol: 'HTTP' }, hosts: ['./*'] }] }, code: 'TRL0106', field: 'spec.egress[0]' },
  { name: 'an unknown outbound mode', spec: { outboundTrafficPolicy: { mode: 'DENY_ALL' } }, code: 'TRL0106', field: 'spec.outboundTrafficPolicy.mode' },
  { name: 'an egress proxy under REGISTRY_ONLY', spec: { outboundTrafficPolicy: { mode: 'REGISTRY_ONLY', egressProxy: { host: 'proxy.example.com', port: { number: 3128 } } } }, code: 'TRL0106', field: 'spec.outboundTrafficPolicy.egressProxy' },
  { name: 'a default endpoint on another host', spec: { ingress: [{ port: { number: 9080, protocol: 'HTTP' }, defaultEndpoint: '10.0.0.1:8080' }] }, code: 'TRL0106', field: 'spec.ingress[0].defaultEndpoint' },
  { name: 'duplicate ingress ports', spec: { ingress: [{ port: { number: 80, protocol: 'HTTP' } }, { port: { number: 80, protocol: 'TCP' } }] }, code: 'TRL0106', field: 'spec.ingress[1].port.number' },
  { name: 'an ingress port without protocol', spec: { ingress: [{ port: { number: 80 } }] }, code: 'TRL0106', field: 'spec.ingress[0].port.protocol' },
  { name: 'a wildcard in the workload selector', spec: { workloadSelector: { labels: { app: '*' } }, outboundTrafficPolicy: { mode: 'ALLOW_ANY' } }, code: 'TRL0106', field: 'spec.workloadSelector.labels.app' },
];

/** Istio's default TEXT access log format (its MeshConfig documentation). */
const ISTIO_TEXT_FORMAT = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

const meshConfig: Row[] = [
  { name: 'an empty spec (every default)', spec: {} },
  { name: 'the common settings', spec: {
    rootNamespace: 'istio-system', trustDomain: 'cluster.local', trustDomainAliases: ['old.example.org'],
    outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' }, pathNormalization: { normalization: 'MERGE_SLASHES' },
    defaultConfig: { holdApplicationUntilProxyStarts: true, drainDuration: '45s', terminationDrainDuration: '5s', concurrency: 2, tracing: { sampling: 10 } },
    enableTracing: true, defaultProviders: { tracing: ['zipkin'], accessLogging: ['file'] },
    extensionProviders: [
      { name: 'zipkin', zipkin: { service: 'zipkin.istio-system.svc.cluster.local', port: 9411 } },
      { name: 'file', envoyFileAccessLog: { path: '/dev/stdout', logFormat: { labels: { path: '%REQ(:PATH)%' } } } },
      { name: 'ext-authz', envoyExtAuthzHttp: { service: 'authz.foo.svc.cluster.local', port: 8000, includeRequestHeadersInCheck: ['x-ext-authz'] } },
    ],
    accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON', enableAutoMtls: true, connectTimeout: '10s', protocolDetectionTimeout: '0s',
    localityLbSetting: { enabled: true, failover: [{ from: 'us-east', to: 'eu-west' }] },
  } },
  { name: 'an unknown encoding', spec: { accessLogEncoding: 'XML' }, code: 'TRL0106', field: 'spec.accessLogEncoding' },
  { name: "Istio's default TEXT access log format", spec: { accessLogFile: '/dev/stdout', accessLogFormat: ISTIO_TEXT_FORMAT } },
  { name: 'a JSON access log format with typed fields and literals', spec: { accessLogEncoding: 'JSON', accessLogFormat: '{"code":"%RESPONSE_CODE%","ua":"%REQ(USER-AGENT):20%","v":1,"on":true,"none":null}' } },
  { name: 'an access log format with an operator Envoy has and Trellis does not', spec: { accessLogFormat: '%RESPONSE_CODE% %DYNAMIC_METADATA(istio.mixer:status)%' }, code: 'TRL0106', field: 'spec.accessLogFormat' },
  { name: 'an access log format with a stray %', spec: { accessLogFormat: '100% %RESPONSE_CODE%' }, code: 'TRL0106', field: 'spec.accessLogFormat' },
  { name: 'a REQ operator without its header', spec: { accessLogFormat: '%REQ%' }, code: 'TRL0106', field: 'spec.accessLogFormat' },
  { name: 'a START_TIME conversion Trellis does not format', spec: { accessLogFormat: '%START_TIME(%A)%' }, code: 'TRL0106', field: 'spec.accessLogFormat' },
  { name: 'a JSON access log format that is not an object', spec: { accessLogEncoding: 'JSON', accessLogFormat: '[%RESPONSE_CODE%]' }, code: 'TRL0106', field: 'spec.accessLogFormat' },
  { name: 'a JSON access log format with a nested object', spec: { accessLogFormat: '{"a":{"b":"%RESPONSE_CODE%"}}' }, code: 'TRL0106', field: 'spec.accessLogFormat' },
  { name: 'a trust domain with an underscore', spec: { trustDomain: 'my_domain.local' }, code: 'TRL0106', field: 'spec.trustDomain' },
  { name: 'a root namespace that is not a name', spec: { rootNamespace: 'Istio System' }, code: 'TRL0106', field: 'spec.rootNamespace' },
  { name: 'an unknown normalization', spec: { pathNormalization: { normalization: 'LOWERCASE' } }, code: 'TRL0106', field: 'spec.pathNormalization.normalization' },
  { name: 'a connect timeout over an hour', spec: { connectTimeout: '2h' }, code: 'TRL0106', field: 'spec.connectTimeout' },
  { name: 'a drain duration in milliseconds', spec: { defaultConfig: { drainDuration: '1500ms' } }, code: 'TRL0106', field: 'spec.defaultConfig.drainDuration' },
  { name: 'a negative concurrency', spec: { defaultConfig: { concurrency: -1 } }, code: 'TRL0106', field: 'spec.defaultConfig.concurrency' },
  { name: 'a ProxyConfig field outside the subset', spec: { defaultConfig: { image: { imageType: 'distroless' } } }, code: 'TRL1002', field: 'spec.defaultConfig.image' },
  { name: 'a Kubernetes-only field', spec: { ingressClass: 'istio' }, code: 'TRL1002', field: 'spec.ingressClass' },
  { name: 'a provider of two kinds', spec: { extensionProviders: [{ name: 'p', zipkin: { service: 'z', port: 9411 }, opentelemetry: { service: 'o', port: 4317 } }] }, code: 'TRL0106', field: 'spec.extensionProviders[0].opentelemetry' },
  { name: 'a provider of no kind', spec: { extensionProviders: [{ name: 'p' }] }, code: 'TRL0106', field: 'spec.extensionProviders[0]' },
  { name: 'two providers of one name', spec: { extensionProviders: [{ name: 'p', prometheus: {} }, { name: 'p', prometheus: {} }] }, code: 'TRL0106', field: 'spec.extensionProviders[1].name' },
];

const retry = (retries: unknown) => ({ hosts: ['reviews'], http: [{ retries, route: [{ destination: { host: 'reviews' } }] }] });
const virtualService: Row[] = [
  { name: "Envoy's retry conditions and status codes", spec: retry({ attempts: 3, retryOn: 'gateway-error, connect-failure,refused-stream,reset-before-request,retriable-status-codes,503,unavailable' }) },
  { name: 'a retry condition Envoy does not have', spec: retry({ attempts: 3, retryOn: '5xx,server-error' }), code: 'TRL0106', field: 'spec.http[0].retries.retryOn' },
  { name: 'a status code out of range', spec: retry({ attempts: 3, retryOn: '5xx,999' }), code: 'TRL0106', field: 'spec.http[0].retries.retryOn' },
  { name: 'a JWT claim key keeps its case', spec: { hosts: ['reviews'], http: [{ match: [{ headers: { '@request.auth.claims.userId': { exact: 'u1' } } }], route: [{ destination: { host: 'reviews' } }] }] } },
  { name: 'a header name must be lowercase', spec: { hosts: ['reviews'], http: [{ match: [{ headers: { 'X-User': { exact: 'u1' } } }], route: [{ destination: { host: 'reviews' } }] }] }, code: 'TRL0106', field: 'spec.http[0].match[0].headers.X-User' },
];

runTable(NET, 'VirtualService', virtualService);
runTable(NET, 'DestinationRule', destinationRule);
runTable(NET, 'Gateway', gateway);
runTable(NET, 'Sidecar', sidecar);
runTable('trellis.dev/v1alpha1', 'MeshConfig', meshConfig);

test('MeshConfig is cluster-scoped', () => {
  const r = loadSpec('trellis.dev/v1alpha1', 'MeshConfig', { trustDomain: 'example.org' });
  assert.deepEqual(errorsOf(r), []);
  assert.equal(r.resources[0]?.metadata.namespace, '');
  assert.equal(r.resources[0]?.ref, 'MeshConfig mesh');
});

test('fields Trellis does not enforce yet are accepted with a warning (TRL1005)', () => {
  const warned = (apiVersion: string, kind: string, spec: unknown) => {
    const r = loadSpec(apiVersion, kind, spec);
    assert.deepEqual(errorsOf(r), []);
    return r.diagnostics.filter((d) => d.code === 'TRL1005' && d.level === 'warning').map((d) => d.field);
  };
  assert.deepEqual(warned(NET, 'DestinationRule', { host, trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN', warmup: { duration: '60s' } } }, subsets: [{ name: 'v1', trafficPolicy: { tunnel: { targetHost: '10.0.0.1', targetPort: 8080 } } }] }),
    ['spec.subsets[0].trafficPolicy.tunnel']);
  assert.deepEqual(warned(NET, 'Sidecar', { egress: [{ hosts: ['./*'] }], outboundTrafficPolicy: { mode: 'REGISTRY_ONLY' } }), ['spec.egress']);
  assert.deepEqual(warned(NET, 'Gateway', https({ mode: 'SIMPLE', credentialName: 'c', verifyCertificateSpki: ['abc'] })), ['spec.servers[0].tls.verifyCertificateSpki']);
  assert.deepEqual(warned(NET, 'DestinationRule', tp({ loadBalancer: { simple: 'LEAST_REQUEST' }, connectionPool: { tcp: { maxConnections: 1 } }, outlierDetection: { consecutive5xxErrors: 1 }, tls: { mode: 'ISTIO_MUTUAL' } })), []);
});

const unsupported: [apiVersion: string, kind: string, instead: RegExp][] = [
  ['networking.istio.io/v1alpha3', 'EnvoyFilter', /no Envoy/],
  ['extensions.istio.io/v1alpha1', 'WasmPlugin', /Trellis filter in TypeScript/],
  ['networking.istio.io/v1beta1', 'ProxyConfig', /MeshConfig\.defaultConfig/],
  ['networking.istio.io/v1', 'WorkloadGroup', /WorkloadEntry.*App manifest/],
  ['gateway.networking.k8s.io/v1', 'HTTPRoute', /VirtualService/],
  ['gateway.networking.k8s.io/v1', 'Gateway', /networking\.istio\.io\/v1 Gateway/],
];
for (const [apiVersion, kind, instead] of unsupported) {
  test(`${apiVersion} ${kind} is rejected by name (TRL1003) saying what to use instead`, () => {
    const r = loadSpec(apiVersion, kind, { anything: true });
    assert.equal(r.resources.length, 0);
    assert.equal(r.diagnostics.length, 1);
    const d = r.diagnostics[0]!;
    assert.equal(d.code, 'TRL1003');
    assert.equal(d.field, 'kind');
    assert.match(d.message, new RegExp(`^${kind} is not supported by Trellis: `));
    assert.match(d.message, instead);
  });
}

/** The networking samples: every DestinationRule, Gateway and Sidecar in them loads without errors. */
const networkingSamples = [
  'bookinfo/networking/destination-rule-all.yaml',
  'bookinfo/networking/destination-rule-all-mtls.yaml',
  'bookinfo/networking/destination-rule-reviews.yaml',
  'bookinfo/networking/egress-rule-google-apis.yaml',
  'bookinfo/networking/fault-injection-details-v1.yaml',
  'bookinfo/networking/bookinfo-gateway.yaml',
  'bookinfo/networking/certmanager-gateway.yaml',
  'helloworld/helloworld-gateway.yaml',
  'httpbin/httpbin-gateway.yaml',
];
for (const file of networkingSamples) {
  test(`the Istio sample ${file} loads its DestinationRules and Gateways without errors`, () => {
    const r = loadSample(file);
    const mine = (ref: string | undefined) => /^(DestinationRule|Gateway|Sidecar) /.test(ref ?? '');
    assert.deepEqual(r.diagnostics.filter((d) => d.level === 'error' && mine(d.resource)).map((d) => `${d.code} ${d.resource} ${d.field}: ${d.message}`), []);
    assert.ok(r.resources.some((x) => mine(x.ref)), 'the sample holds at least one of these kinds');
  });
}

test('the best-practices Gateways, given an apiVersion, need certificates for SIMPLE and MUTUAL', () => {
  const r = parseYaml([
    'apiVersion: networking.istio.io/v1',
    'kind: Gateway',
    'metadata: {name: guestgateway}',
    'spec:',
    '  selector: {istio: ingressgateway}',
    '  servers:',
    '  - port: {number: 443, name: https, protocol: HTTPS}',
    '    hosts: ["*.example.com"]',
    '    tls: {mode: SIMPLE}',
  ].join('\n'), 'gw.yaml');
  const d = r.diagnostics.find((x) => x.field === 'spec.servers[0].tls.serverCertificate');
  assert.ok(d, JSON.stringify(r.diagnostics));
  assert.deepEqual(d.position, { file: 'gw.yaml', line: 9, col: 10 });
});
