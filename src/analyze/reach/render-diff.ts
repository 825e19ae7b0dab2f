/**
 * A reachability diff as text for a terminal and as Markdown for a pull
 * request comment: one entry per cell that changes, with what was and is
 * allowed, the requests whose answers changed, and the resources that
 * caused it.
 */
import type { CellChange, ReachDiff } from './diff.js';

const cause = (c: CellChange) => (c.causes.length ? c.causes.join('; ') : 'not named (no changed resource bears on this cell directly)');

export function renderDiffText(d: ReachDiff): string {
  if (d.changes.length === 0) return `No reachability change (${d.cells} cells compared, ${d.changedResources.length} resources changed).\n`;
  let out = `${d.changes.length} of ${d.cells} cells change:\n`;
  for (const c of d.changes) {
    out += `\n${c.from} → ${c.to}: ${c.change}\n`;
    if (c.before) out += `  before: ${c.before.summary}\n`;
    if (c.after) out += `  after:  ${c.after.summary}\n`;
    for (const r of c.requests) out += `  ${r.request.padEnd(28)} ${r.before}  →  ${r.after}\n`;
    out += `  cause:  ${cause(c)}\n`;
  }
  return out;
}

const md = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderDiffMarkdown(d: ReachDiff): string {
  if (d.changes.length === 0) return `### Reachability: no change\n\n${d.cells} cells compared; ${d.changedResources.length} resources changed, none changes who can call whom.\n`;
  const counts = new Map<string, number>();
  for (const c of d.changes) counts.set(c.change, (counts.get(c.change) ?? 0) + 1);
  let out = `### Reachability: ${d.changes.length} of ${d.cells} cells change\n\n`;
  out += [...counts].map(([k, v]) => `**${v}** ${k}`).join(' · ') + '\n\n';
  out += '| from | to | change | before | after | cause |\n|---|---|---|---|---|---|\n';
  for (const c of d.changes) {
    out += `| \`${md(c.from)}\` | \`${md(c.to)}\` | ${md(c.change)} | ${md(c.before?.summary ?? '—')} | ${md(c.after?.summary ?? '—')} | ${md(cause(c))} |\n`;
  }
  const withRequests = d.changes.filter((c) => c.requests.length);
  if (withRequests.length) {
    out += '\n<details><summary>Requests whose answer changed</summary>\n\n';
    for (const c of withRequests) {
      out += `**\`${md(c.from)}\` → \`${md(c.to)}\`**\n\n| request | stands for | before | after |\n|---|---|---|---|\n`;
      for (const r of c.requests) out += `| \`${md(r.request)}\` | ${md(r.standsFor)} | ${md(r.before)} | ${md(r.after)} |\n`;
      out += '\n';
    }
    out += '</details>\n';
  }
  return out;
}
