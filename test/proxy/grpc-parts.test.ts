/** The gRPC pieces of the proxy on their own: grpc-timeout values and the status of the proxy's answers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatGrpcTimeout, grpcMessage, grpcStatusFor, parseGrpcTimeout } from '../../src/proxy/grpc.js';
import { PROXY_ERRORS } from '../../src/proxy/errors.js';
import { replyFor } from '../../src/proxy/local-reply.js';
import { speaksHttp2 } from '../../src/proxy/h2-upstream.js';
import { isHttp2Protocol } from '../../src/registry/protocol.js';
import type { Protocol } from '../../src/registry/types.js';

test('grpc-timeout: units H M S m u n, at most 8 digits; anything else is no deadline', () => {
  assert.equal(parseGrpcTimeout('1H'), 3_600_000);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('3S'), 3_000);
  assert.equal(parseGrpcTimeout('250m'), 250);
  assert.equal(parseGrpcTimeout('5000u'), 5);
  assert.equal(parseGrpcTimeout('2000000n'), 2);
  for (const bad of ['', '10', 'm', '123456789m', '1.5S', '-1S', '10x']) assert.equal(parseGrpcTimeout(bad), undefined, bad);
  assert.equal(parseGrpcTimeout(undefined), undefined);
  assert.equal(formatGrpcTimeout(249.2), '250m');
  assert.equal(formatGrpcTimeout(0), '1m');
});

test('grpc status of the proxy\'s answers: UH/UF/UC/NC 14, NR 12, UT 4, by HTTP status otherwise', () => {
  assert.equal(grpcStatusFor(replyFor(PROXY_ERRORS.NO_HEALTHY_UPSTREAM)), 14);
  assert.equal(grpcStatusFor(replyFor(PROXY_ERRORS.CONNECT_FAILURE)), 14);
  assert.equal(grpcStatusFor(replyFor(PROXY_ERRORS.UPSTREAM_RESET)), 14);
  assert.equal(grpcStatusFor(replyFor(PROXY_ERRORS.NO_CLUSTER)), 14);
  assert.equal(grpcStatusFor(replyFor(PROXY_ERRORS.NO_ROUTE)), 12);
  assert.equal(grpcStatusFor(replyFor(PROXY_ERRORS.BLACKHOLE)), 12);
  assert.equal(grpcStatusFor(replyFor(PROXY_ERRORS.UPSTREAM_TIMEOUT)), 4);
  assert.equal(grpcStatusFor(replyFor(PROXY_ERRORS.INTERNAL)), 2);
  assert.equal(grpcStatusFor(replyFor(PROXY_ERRORS.BAD_REQUEST)), 13);
  assert.equal(grpcStatusFor({ status: 403, body: '' }), 7);
  assert.equal(grpcStatusFor({ status: 429, body: '' }), 14);
  assert.equal(grpcMessage('no route: x%y\n'), 'no route: x%25y');
  assert.equal(grpcMessage('a\nb é'), 'a%0Ab %C3%A9');
});

test('the proxy\'s HTTP/2 rule agrees with the registry\'s isHttp2Protocol', () => {
  const all: Protocol[] = ['HTTP', 'HTTP2', 'HTTPS', 'GRPC', 'GRPC-Web', 'TLS', 'TCP', 'UDP', 'Mongo', 'MySQL', 'Redis', 'UNSPECIFIED'];
  for (const p of all) assert.equal(speaksHttp2(p), isHttp2Protocol(p), p);
});
