/**
 * The contract every registry source must pass. A source's test describes
 * how to turn a `RegistryFixture` (services with selectors and ports,
 * workloads with labels and replicas) into its own input — YAML files, a
 * running local app, Kubernetes objects — and calls `runRegistryContract`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LiveInstances } from '../../src/registry/live.js';
import type { Endpoint, Locality, Registry } from '../../src/registry/types.js';

export interface FixtureService {
  readonly name: string;
  readonly namespace: string;
  readonly ports: readonly { readonly name: string; readonly port: number; readonly targetPort: number | string }[];
  readonly selector: Readonly<Record<string, string>>;
}

export interface FixtureWorkload {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly replicas: number;
  readonly serviceAccount: string;
  /** Named ports, for named targetPorts. */
  readonly ports: Readonly<Record<string, number>>;
  readonly locality?: Locality;
}

export interface RegistryFixture {
  readonly services: readonly FixtureService[];
  readonly workloads: readonly FixtureWorkload[];
}

/**
 * Builds a registry from a fixture through the source under test; `instances`
 * and `previous` are passed on to `createRegistry`.
 */
export type MakeRegistry = (fixture: RegistryFixture, opts: { readonly trustDomain: string; readonly instances?: LiveInstances; readonly previous?: Registry }) => Registry;

const TD = 'example.org';
const host = (name: string, ns: string) => `${name}.${ns}.svc.cluster.local`;

export const baseFixture: RegistryFixture = {
  services: [
    { name: 'reviews', namespace: 'default', ports: [{ name: 'http', port: 9080, targetPort: 9080 }], selector: { app: 'reviews' } },
    { name: 'ratings', namespace: 'default', ports: [{ name: 'http', port: 9080, targetPort: 'web' }, { name: 'grpc', port: 9090, targetPort: 9091 }], selector: { app: 'ratings' } },
    { name: 'details', namespace: 'prod', ports: [{ name: 'http', port: 80, targetPort: 8080 }], selector: { app: 'details' } },
    { name: 'orphan', namespace: 'default', ports: [{ name: 'http', port: 80, targetPort: 80 }], selector: { app: 'nobody' } },
  ],
  workloads: [
    { name: 'reviews-v1', namespace: 'default', labels: { app: 'reviews', version: 'v1' }, replicas: 1, serviceAccount: 'bookinfo-reviews', ports: {} },
    { name: 'reviews-v2', namespace: 'default', labels: { app: 'reviews', version: 'v2' }, replicas: 3, serviceAccount: 'bookinfo-reviews', ports: {} },
    { name: 'ratings-v1', namespace: 'default', labels: { app: 'ratings', version: 'v1' }, replicas: 1, serviceAccount: 'ratings', ports: { web: 8081 } },
    { name: 'reviews-v1', namespace: 'prod', labels: { app: 'reviews', version: 'v1' }, replicas: 1, serviceAccount: 'default', ports: {} },
    { name: 'details-v1', namespace: 'prod', labels: { app: 'details' }, replicas: 2, serviceAccount: 'details', ports: {}, locality: { region: 'eu', zone: 'eu-a', subzone: '' } },
    { name: 'idle', namespace: 'prod', labels: { app: 'details', version: 'idle' }, replicas: 0, serviceAccount: 'details', ports: {} },
  ],
};

function withWorkload(f: RegistryFixture, name: string, ns: string, change: (w: FixtureWorkload) => FixtureWorkload): RegistryFixture {
  return { ...f, workloads: f.workloads.map((w) => (w.name === name && w.namespace === ns ? change(w) : w)) };
}

function assertFrozenDeep(v: unknown, path = 'value'): void {
  if (v === null || typeof v !== 'object') return;
  assert.ok(Object.isFrozen(v), `${path} is not frozen`);
  for (const [k, x] of Object.entries(v)) assertFrozenDeep(x, `${path}.${k}`);
}

