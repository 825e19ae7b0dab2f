/**
 * The matrix for a terminal: a grid of sources × destinations with one word
 * per cell, then one line per cell that lets anything through (what, and
 * which policy decided), and with `details` every probe of every cell.
 */
import { describeDecision, type ReachCell, type ReachMatrix } from './model.js';

/** One word for a cell: ALL, SOME, DENY, or why nothing arrives (MTLS refused, no ROUTE there). */
export function cellWord(c: ReachCell): string {
  if (c.access === 'all') return 'ALL';
  if (c.access === 'some') return 'SOME';
  const kinds = new Set(c.probes.map((p) => p.decision.kind));
  if (kinds.size === 1 && kinds.has('mtls-refused')) return 'MTLS';
  if ([...kinds].every((k) => k === 'routed-elsewhere' || k === 'not-forwarded' || k === 'no-endpoint')) return 'ROUTE';
  return 'DENY';
}

export const LEGEND = 'ALL: every request allowed · SOME: some methods/paths · DENY: denied by authorization · '
  + 'MTLS: refused by PeerAuthentication · ROUTE: the caller\'s proxy does not send it there. Rate limits are not evaluated.';

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

export function renderText(m: ReachMatrix, opts: { details?: boolean } = {}): string {
  const byKey = new Map(m.cells.map((c) => [`${c.from}\u0000${c.to}`, c]));
  const rows: string[][] = [['FROM \\ TO', ...m.destinations.map((d) => d.id)]];
  for (const s of m.sources) rows.push([s.id, ...m.destinations.map((d) => { const c = byKey.get(`${s.id}\u0000${d.id}`); return c ? cellWord(c) : ''; })]);
  let out = `Reachability: ${m.sources.length} sources × ${m.destinations.length} destinations\n\n${table(rows)}\n${LEGEND}\n`;
  const open = m.cells.filter((c) => c.access !== 'none');
  if (open.length) {
    out += '\nWhat is allowed:\n';
    out += table([['FROM', 'TO', 'ALLOWED', 'DECIDED BY'], ...open.map((c) => [c.from, c.to, c.summary, c.decidedBy.join('; ')])]);
  }
  const notes = [...new Set(m.cells.flatMap((c) => c.notes))];
  if (notes.length) out += `\nNotes:\n${notes.map((n) => `  ${n}`).join('\n')}\n`;
  if (opts.details) {
    out += '\nEvery cell, request by request:\n';
    for (const c of m.cells) out += renderCell(c);
  }
  return out;
}

/** One cell with each of its requests and the decision on it. */
export function renderCell(c: ReachCell): string {
  let out = `${c.from} → ${c.to}: ${c.summary}\n`;
  for (const p of c.probes) {
    const req = p.tcp ? 'TCP connection' : `${p.method} ${p.path}`;
    const stands = p.tcp ? '' : `  (${p.methodLabel} ${p.pathLabel})`;
    out += `  ${p.verdict.toUpperCase().padEnd(7)} ${req}${stands}: ${describeDecision(p.decision)}\n`;
    for (const t of p.byWorkload ?? []) out += `            at ${t.workload}: ${t.allowed ? 'allowed' : 'denied'}, ${describeDecision(t)}\n`;
  }
  for (const n of c.notes) out += `  note: ${n}\n`;
  return out;
}
