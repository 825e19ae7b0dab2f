/** The message catalogue (src/api/messages.ts): every entry well formed, every code unique and permanent in form. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { messages, messagesByCode, render } from '../../src/api/messages.js';
import { ROOT } from './kind-table.js';

/**
 * The Istio message codes that a `TRL0nnn` code mirrors, with Istio's name and
 * level. Copied from Istio's catalogue, pkg/config/analysis/msg/messages.yaml
 * at istio/istio 86c9f01fd735 (as listed in shared/corpus/istio/analyzers.md,
 * "All message codes"). Add a row when a new TRL0nnn code mirrors one.
 */
const ISTIO_CODES: Readonly<Record<string, { readonly name: string; readonly level: 'error' | 'warning' | 'info' }>> = {
  IST0106: { name: 'SchemaValidationError', level: 'error' },
  IST0002: { name: 'Deprecated', level: 'warning' },
  IST0101: { name: 'ReferencedResourceNotFound', level: 'error' },
  IST0109: { name: 'ConflictingMeshGatewayVirtualServiceHosts', level: 'error' },
  IST0110: { name: 'ConflictingSidecarWorkloadSelectors', level: 'error' },
  IST0111: { name: 'MultipleSidecarsWithoutWorkloadSelectors', level: 'error' },
  IST0112: { name: 'VirtualServiceDestinationPortSelectorRequired', level: 'error' },
  IST0118: { name: 'PortNameIsNotUnderNamingConvention', level: 'info' },
  IST0127: { name: 'NoMatchingWorkloadsFound', level: 'warning' },
  IST0128: { name: 'NoServerCertificateVerificationDestinationLevel', level: 'warning' },
  IST0129: { name: 'NoServerCertificateVerificationPortLevel', level: 'warning' },
  IST0130: { name: 'VirtualServiceUnreachableRule', level: 'warning' },
  IST0131: { name: 'VirtualServiceIneffectiveMatch', level: 'info' },
  IST0132: { name: 'VirtualServiceHostNotFoundInGateway', level: 'warning' },
  IST0134: { name: 'ServiceEntryAddressesRequired', level: 'warning' },
  IST0138: { name: 'GatewayDuplicateCertificate', level: 'warning' },
  IST0140: { name: 'IngressRouteRulesNotAffected', level: 'warning' },
  IST0145: { name: 'ConflictingGateways', level: 'error' },
  IST0149: { name: 'JwtClaimBasedRoutingWithoutRequestAuthN', level: 'error' },
  IST0150: { name: 'ExternalNameServiceTypeInvalidPortName', level: 'warning' },
  IST0157: { name: 'InvalidTelemetryProvider', level: 'warning' },
  IST0159: { name: 'ConflictingTelemetryWorkloadSelectors', level: 'error' },
  IST0160: { name: 'MultipleTelemetriesWithoutWorkloadSelectors', level: 'error' },
  IST0162: { name: 'GatewayPortNotDefinedOnService', level: 'warning' },
  IST0165: { name: 'ReferencedInternalGateway', level: 'warning' },
  IST0167: { name: 'IneffectivePolicy', level: 'warning' },
  IST0173: { name: 'DestinationRuleSubsetNotSelectPods', level: 'error' },
  IST0174: { name: 'UnknownDestinationRuleHost', level: 'warning' },
  IST0177: { name: 'ConflictingServiceEntryProtocol', level: 'warning' },
};

const all = Object.entries(messages);

test('every catalogue entry has a code of the form TRL0nnn or TRL1nnn', () => {
  for (const [name, m] of all) assert.match(m.code, /^TRL[01]\d{3}$/, name);
});

test('every code is used by one entry only', () => {
  const seen = new Map<string, string>();
  for (const [name, m] of all) {
    assert.equal(seen.get(m.code), undefined, `${m.code} is used by ${seen.get(m.code)} and ${name}`);
    seen.set(m.code, name);
  }
  assert.equal(messagesByCode.size, all.length);
});

test('every entry is named by its key, has a level, a non-empty template and a one-line docs sentence', () => {
  for (const [name, m] of all) {
    assert.equal(m.name, name);
    assert.ok(['error', 'warning', 'info'].includes(m.level), `${name}: level ${m.level}`);
    assert.ok(m.template.trim() !== '', `${name}: empty template`);
    assert.ok(m.docs.trim().length > 20, `${name}: docs too short to say what the code means`);
    assert.doesNotMatch(m.docs, /\n/, `${name}: docs must be one line`);
  }
});