/** Runs the shared contract against one source. */
export function runRegistryContract(name: string, make: MakeRegistry): void {
  const reg = () => make(baseFixture, { trustDomain: TD });

  test(`${name}: services are sorted by hostname, frozen, hashed, and found by hostname`, () => {
    const r = reg();
    const hosts = r.services().map((s) => s.hostname);
    assert.deepEqual(hosts, [host('orphan', 'default'), host('ratings', 'default'), host('reviews', 'default'), host('details', 'prod')].sort());
    assertFrozenDeep(r.services(), 'services()');
    for (const s of r.services()) {
      assert.match(s.hash, /^[0-9a-f]{16}$/);
      assert.equal(r.service(s.hostname), s);
    }
    assert.equal(r.service(host('nope', 'default')), undefined);
    const ratings = r.service(host('ratings', 'default'))!;
    assert.deepEqual(ratings.ports.map((p) => [p.name, p.port, p.targetPort, p.protocol]), [['http', 9080, 'web', 'HTTP'], ['grpc', 9090, 9091, 'GRPC']]);
    assert.equal(ratings.namespace, 'default');
    assert.equal(ratings.name, 'ratings');
  });

  test(`${name}: endpoints are one per replica, sorted by instance, and the same frozen array on every call`, () => {
    const r = reg();
    const eps = r.endpoints(host('reviews', 'default'), 9080);
    assert.deepEqual(eps.map((e) => e.instance), ['reviews-v1.default', 'reviews-v2.default#0', 'reviews-v2.default#1', 'reviews-v2.default#2']);
    assert.equal(r.endpoints(host('reviews', 'default'), 9080), eps);
    assert.equal(r.endpointsHash(host('reviews', 'default'), 9080), r.endpointsHash(host('reviews', 'default'), 9080));
    assertFrozenDeep(eps, 'endpoints');
  });

  test(`${name}: a selector picks workloads of the service's namespace only`, () => {
    const r = reg();
    assert.ok(r.endpoints(host('reviews', 'default'), 9080).every((e) => e.namespace === 'default'));
    assert.deepEqual(r.endpoints(host('details', 'prod'), 80).map((e) => e.workload), ['details-v1', 'details-v1']);
    assert.deepEqual(r.endpoints(host('orphan', 'default'), 80), []);
  });

  test(`${name}: targetPorts resolve, numbered and named`, () => {
    const r = reg();
    assert.deepEqual(r.endpoints(host('ratings', 'default'), 9080).map((e) => e.port), [8081]);
    assert.deepEqual(r.endpoints(host('ratings', 'default'), 9090).map((e) => e.port), [9091]);
    assert.deepEqual(r.endpoints(host('details', 'prod'), 80).map((e) => e.port), [8080, 8080]);
  });

  test(`${name}: every endpoint field is set, with the identity of its service account`, () => {
    const r = reg();
    const all: Endpoint[] = r.services().flatMap((s) => s.ports.flatMap((p) => [...r.endpoints(s.hostname, p.port)]));
    assert.ok(all.length >= 8);
    for (const e of all) {
      assert.match(e.instance, /^[a-z0-9-]+\.[a-z0-9-]+(#\d+)?$/);
      assert.ok(e.instance.startsWith(`${e.workload}.${e.namespace}`));
      assert.ok(Number.isInteger(e.port) && e.port >= 1 && e.port <= 65535);
      assert.equal(typeof e.labels, 'object');
      assert.deepEqual(Object.keys(e.locality).sort(), ['region', 'subzone', 'zone']);
      assert.ok(e.serviceAccount.length > 0);
      assert.equal(e.identity, `spiffe://${TD}/ns/${e.namespace}/sa/${e.serviceAccount}`);
      assert.ok(Number.isInteger(e.weight) && e.weight >= 1);
      assert.ok(['HEALTHY', 'UNHEALTHY', 'DRAINING', 'UNKNOWN'].includes(e.health));
    }
    const v2 = r.endpoints(host('reviews', 'default'), 9080)[1]!;
    assert.deepEqual([v2.workload, v2.serviceAccount, v2.labels.version], ['reviews-v2', 'bookinfo-reviews', 'v2']);
    assert.deepEqual(r.endpoints(host('details', 'prod'), 80)[0]!.locality, { region: 'eu', zone: 'eu-a', subzone: '' });
  });

  test(`${name}: an unknown service or port has no endpoints`, () => {
    const r = reg();
    assert.deepEqual(r.endpoints(host('nope', 'default'), 80), []);
    assert.deepEqual(r.endpoints(host('reviews', 'default'), 1234), []);
    assert.equal(typeof r.endpointsHash(host('nope', 'default'), 80), 'string');
  });

  test(`${name}: hashes are equal for equal content and change exactly where content changes`, () => {
    const a = reg();
    const b = reg();
    const reviews = host('reviews', 'default');
    const ratings = host('ratings', 'default');
    for (const s of a.services()) {
      assert.equal(b.service(s.hostname)!.hash, s.hash);
      for (const p of s.ports) assert.equal(b.endpointsHash(s.hostname, p.port), a.endpointsHash(s.hostname, p.port));
    }
    assert.notEqual(a.endpointsHash(reviews, 9080), a.endpointsHash(ratings, 9080));

    const relabeled = make(withWorkload(baseFixture, 'reviews-v2', 'default', (w) => ({ ...w, labels: { ...w.labels, canary: 'true' } })), { trustDomain: TD });
    assert.notEqual(relabeled.endpointsHash(reviews, 9080), a.endpointsHash(reviews, 9080));
    assert.equal(relabeled.endpointsHash(ratings, 9080), a.endpointsHash(ratings, 9080));
    assert.equal(relabeled.service(reviews)!.hash, a.service(reviews)!.hash);
    assert.notEqual(relabeled.workload('reviews-v2', 'default')!.hash, a.workload('reviews-v2', 'default')!.hash);
    assert.equal(relabeled.workload('ratings-v1', 'default')!.hash, a.workload('ratings-v1', 'default')!.hash);

    const scaled = make(withWorkload(baseFixture, 'reviews-v2', 'default', (w) => ({ ...w, replicas: 11 })), { trustDomain: TD });
    assert.deepEqual(scaled.endpoints(reviews, 9080).map((e) => e.instance.replace('reviews-v2.default', '')).slice(1), ['#0', '#1', '#2', '#3', '#4', '#5', '#6', '#7', '#8', '#9', '#10']);
    assert.notEqual(scaled.endpointsHash(reviews, 9080), a.endpointsHash(reviews, 9080));

    const reported = make({ ...baseFixture, services: baseFixture.services.map((s) => (s.name === 'reviews' ? { ...s, ports: [{ name: 'http', port: 9081, targetPort: 9080 }] } : s)) }, { trustDomain: TD });
    assert.notEqual(reported.service(reviews)!.hash, a.service(reviews)!.hash);
    assert.equal(reported.service(ratings)!.hash, a.service(ratings)!.hash);
  });

  test(`${name}: workloads are sorted, frozen and found by name, name.namespace or name and namespace`, () => {
    const r = reg();
    assert.deepEqual(r.workloads().map((w) => `${w.namespace}/${w.name}`), ['default/ratings-v1', 'default/reviews-v1', 'default/reviews-v2', 'prod/details-v1', 'prod/idle', 'prod/reviews-v1']);
    assertFrozenDeep(r.workloads(), 'workloads()');
    const v2 = r.workload('reviews-v2')!;
    assert.deepEqual([v2.name, v2.namespace, v2.replicas, v2.serviceAccount, v2.identity], ['reviews-v2', 'default', 3, 'bookinfo-reviews', `spiffe://${TD}/ns/default/sa/bookinfo-reviews`]);
    assert.equal(r.workload('reviews-v2.default'), v2);
    assert.equal(r.workload('reviews-v2', 'default'), v2);
    assert.equal(r.workload('reviews-v2.default#1'), v2);
    assert.equal(r.workload('reviews-v1'), undefined, 'a short name in two namespaces is ambiguous');
    assert.equal(r.workload('reviews-v1', 'prod')!.namespace, 'prod');
    assert.equal(r.workload('reviews-v1.prod')!.namespace, 'prod');
    assert.equal(r.workload('reviews-v2', 'prod'), undefined);
    assert.equal(r.workload('nope'), undefined);
    assert.deepEqual(r.workload('ratings-v1')!.ports, { web: 8081 });
  });

  test(`${name}: a workload of 0 replicas is known but has no endpoints`, () => {
    const r = reg();
    assert.equal(r.workload('idle', 'prod')!.replicas, 0);
    assert.ok(!r.endpoints(host('details', 'prod'), 80).some((e) => e.workload === 'idle'));
  });

  test(`${name}: namespaces are sorted and include every namespace with a service or workload`, () => {
    const r = reg();
    for (const ns of ['default', 'prod']) assert.ok(r.namespaces().includes(ns));
    assert.deepEqual([...r.namespaces()], [...r.namespaces()].sort());
    assert.equal(r.trustDomain, TD);
    assert.equal(r.domainSuffix, 'cluster.local');
  });

  test(`${name}: registered instances take address, port and health from the registration; the others stay as configured`, () => {
    const plain = reg();
    const instances: LiveInstances = new Map([
      ['reviews-v2.default#1', { address: '127.0.0.1', port: 15001, healthy: true }],
      ['ratings-v1.default', { address: '127.0.0.1', port: 15002, healthy: false }],
      ['nobody.default', { address: '127.0.0.1', port: 15003, healthy: true }],
    ]);
    const r = make(baseFixture, { trustDomain: TD, instances });
    const reviews = r.endpoints(host('reviews', 'default'), 9080);
    const before = plain.endpoints(host('reviews', 'default'), 9080);
    assert.deepEqual(reviews.map((e) => e.instance), before.map((e) => e.instance));
    const v2 = reviews.find((e) => e.instance === 'reviews-v2.default#1')!;
    assert.deepEqual([v2.address, v2.port, v2.health], ['127.0.0.1', 15001, 'HEALTHY']);
    assert.deepEqual([v2.identity, v2.labels.version, v2.serviceAccount], [before[2]!.identity, 'v2', 'bookinfo-reviews'], 'what the instance is stays from the configuration');
    for (const e of reviews.filter((x) => x.instance !== 'reviews-v2.default#1')) {
      assert.deepEqual(e, before.find((x) => x.instance === e.instance), `${e.instance} did not register and stays as configured`);
    }
    for (const port of [9080, 9090]) {
      const [e] = r.endpoints(host('ratings', 'default'), port);
      assert.deepEqual([e!.address, e!.port, e!.health], ['127.0.0.1', 15002, 'UNHEALTHY'], `ratings:${port} goes to the proxy's inbound listener`);
    }
    assert.notEqual(r.endpointsHash(host('reviews', 'default'), 9080), plain.endpointsHash(host('reviews', 'default'), 9080));
    assert.equal(r.endpointsHash(host('details', 'prod'), 80), plain.endpointsHash(host('details', 'prod'), 80));
    assertFrozenDeep(reviews, 'endpoints');
  });

  test(`${name}: with previous, unchanged endpoint lists and unchanged endpoints keep their identity across registrations`, () => {
    const a = make(baseFixture, { trustDomain: TD, instances: new Map([['reviews-v2.default#0', { address: '127.0.0.1', port: 15001, healthy: true }]]) });
    const b = make(baseFixture, { trustDomain: TD, previous: a, instances: new Map([
      ['reviews-v2.default#0', { address: '127.0.0.1', port: 15001, healthy: true }],
      ['reviews-v2.default#1', { address: '127.0.0.1', port: 15002, healthy: true }],
    ]) });
    const reviews = host('reviews', 'default');
    assert.equal(b.endpoints(host('details', 'prod'), 80), a.endpoints(host('details', 'prod'), 80), 'an untouched list is the same array');
    assert.notEqual(b.endpoints(reviews, 9080), a.endpoints(reviews, 9080));
    const same = (r: Registry, i: string) => r.endpoints(reviews, 9080).find((e) => e.instance === i);
    assert.equal(same(b, 'reviews-v2.default#0'), same(a, 'reviews-v2.default#0'), 'an unchanged endpoint in a changed list is the same object');
    assert.equal(same(b, 'reviews-v1.default'), same(a, 'reviews-v1.default'));
    assert.notEqual(same(b, 'reviews-v2.default#1'), same(a, 'reviews-v2.default#1'));

    const c = make(baseFixture, { trustDomain: TD, previous: b, instances: new Map([
      ['reviews-v2.default#0', { address: '127.0.0.1', port: 15001, healthy: false }],
      ['reviews-v2.default#1', { address: '127.0.0.1', port: 15002, healthy: true }],
    ]) });
    assert.equal(same(c, 'reviews-v2.default#0')!.health, 'UNHEALTHY', 'health changes the endpoint');
    assert.notEqual(c.endpointsHash(reviews, 9080), b.endpointsHash(reviews, 9080));
    const d = make(baseFixture, { trustDomain: TD, previous: c, instances: new Map([
      ['reviews-v2.default#0', { address: '127.0.0.1', port: 15001, healthy: false }],
      ['reviews-v2.default#1', { address: '127.0.0.1', port: 15002, healthy: true }],
    ]) });
    assert.equal(d.endpoints(reviews, 9080), c.endpoints(reviews, 9080), 'the same registrations give the same list');
  });
}
