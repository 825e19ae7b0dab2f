/**
 * The L4 router (src/policy/l4-routes.ts) on hand-made snapshots: TLS
 * routes by SNI (exact beats wildcard, longer wildcard beats shorter, the
 * first among equals, short names expanded, case), match blocks decided for
 * the proxy (sourceLabels, sourceNamespace) and per connection
 * (destinationSubnets), TCP routes tried in order and found by VIP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildL4Router } from '../../src/policy/l4-routes.js';
import type { L4Match, ProxyNode, Snapshot, TcpRoute, TlsRoute } from '../../src/protocol/snapshot.js';

const node: ProxyNode = {
  id: 'client.shop', kind: 'sidecar', workload: 'client', namespace: 'shop', labels: { app: 'client', team: 'pay' },
  serviceAccount: 'client', identity: 'spiffe://cluster.local/ns/shop/sa/client', locality: { region: '', zone: '', subzone: '' },
};
const mesh = { domainSuffix: 'cluster.local' } as Snapshot['mesh'];

const tls = (name: string, sniHosts: string[], match?: L4Match[], port = 443): TlsRoute =>
  ({ port, sniHosts, host: 'svc.shop.svc.cluster.local', clusters: [], name, ...(match ? { match } : {}) });
const tcp = (name: string, host: string, match?: L4Match[], addresses?: string[]): TcpRoute =>
  ({ port: 5432, host, clusters: [], name, ...(match ? { match } : {}), ...(addresses ? { addresses } : {}) });

function router(t: { tls?: TlsRoute[]; tcp?: TcpRoute[] }) {
  return buildL4Router({ node, mesh, outbound: { http: [], tcp: t.tcp ?? [], ...(t.tls ? { tls: t.tls } : {}) } });
}

test('SNI: exact beats any wildcard, a longer wildcard a shorter one, the first among equals', () => {
  const r = router({ tls: [
    tls('wide', ['*.example.com']),
    tls('narrow', ['*.api.example.com']),
    tls('exact', ['v1.api.example.com']),
    tls('exact-again', ['v1.api.example.com']),
    tls('everything', ['*']),
  ] });
  const name = (sni: string) => r.tls(443, sni)?.name;
  assert.equal(name('v1.api.example.com'), 'exact');
  assert.equal(name('V1.API.example.com'), 'exact');
  assert.equal(name('v2.api.example.com'), 'narrow');
  assert.equal(name('a.b.api.example.com'), 'narrow');
  assert.equal(name('web.example.com'), 'wide');
  assert.equal(name('example.com'), 'everything', '*.example.com does not cover example.com itself');
  assert.equal(r.tls(8443, 'web.example.com'), undefined, 'another port has its own routes');
  assert.equal(r.hasTls(443), true);
  assert.equal(r.hasTls(8443), false);
});

test('SNI: a short name is tried as its FQDNs in the proxy\'s namespace; no route gives undefined', () => {
  const r = router({ tls: [tls('own', ['svc.shop.svc.cluster.local'])] });
  assert.equal(r.tls(443, 'svc')?.name, 'own');
  assert.equal(r.tls(443, 'svc.shop')?.name, 'own');
  assert.equal(r.tls(443, 'svc.other'), undefined);
  assert.equal(r.tls(443, 'nobody.example.org'), undefined);
  assert.equal(r.isTlsService(443, 'svc'), true);
  assert.equal(r.isTlsService(443, 'svc.other'), false);
});

test('match blocks: sourceLabels and sourceNamespace decided for the proxy, destinationSubnets per connection', () => {
  const r = router({ tls: [
    tls('not-for-me', ['a.example.com'], [{ sourceLabels: { team: 'other' } }]),
    tls('other-ns', ['a.example.com'], [{ sourceNamespace: 'bank' }]),
    tls('by-vip', ['a.example.com'], [{ destinationSubnets: ['10.0.0.0/8'] }]),
    tls('mine', ['a.example.com'], [{ sourceLabels: { team: 'pay' }, sourceNamespace: 'shop' }]),
  ] });
  assert.equal(r.tls(443, 'a.example.com')?.name, 'mine', 'by name the subnet block does not hold');
  assert.equal(r.tls(443, 'a.example.com', '10.1.2.3')?.name, 'by-vip');
  assert.equal(r.tls(443, 'a.example.com', '192.168.0.1')?.name, 'mine');
});

test('TCP: the routes of a host are tried in order; a VIP finds the service and can match destinationSubnets', () => {
  const db = 'db.shop.svc.cluster.local';
  const r = router({ tcp: [
    tcp('labels', db, [{ sourceLabels: { team: 'other' } }], ['10.96.0.5']),
    tcp('vip', db, [{ destinationSubnets: ['10.96.0.0/16'] }], ['10.96.0.5']),
    tcp('last', db, undefined, ['10.96.0.5']),
  ] });
  assert.equal(r.tcp(5432, 'db')?.name, 'last');
  assert.equal(r.tcp(5432, 'db.shop.svc.cluster.local:5432')?.name, 'last');
  assert.equal(r.tcp(5432, '10.96.0.5')?.name, 'vip');
  assert.equal(r.tcp(5432, '10.96.0.6'), undefined);
  assert.equal(r.tcp(5433, 'db'), undefined);
});

test('a snapshot without outbound.tls (an older one) has no TLS routes', () => {
  const r = router({});
  assert.equal(r.hasTls(443), false);
  assert.equal(r.tls(443, 'x'), undefined);
});
