/**
 * MeshConfig `accessLogFormat`: Envoy's command operators parsed (with the
 * errors an operator gets for a mistake), rendered from request records as
 * TEXT templates and JSON fields, and, through two real data planes, the
 * headers and addresses a format names copied into the records it logs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLogFormat, parseLogTemplate, logFormatEncoding } from '../../src/api/access-log-format.js';
import type { LogFormat } from '../../src/protocol/snapshot.js';
import type { RequestRecord } from '../../src/protocol/request-record.js';
import { capturesOf, formatLines } from '../../src/telemetry/log-format.js';
import { eventually } from '../helpers/proxy.js';
import { meshConfigYaml, startTwoProxies, type TwoProxies } from './two-proxies.js';

const parsed = (f: string, encoding: 'JSON' | 'TEXT'): LogFormat => {
  const r = parseLogFormat(f, encoding);
  if ('error' in r) throw new Error(r.error);
  return r.format;
};

const RECORD: RequestRecord = {
  direction: 'inbound', proxy: 'api-v2.shop', requestId: 'r-1', method: 'POST', authority: 'api', path: '/orders?id=7', protocol: 'HTTP/1.1',
  status: 201, responseFlags: [], cluster: 'inbound|9000||', route: 'default', upstream: '127.0.0.1:9000', upstreamMs: 3.4,
  startTime: Date.UTC(2026, 0, 2, 3, 4, 5, 6), durationMs: 12.6, bytesReceived: 17, bytesSent: 230,
  sourceIdentity: 'spiffe://cluster.local/ns/shop/sa/web', destinationIdentity: 'spiffe://cluster.local/ns/shop/sa/api', mtls: true, attempts: 1,
  requestHeaders: { 'user-agent': 'curl/7.88.1' }, responseHeaders: { 'content-type': 'application/json' },
  downstreamRemoteAddress: '127.0.0.1:50412', downstreamLocalAddress: '[::1]:15006',
};

test('templates: operators with arguments, alternatives and lengths; literals kept; mistakes named', () => {
  assert.deepEqual(parseLogTemplate('[%START_TIME%] %REQ(X-ENVOY-ORIGINAL-PATH?:PATH):10% %RESPONSE_CODE%\n'), {
    parts: ['[', { op: 'START_TIME' }, '] ', { op: 'REQ', arg: 'x-envoy-original-path', alt: ':path', max: 10 }, ' ', { op: 'RESPONSE_CODE' }, '\n'],
  });
  assert.deepEqual(parseLogTemplate('%REQUEST_HEADER(User-Agent)%%RESPONSE_HEADER(Content-Type)%'), {
    parts: [{ op: 'REQ', arg: 'user-agent' }, { op: 'RESP', arg: 'content-type' }],
  });
  assert.deepEqual(parseLogTemplate('%START_TIME(%Y-%m-%dT%H:%M:%S.%3f%z)%'), { parts: [{ op: 'START_TIME', arg: '%Y-%m-%dT%H:%M:%S.%3f%z' }] });
  const error = (t: string) => { const r = parseLogTemplate(t); return 'error' in r ? r.error : 'parsed'; };
  assert.match(error('%UPSTREAM_CLUSTR%'), /%UPSTREAM_CLUSTR% is not a command operator Trellis knows \(operators: .*UPSTREAM_CLUSTER/);
  assert.match(error('50% of %DURATION%'), /the "%" at character 3 starts no command operator/);
  assert.match(error('%REQ()%'), /%REQ% needs the header/);
  assert.match(error('%REQ(a?)%'), /names no header after "\?"/);
  assert.match(error('%DURATION(ms)%'), /%DURATION% takes no argument/);
  assert.match(error('%START_TIME(%a %b)%'), /uses %a, which Trellis does not format/);
});

test('JSON formats: an object of templates and literals; the encoding follows the format when none is given', () => {
  assert.deepEqual(parsed('{"code":"%RESPONSE_CODE%","what":"%REQ(:METHOD)% %REQ(:PATH)%","v":2,"ok":true,"n":null}', 'JSON'), {
    json: [
      { key: 'code', value: [{ op: 'RESPONSE_CODE' }] },
      { key: 'what', value: [{ op: 'REQ', arg: ':method' }, ' ', { op: 'REQ', arg: ':path' }] },
      { key: 'v', value: 2 }, { key: 'ok', value: true }, { key: 'n', value: null },
    ],
  });
  const error = (f: string) => { const r = parseLogFormat(f, 'JSON'); return 'error' in r ? r.error : 'parsed'; };
  assert.match(error('%RESPONSE_CODE%'), /must be a JSON object/);
  assert.match(error('["%RESPONSE_CODE%"]'), /must be a JSON object/);
  assert.match(error('{"a":["%RESPONSE_CODE%"]}'), /field "a": .*no nested objects or arrays/);
  assert.match(error('{"a":"%NOPE%"}'), /field "a": %NOPE% is not a command operator/);
  assert.equal(logFormatEncoding(' {"a":"%DURATION%"}', undefined), 'JSON');
  assert.equal(logFormatEncoding('%DURATION%', undefined), 'TEXT');
  assert.equal(logFormatEncoding('{"a":"%DURATION%"}', 'TEXT'), 'TEXT');
});

test('TEXT lines: each operator\'s value, "-" where there is none, a newline added when the template has none', () => {
  const line = formatLines(parsed(
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% ' +
    '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
    '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% ' +
    '%REQUESTED_SERVER_NAME% %ROUTE_NAME% %DOWNSTREAM_PEER_URI_SAN% %UPSTREAM_PEER_URI_SAN% %RESP(content-type)% %REQ(USER-AGENT):4%', 'TEXT'));
  assert.equal(line(RECORD),
    '[2026-01-02T03:04:05.006Z] "POST /orders?id=7 HTTP/1.1" 201 - via_upstream 17 230 13 3 "-" "curl/7.88.1" "r-1" "api" "127.0.0.1:9000" inbound|9000|| ' +
    '- [::1]:15006 127.0.0.1:50412 - default spiffe://cluster.local/ns/shop/sa/web - application/json curl\n');
  // Istio's default format since 1.22 names the cluster %UPSTREAM_CLUSTER_RAW%.
  assert.equal(formatLines(parsed('%UPSTREAM_CLUSTER_RAW% %UPSTREAM_CLUSTER%', 'TEXT'))(RECORD), 'inbound|9000|| inbound|9000||\n');
  const failed = formatLines(parsed('%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %UPSTREAM_HOST% %GRPC_STATUS% %TRACE_ID%\n', 'TEXT'));
  assert.equal(failed({ ...RECORD, status: 503, responseFlags: ['UF', 'URX'], upstream: undefined }), '503 UF,URX - - - -\n');
  const times = formatLines(parsed('%START_TIME(%Y/%m/%d %H:%M:%S.%6f %j %s %z %%)%', 'TEXT'));
  assert.equal(times(RECORD), '2026/01/02 03:04:05.006000 002 1767323045 +0000 %\n');
  process.env['TRELLIS_TEST_POD'] = 'api-v2-abc';
  assert.equal(formatLines(parsed('%ENVIRONMENT(TRELLIS_TEST_POD)% %ENVIRONMENT(TRELLIS_TEST_UNSET)%', 'TEXT'))(RECORD), 'api-v2-abc -\n');
});

test('JSON lines: the access marker first, typed single operators, null for no value, strings for mixed templates, literals as given', () => {
  const line = formatLines(parsed('{"code":"%RESPONSE_CODE%","flags":"%RESPONSE_FLAGS%","ua":"%REQ(USER-AGENT)%","route":"%ROUTE_NAME%",' +
    '"req":"%REQ(:METHOD)% %REQ(:PATH)%","peer":"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%","dur":"%DURATION%","app":"shop","v":2,"sampled":false,"x":null}', 'JSON'));
  const text = line({ ...RECORD, path: '/say "hi"' });
  assert.ok(text.endsWith('}\n'));
  assert.deepEqual(JSON.parse(text), {
    type: 'access', code: 201, flags: null, ua: 'curl/7.88.1', route: 'default', req: 'POST /say "hi"', peer: '127.0.0.1', dur: 13, app: 'shop', v: 2, sampled: false, x: null,
  });
  const own = formatLines(parsed('{"type":"request","code":"%RESPONSE_CODE%"}', 'JSON'));
  assert.equal(own(RECORD), '{"type":"request","code":201}\n', 'a format with its own "type" field keeps it');
});

test('captures: only the headers the record has no field for, and the addresses when an operator names them', () => {
  assert.deepEqual(capturesOf(parsed('%REQ(:PATH)% %REQ(X-REQUEST-ID)% %REQ(USER-AGENT)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% %RESP(Content-Type)%', 'TEXT')), {
    requestHeaders: ['user-agent', 'x-envoy-original-path'], responseHeaders: ['content-type'], addresses: false,
  });
  assert.deepEqual(capturesOf(parsed('{"peer":"%DOWNSTREAM_REMOTE_ADDRESS%"}', 'JSON')), { requestHeaders: [], responseHeaders: [], addresses: true });
  assert.equal(capturesOf(parsed('%RESPONSE_CODE% %REQ(:METHOD)%', 'TEXT')), undefined, 'nothing to copy: records stay as they are');
});

describeThroughProxies();

/** The format in MeshConfig, through the compiler and two data planes. */
function describeThroughProxies(): void {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-log-format-'));
  const file = join(dir, 'access.log');
  let p: TwoProxies;
  const lines = (): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
  before(async () => {
    const format = '%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% "%REQ(USER-AGENT)%" "%RESP(CONTENT-TYPE)%" %DOWNSTREAM_REMOTE_ADDRESS% %UPSTREAM_CLUSTER% %REQ(X-REQUEST-ID)%';
    p = await startTwoProxies({ metrics: false }, { metrics: false }, meshConfigYaml(`  accessLogFile: ${JSON.stringify(file)}\n  accessLogFormat: ${JSON.stringify(format)}\n`));
  });
  after(async () => {
    await p?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('MeshConfig accessLogFormat (TEXT, decided by the format): both sidecars write lines in it, with the headers and the address it names', async () => {
    assert.ok(p.caller.snapshot!.mesh.accessLogFormat, 'the compiler put the parsed format in the snapshot');
    assert.equal(p.caller.snapshot!.mesh.accessLogEncoding, 'TEXT');
    const r = await p.client.call('http://api/hello?x=1', { headers: { 'user-agent': 'trellis-test/1' } });
    assert.equal(r.status, 200);
    const got = await eventually(() => (lines().length >= 2 ? lines() : undefined), 3000, () => `${lines().length} access log lines`);
    const id = JSON.parse(r.text).headers['x-request-id'] as string;
    const outbound = got.find((l) => l.includes('outbound|'))!;
    const inbound = got.find((l) => l.includes('inbound|'))!;
    assert.match(outbound, new RegExp(`^GET /hello\\?x=1 200 "trellis-test/1" "application/json" 127\\.0\\.0\\.1:\\d+ outbound\\|80\\|\\|api\\.shop\\.svc\\.cluster\\.local ${id}$`));
    // The inbound sidecar's caller is the outbound sidecar: its address, and the user agent it passed on.
    assert.match(inbound, new RegExp(`^GET /hello\\?x=1 200 "trellis-test/1" "application/json" 127\\.0\\.0\\.1:\\d+ inbound\\|80\\|api\\.shop\\.svc\\.cluster\\.local ${id}$`));
    assert.ok(!readFileSync(file, 'utf8').includes('{"type"'), 'no default JSON lines beside them');
  });
}
