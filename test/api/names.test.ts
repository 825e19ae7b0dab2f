/**
 * The name rules of src/api/kinds/names.ts, which every kind and metadata
 * share, and the verdicts they give through the kinds that use them (the
 * rules are Istio's: pkg/config/validation/agent and pkg/config/labels).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fqdnError, isCidr, isDnsLabel, isDnsLabels, isDnsSubdomain, isIpAddress, isIpOrCidr, isLowercaseDnsLabel, wildcardDomainError,
} from '../../src/api/kinds/names.js';
import { parseYaml } from '../../src/api/load.js';
import { errorsOf, loadSpec } from './kind-table.js';

test('DNS labels: Istio takes either case, Kubernetes only lowercase; both at most 63 characters', () => {
  for (const s of ['a', 'reviews', 'v1-2', 'Reviews', 'x'.repeat(63)]) assert.ok(isDnsLabel(s), s);
  for (const s of ['', '-a', 'a-', 'a_b', 'a.b', 'x'.repeat(64)]) assert.ok(!isDnsLabel(s), s);
  assert.ok(isLowercaseDnsLabel('bank-1'));
  for (const s of ['Bank', 'x'.repeat(64), '']) assert.ok(!isLowercaseDnsLabel(s), s);
});

test('DNS subdomains: lowercase labels joined by dots, at most 253 characters', () => {
  for (const s of ['a', 'bookinfo-reviews', 'a.b.c']) assert.ok(isDnsSubdomain(s), s);
  for (const s of ['A', 'a..b', '.a', 'a.', `${'a.'.repeat(127)}a`]) assert.ok(!isDnsSubdomain(s), s);
});

test('IP addresses and CIDR blocks', () => {
  for (const s of ['10.0.0.1', '2001:db8::1', '::']) assert.ok(isIpAddress(s) && isIpOrCidr(s), s);
  for (const s of ['10.0.0.0/8', '10.0.0.1/32', '2001:db8::/32', '::/128']) assert.ok(isCidr(s) && isIpOrCidr(s), s);
  for (const s of ['10.0.0.0/33', '2001:db8::/129', '10.0.0.0/', '10.0.0/8', '10.0.0.0/x', 'db/8', '10.0.0.1']) assert.ok(!isCidr(s), s);
  for (const s of ['10.0.0.256', 'example.com', '', '10.0.0.0/33']) assert.ok(!isIpOrCidr(s), s);
});

test('DNS names: labels of letters, digits and dashes, a trailing dot allowed, the last label not all digits', () => {
  for (const s of ['reviews', 'reviews.bank.svc.cluster.local', 'istio.io.', 'API.example.com']) assert.equal(fqdnError(s), undefined, s);
  assert.match(fqdnError('a..b')!, /label "" may hold only/);
  assert.match(fqdnError('db.123')!, /last label "123" is all digits/);
  assert.match(fqdnError('')!, /must not be empty/);
  assert.match(fqdnError(`${'a.'.repeat(128)}com`)!, /longer than 255/);
  assert.ok(isDnsLabels('cluster.local') && isDnsLabels('cluster.local.') && isDnsLabels('10.0'));
  assert.ok(!isDnsLabels('') && !isDnsLabels('.') && !isDnsLabels('a..b'));
});

test('wildcard domains: *, *.domain, *prefix and *-prefix in the first label only', () => {
  for (const s of ['*', '*.example.com', '*api.example.com', '*-api.example.com', 'api.example.com']) assert.equal(wildcardDomainError(s), undefined, s);
  for (const s of ['api.*.com', 'a*b.example.com', '**.example.com', 'api.example.123']) assert.notEqual(wildcardDomainError(s), undefined, s);
});

const NET = 'networking.istio.io/v1';

test('ServiceEntry exportTo follows Istio: "*" stands alone, "~" stands alone, namespaces are DNS labels of either case', () => {
  const se = (exportTo: string[]) => errorsOf(loadSpec(NET, 'ServiceEntry', { hosts: ['a.example.com'], exportTo }));
  assert.deepEqual(se(['*']), []);
  assert.deepEqual(se(['~']), []);
  assert.deepEqual(se(['.', 'Prod']), []);
  assert.deepEqual(se(['*', 'ns']), ['TRL0106 spec.exportTo[0]: spec.exportTo[0]: exportTo "*" must be the only entry']);
  assert.deepEqual(se(['~', 'ns']), ['TRL0106 spec.exportTo: spec.exportTo: cannot export to no one ("~") and to someone at the same time']);
  assert.deepEqual(se(['a_b']), ['TRL0106 spec.exportTo[0]: spec.exportTo[0]: exportTo entry "a_b" must be ".", "*", "~" or a namespace name']);
});

test('DestinationRule exportTo takes no "~"', () => {
  const r = loadSpec(NET, 'DestinationRule', { host: 'reviews', exportTo: ['~'] });
  assert.deepEqual(errorsOf(r), ['TRL0106 spec.exportTo[0]: spec.exportTo[0]: exportTo entry "~" must be ".", "*" or a namespace name']);
});

test('ServiceEntry hosts follow Istio\'s wildcard domain rule', () => {
  const hosts = (h: string) => errorsOf(loadSpec(NET, 'ServiceEntry', { hosts: [h] }));
  assert.deepEqual(hosts('*-api.example.com'), []);
  assert.deepEqual(hosts('*.example.com'), []);
  assert.deepEqual(hosts('db.123'), ['TRL0106 spec.hosts[0]: spec.hosts[0]: "db.123" is not a valid DNS name: its last label "123" is all digits']);
  assert.equal(hosts('*').length, 1);
});

test('a WorkloadEntry address is an IP or a DNS name by Istio\'s rule (the last label not all digits)', () => {
  const address = (a: string) => errorsOf(loadSpec(NET, 'WorkloadEntry', { address: a }));
  assert.deepEqual(address('vm-1.example.com'), []);
  assert.deepEqual(address('10.0.0.5'), []);
  assert.deepEqual(address('vm.123'), ['TRL0106 spec.address: spec.address: address "vm.123" is not an IP address, a DNS name or a unix:// socket path']);
});

test('selectors: no empty key and no wildcard, with Istio\'s wording, in every kind that has one', () => {
  const cases: [string, string, unknown, string][] = [
    ['security.istio.io/v1', 'AuthorizationPolicy', { selector: { matchLabels: { app: '*' } } }, 'spec.selector.matchLabels.app'],
    [NET, 'Sidecar', { workloadSelector: { labels: { app: 'a*' } }, outboundTrafficPolicy: { mode: 'ALLOW_ANY' } }, 'spec.workloadSelector.labels.app'],
    [NET, 'ServiceEntry', { hosts: ['a.example.com'], workloadSelector: { labels: { app: '*' } } }, 'spec.workloadSelector.labels.app'],
  ];
  for (const [apiVersion, kind, spec, field] of cases) {
    const errors = errorsOf(loadSpec(apiVersion, kind, spec));
    const wanted = new RegExp(`^TRL0106 ${field.replace(/\./g, '\\.')}: .*wildcard is not supported in selector: "app=`);
    assert.equal(errors.filter((e) => wanted.test(e)).length, 1, `${kind}: ${JSON.stringify(errors)}`);
  }
  const empty = errorsOf(loadSpec('security.istio.io/v1', 'PeerAuthentication', { selector: { matchLabels: { '': 'x' } } }));
  assert.equal(empty.length, 1);
  assert.match(empty[0]!, /^TRL0106 spec\.selector\.matchLabels.*: empty key is not supported in selector: name the label$/);
});

test('a metadata.namespace longer than 63 characters is rejected, as Kubernetes does', () => {
  const sa = (namespace: string) => parseYaml(`apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: ${namespace}}\n`, 'sa.yaml');
  assert.deepEqual(sa('x'.repeat(63)).diagnostics, []);
  assert.deepEqual(sa('x'.repeat(64)).diagnostics.map((d) => [d.code, d.field]), [['TRL0106', 'metadata.namespace']]);
});
