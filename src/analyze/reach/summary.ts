/**
 * A cell's probes in one line: what is allowed ("GET /accounts/*, POST
 * /transfer; everything else denied"), or, when the "any other request"
 * probe is allowed, what is not ("everything except DELETE /admin*").
 * Probes are grouped by method; methods with the same paths are listed
 * together; a method allowed on every probed path is "(any path)".
 */
import { describeDecision, type ReachCell, type ReachProbe } from './model.js';
import { ANY, OTHER_METHODS, OTHER_PATHS } from './probes.js';

type Verdictish = Pick<ReachProbe, 'methodLabel' | 'pathLabel' | 'verdict' | 'tcp'>;

/** `all`, `some` or `none`, and the line. */
export function summarize(probes: readonly Verdictish[], why: (p: Verdictish) => string): { access: ReachCell['access']; summary: string } {
  const allowed = probes.filter((p) => p.verdict === 'allowed');
  const mixed = probes.filter((p) => p.verdict === 'mixed');
  if (probes.length > 0 && allowed.length === probes.length) return { access: 'all', summary: 'everything allowed' };
  if (allowed.length === 0 && mixed.length === 0) {
    const reasons = [...new Set(probes.map(why))];
    return { access: 'none', summary: `nothing allowed: ${reasons.join('; ')}` };
  }
  if (probes.length === 1 && probes[0]!.tcp) return { access: 'some', summary: 'TCP connection allowed by some workloads only' };
  const other = probes.find((p) => isOther(p.methodLabel) && isOther(p.pathLabel));
  const tail = mixed.length ? `; depends on the workload: ${compress(probes, mixed)}` : '';
  if (other && other.verdict === 'allowed') {
    const denied = probes.filter((p) => p.verdict === 'denied');
    return { access: 'some', summary: `everything except ${compress(probes, denied)}${tail}` };
  }
  return { access: 'some', summary: `${allowed.length ? compress(probes, allowed) : 'nothing for sure'}${tail}; everything else denied` };
}

const isOther = (label: string) => label === OTHER_METHODS || label === OTHER_PATHS || label === ANY;

/** `chosen` (a subset of `all`) as "GET, POST /a, /b; PUT (any path)". */
export function compress(all: readonly Verdictish[], chosen: readonly Verdictish[]): string {
  const allPaths = [...new Set(all.map((p) => p.pathLabel))];
  const allMethods = [...new Set(all.map((p) => p.methodLabel))];
  const byMethod = new Map<string, string[]>();
  for (const p of chosen) {
    const list = byMethod.get(p.methodLabel) ?? [];
    list.push(p.pathLabel);
    byMethod.set(p.methodLabel, list);
  }
  // Methods with the same set of paths are written together.
  const groups = new Map<string, string[]>();
  for (const [m, paths] of byMethod) {
    const key = paths.length === allPaths.length ? '' : paths.sort().join('\u0000');
    const list = groups.get(key) ?? [];
    list.push(m);
    groups.set(key, list);
  }
  const parts: string[] = [];
  for (const [key, methods] of groups) {
    const everyMethod = methods.length === allMethods.length;
    const who = everyMethod ? 'any method' : methods.map(methodText).join(', ');
    if (key === '') parts.push(everyMethod ? 'every request' : `${who} (any path)`);
    else parts.push(`${who} ${key.split('\u0000').map(pathText).join(', ')}`);
  }
  return parts.join('; ');
}

const methodText = (m: string) => (m === ANY ? 'any method' : m);
const pathText = (p: string) => (p === ANY ? '(any path)' : p);

/** The distinct decisions of a cell's probes, in a few words each. */
export function decidedBy(probes: readonly ReachProbe[]): string[] {
  const out = new Set<string>();
  for (const p of probes) {
    if (p.byWorkload) for (const t of p.byWorkload) out.add(`${t.workload}: ${describeDecision(t)}`);
    else out.add(describeDecision(p.decision));
  }
  return [...out];
}
