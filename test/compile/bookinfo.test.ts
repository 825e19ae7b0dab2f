import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { compile, simulate } from '../../src/compile/index.js';
import { BOOKINFO, meshFromFiles } from '../helpers/mesh.js';

const kube = join(BOOKINFO, 'platform/kube/bookinfo.yaml');
const net = (f: string) => join(BOOKINFO, 'networking', f);
const REVIEWS = 'reviews.default.svc.cluster.local';

function explain(files: string[], url: string, headers: Record<string, string> = {}, from = 'productpage-v1') {
  const m = meshFromFiles(kube, net('destination-rule-all.yaml'), ...files);
  assert.deepEqual(m.diagnostics.filter((d) => d.level === 'error'), []);
  const snap = compile(m.config, m.registry, { workload: from });
  return simulate(snap, { url, headers });
}

test('bookinfo: without a VirtualService, reviews traffic is spread over all three versions', () => {
  const s = explain([], 'http://reviews:9080/reviews/0');
  assert.equal(s.outcome, 'FORWARD');
  assert.equal(s.route?.name, 'default');
  assert.deepEqual(s.clusters.map((c) => [c.name, c.percent]), [[`outbound|9080||${REVIEWS}`, 100]]);
  assert.deepEqual(s.clusters[0]!.endpoints.map((e) => e.labels.version).sort(), ['v1', 'v2', 'v3']);
});

test('bookinfo: end-user jason goes to reviews v2, everyone else to v3', () => {
  const files = [net('virtual-service-reviews-jason-v2-v3.yaml')];
  const jason = explain(files, 'http://reviews:9080/reviews/0', { 'end-user': 'jason' });
  assert.deepEqual(jason.clusters.map((c) => [c.name, c.percent]), [[`outbound|9080|v2|${REVIEWS}`, 100]]);
  assert.equal(jason.route?.matchIndex, 0);
  assert.deepEqual(jason.clusters[0]!.endpoints.map((e) => e.labels.version), ['v2']);
  const other = explain(files, 'http://reviews:9080/reviews/0', { 'end-user': 'mary' });
  assert.deepEqual(other.clusters.map((c) => [c.name, c.percent]), [[`outbound|9080|v3|${REVIEWS}`, 100]]);
  const anonymous = explain(files, 'http://reviews:9080/reviews/0');
  assert.equal(anonymous.clusters[0]!.name, `outbound|9080|v3|${REVIEWS}`);
});

for (const [file, split] of [
  ['virtual-service-reviews-90-10.yaml', [['v1', 90], ['v2', 10]]],
  ['virtual-service-reviews-80-20.yaml', [['v1', 80], ['v2', 20]]],
  ['virtual-service-reviews-50-v3.yaml', [['v1', 50], ['v3', 50]]],
  ['virtual-service-reviews-v2-v3.yaml', [['v2', 50], ['v3', 50]]],
] as const) {
  test(`bookinfo: ${file} splits reviews ${split.map(([v, p]) => `${v} ${p}%`).join(' / ')}`, () => {
    const s = explain([net(file)], 'http://reviews:9080/');
    assert.deepEqual(s.clusters.map((c) => [c.name, c.percent]), split.map(([v, p]) => [`outbound|9080|${v}|${REVIEWS}`, p]));
    for (const c of s.clusters) assert.deepEqual(c.endpoints.map((e) => e.labels.version), [c.cluster!.subset]);
  });
}

test('bookinfo: all-v1 routes every service to its v1 subset, by short and full names alike', () => {
  for (const host of ['reviews', 'reviews.default', 'reviews.default.svc', REVIEWS]) {
    const s = explain([net('virtual-service-all-v1.yaml')], `http://${host}:9080/`);
    assert.equal(s.clusters[0]?.name, `outbound|9080|v1|${REVIEWS}`, host);
  }
  const ratings = explain([net('virtual-service-all-v1.yaml')], 'http://ratings:9080/ratings/0', {}, 'reviews-v2');
  assert.equal(ratings.clusters[0]?.name, 'outbound|9080|v1|ratings.default.svc.cluster.local');
});

test('bookinfo: the ratings fault samples inject a 500 abort and a 7s delay for jason only', () => {
  const abort = explain([net('virtual-service-ratings-test-abort.yaml')], 'http://ratings:9080/ratings/0', { 'end-user': 'jason' }, 'reviews-v2');
  assert.equal(abort.route?.action.kind, 'forward');
  assert.deepEqual(abort.route?.action.kind === 'forward' && abort.route.action.fault, { abort: { httpStatus: 500, percentage: 100 } });
  const delay = explain([net('virtual-service-ratings-test-delay.yaml')], 'http://ratings:9080/ratings/0', { 'end-user': 'jason' }, 'reviews-v2');
  assert.deepEqual(delay.route?.action.kind === 'forward' && delay.route.action.fault, { delay: { fixedDelayMs: 7000, percentage: 100 } });
  const plain = explain([net('virtual-service-ratings-test-delay.yaml')], 'http://ratings:9080/ratings/0', {}, 'reviews-v2');
  assert.equal(plain.route?.action.kind === 'forward' && plain.route.action.fault, undefined);
});

test('bookinfo: a caller gets inbound listeners for the services it serves, with identity from its service account', () => {
  const m = meshFromFiles(kube);
  const snap = compile(m.config, m.registry, { workload: 'reviews-v3' });
  assert.equal(snap.node.identity, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
  assert.deepEqual(snap.inbound.map((l) => [l.service, l.port, l.targetPort, l.protocol]), [[REVIEWS, 9080, 9080, 'HTTP']]);
  assert.deepEqual(snap.outbound.http.map((t) => t.port), [9080]);
  assert.ok(snap.outbound.http[0]!.virtualHosts.some((v) => v.name === `${REVIEWS}:9080`));
});

test('bookinfo: the ingress gateway routes /productpage to productpage', () => {
  const m = meshFromFiles(kube, net('bookinfo-gateway.yaml'), join(BOOKINFO, '..', '..', 'ingress-gateway.yaml'));
  assert.deepEqual(m.diagnostics.filter((d) => d.level === 'error'), []);
  const snap = compile(m.config, m.registry, { workload: 'istio-ingressgateway', namespace: 'istio-system' });
  assert.equal(snap.node.kind, 'gateway');
  const s = simulate(snap, { url: 'http://bookinfo.example.com:8080/productpage' });
  assert.equal(s.outcome, 'FORWARD');
  assert.equal(s.clusters[0]?.name, 'outbound|9080||productpage.default.svc.cluster.local');
  const none = simulate(snap, { url: 'http://bookinfo.example.com:8080/admin' });
  assert.equal(none.outcome, 'NO_ROUTE');
  assert.equal(none.status, 404);
});