test('templates hold only well-formed {placeholders}, all of which render', () => {
  for (const [name, m] of all) {
    const keys = [...m.template.matchAll(/\{(\w+)\}/g)].map((x) => x[1]!);
    assert.doesNotMatch(m.template.replace(/\{\w+\}/g, ''), /[{}]/, `${name}: stray brace in ${m.template}`);
    const rendered = render(m.template, Object.fromEntries(keys.map((k) => [k, `<${k}>`])));
    assert.doesNotMatch(rendered, /\{\w+\}/, name);
  }
});

test('every TRL0nnn code mirrors the Istio code of the same number, with its name and level', () => {
  const mirrored = all.filter(([, m]) => m.code.startsWith('TRL0'));
  assert.ok(mirrored.length > 0, 'the catalogue mirrors at least IST0106');
  for (const [name, m] of mirrored) {
    const istio = ISTIO_CODES[`IST${m.code.slice(3)}`];
    assert.ok(istio, `${m.code} (${name}) has no Istio code IST${m.code.slice(3)}; use a TRL1nnn code for Trellis's own messages`);
    assert.deepEqual({ name, level: m.level }, istio, m.code);
  }
});

test('render fills placeholders and leaves missing ones visible', () => {
  assert.equal(render('value {value} of "{field}"', { value: '"AUDIT"', field: 'spec.action' }), 'value "AUDIT" of "spec.action"');
  assert.equal(render('{a} and {b}', { a: 1 }), '1 and {b}');
});

/** The zero-trust codes (issue 6): request authentication's key sets and authorization's compile notes. */
const SECURITY_CODES: readonly [code: string, name: string][] = [
  ['TRL1301', 'JwksUnavailable'],
  ['TRL1302', 'JwksUnusable'],
  ['TRL1303', 'JwksSourceMissing'],
  ['TRL1304', 'CallerIdentityShared'],
  ['TRL1305', 'CallerGroupEmpty'],
  ['TRL1306', 'CustomActionNotSupported'],
];

test('the zero-trust codes TRL1301–TRL1306 are catalogue warnings', () => {
  for (const [code, name] of SECURITY_CODES) {
    const m = messagesByCode.get(code);
    assert.ok(m, `${code} is not in the catalogue`);
    assert.deepEqual([m.name, m.level], [name, 'warning'], code);
  }
});

test('trellis codes lists the zero-trust codes with their level, name and docs', () => {
  const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
  const r = spawnSync(process.execPath, [cli, 'codes', '-o', 'json'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const listed = new Map((JSON.parse(r.stdout) as { code: string; name: string; level: string; docs: string }[]).map((m) => [m.code, m]));
  for (const [code, name] of SECURITY_CODES) {
    const m = listed.get(code);
    assert.deepEqual(m && [m.name, m.level, m.docs], [name, 'warning', messagesByCode.get(code)!.docs], code);
  }
  const one = spawnSync(process.execPath, [cli, 'codes', 'trl1306'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(one.status, 0, one.stderr);
  assert.match(one.stdout, /TRL1306\s+warning\s+CustomActionNotSupported/);
});

test('field paths: keys with dots, brackets, quotes or spaces are written ["…"], and read back the same', async () => {
  const { formatPath, parsePath } = await import('../../src/api/diagnostic.js');
  const cases: (string | number)[][] = [
    ['spec', 'http', 0, 'route', 1, 'weight'],
    ['spec', 'selector', 'matchLabels', 'app.kubernetes.io/name'],
    ['spec', 'http', 0, 'match', 0, 'headers', '@request.auth.claims[realm.example][role]'],
    ['spec', 'portLevelMtls', '8080', 'mode'],
    ['metadata', 'labels', 'a b'],
    ['x', 'say "hi"'],
  ];
  assert.equal(formatPath(cases[0]!), 'spec.http[0].route[1].weight');
  assert.equal(formatPath(cases[1]!), 'spec.selector.matchLabels["app.kubernetes.io/name"]');
  assert.equal(formatPath(cases[3]!), 'spec.portLevelMtls.8080.mode');
  for (const c of cases) assert.deepEqual(parsePath(formatPath(c)), c, formatPath(c));
});
