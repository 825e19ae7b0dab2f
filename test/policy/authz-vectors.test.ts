/**
 * Istio's authorization vectors replayed against the pure engine: the
 * normalization table in each vector's own mode (every vector must match),
 * and the integrationAuthz, advisories and docsTasks requests compiled and
 * decided exactly as a proxy would (policies parsed by the real loader,
 * compiled for the vector's workload, path normalized, decision taken),
 * counted against the floor in authz-floor.json. Every disagreement and
 * every skipped vector is printed with its reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseYaml } from '../../src/api/load.js';
import type { ResourceOf } from '../../src/api/config-set.js';
import { compileAuthz } from '../../src/compile/authorization.js';
import { buildAuthorizer } from '../../src/policy/authorize.js';
import { normalizePath } from '../../src/policy/path-normalize.js';
import type { PathNormalization } from '../../src/protocol/snapshot.js';
import { createRegistry } from '../../src/registry/registry.js';
import { authzAttributes, vectorCases, VECTORS_FILE, type VectorCase } from '../helpers/authz-vectors.js';
import { ROOT } from '../helpers/mesh.js';

const vectors = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as {
  normalization: Record<string, { normalization: PathNormalization; cases: { in: string; out: string }[] }>;
};
const FLOOR = JSON.parse(readFileSync(join(ROOT, 'test', 'policy', 'authz-floor.json'), 'utf8')) as { vectors: number };
const MESH = { rootNamespace: 'istio-system', trustDomain: 'cluster.local' };
const REGISTRY = createRegistry([]).registry;

for (const [group, g] of Object.entries(vectors.normalization)) {
  test(`path normalization vectors "${group}" (${g.cases.length}, mode ${g.normalization}) give Istio's paths`, () => {
    const wrong: string[] = [];
    for (const c of g.cases) {
      const r = normalizePath(c.in, g.normalization);
      const got = r.ok ? r.path + r.query : String(r.status);
      if (got !== c.out) wrong.push(`${JSON.stringify(c.in)}: want ${JSON.stringify(c.out)}, got ${JSON.stringify(got)}`);
    }
    assert.deepEqual(wrong, []);
  });
}

/** The engine's verdict for one case, or why it could not give one. */
function decide(c: VectorCase): { verdict: 'allow' | 'deny' | 'refused'; reason: string } {
  const loaded = parseYaml(c.yaml, `${c.id}.yaml`, { defaultNamespace: c.defaultNamespace });
  const errors = loaded.diagnostics.filter((d) => d.level === 'error' && (d.resource ?? 'AuthorizationPolicy').startsWith('AuthorizationPolicy'));
  if (errors.length) throw new Error(`policy does not load: ${errors.map((e) => `${e.code} ${e.field}: ${e.message}`).join('; ')}`);
  const policies = loaded.resources.filter((r): r is ResourceOf<'AuthorizationPolicy'> => r.kind === 'AuthorizationPolicy');
  const authz = compileAuthz({ policies, workload: c.workload, mesh: MESH, registry: REGISTRY });
  const a = authzAttributes(c.request, c.mode);
  if ('refused' in a) return { verdict: 'refused', reason: `${a.refused.status} ${a.refused.reason}` };
  const d = buildAuthorizer(authz)(a.attrs);
  return { verdict: d.allowed ? 'allow' : 'deny', reason: d.reason };
}

test(`Istio's integration, advisory and docs-task authorization vectors: at least the floor of ${FLOOR.vectors} verdicts match`, () => {
  const { cases, skipped } = vectorCases();
  let matched = 0;
  const disagreements: string[] = [];
  for (const c of cases) {
    let got: { verdict: string; reason: string };
    try {
      got = decide(c);
    } catch (e) {
      got = { verdict: 'error', reason: (e as Error).message };
    }
    if (got.verdict === c.expect) matched++;
    else disagreements.push(`${c.id} [${c.mode}]: expected ${c.expect}, engine said ${got.verdict} (${got.reason})`);
  }
  const report = [
    `authz vectors: ${matched}/${cases.length} verdicts match (floor ${FLOOR.vectors}); ${skipped.length} skipped`,
    ...disagreements.map((d) => `  disagree: ${d}`),
    ...skipped.map((s) => `  skipped: ${s.id}: ${s.reason}`),
  ].join('\n');
  console.log(report);
  assert.ok(cases.length >= FLOOR.vectors, `only ${cases.length} cases were built from the vectors`);
  assert.ok(matched >= FLOOR.vectors, `${matched} verdicts match, below the floor of ${FLOOR.vectors}:\n${report}`);
});
