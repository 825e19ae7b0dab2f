/**
 * The matrix as one self-contained HTML page: no external stylesheet,
 * script, font or image. A grid of sources × destinations, one colour per
 * kind of cell; hovering a cell shows what is allowed and what decided, a
 * click shows every request of the cell with its decision.
 */
import { describeDecision, type ReachCell, type ReachMatrix } from './model.js';
import { cellWord, LEGEND } from './render-text.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const COLOURS: Readonly<Record<string, string>> = {
  ALL: '#2e7d32', SOME: '#f9a825', DENY: '#c62828', MTLS: '#6a1b9a', ROUTE: '#757575',
};

function hover(c: ReachCell): string {
  return `${c.from} → ${c.to}\n${c.summary}\ndecided by: ${c.decidedBy.join('; ')}`;
}

function details(c: ReachCell): string {
  const rows = c.probes.map((p) => {
    const req = p.tcp ? 'TCP connection' : `${p.method} ${p.path}`;
    const per = (p.byWorkload ?? []).map((t) => `<br>${esc(t.workload)}: ${esc(describeDecision(t))}`).join('');
    return `<tr class="${p.verdict}"><td>${esc(p.verdict)}</td><td><code>${esc(req)}</code></td><td>${esc(p.tcp ? '' : `${p.methodLabel} ${p.pathLabel}`)}</td><td>${esc(describeDecision(p.decision))}${per}</td></tr>`;
  }).join('');
  const notes = c.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('');
  return `<h2>${esc(c.from)} → ${esc(c.to)}</h2><p>${esc(c.summary)}</p><table><tr><th>verdict</th><th>request</th><th>stands for</th><th>decided by</th></tr>${rows}</table>${notes}`;
}

export function renderHtml(m: ReachMatrix, title = 'Trellis reachability'): string {
  const byKey = new Map(m.cells.map((c) => [`${c.from}\u0000${c.to}`, c]));
  const panels: string[] = [];
  const head = m.destinations.map((d) => `<th class="col" title="${esc(`${d.service}:${d.port} (${d.protocol}) — ${d.workloads.join(', ')}`)}">${esc(d.id)}</th>`).join('');
  const body = m.sources.map((s) => {
    const tds = m.destinations.map((d) => {
      const c = byKey.get(`${s.id}\u0000${d.id}`);
      if (!c) return '<td></td>';
      const id = `c${panels.length}`;
      panels.push(`<section id="${id}" hidden>${details(c)}</section>`);
      const w = cellWord(c);
      return `<td class="cell" style="background:${COLOURS[w]}" title="${esc(hover(c))}" data-panel="${id}" tabindex="0">${esc(w)}</td>`;
    }).join('');
    return `<tr><th class="row" title="${esc(s.identity ?? 'no identity (plaintext)')}">${esc(s.id)}</th>${tds}</tr>`;
  }).join('\n');
  const legend = Object.entries(COLOURS).map(([w, c]) => `<span class="key" style="background:${c}">${w}</span>`).join(' ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:.35em .6em;text-align:left}
td.cell{color:#fff;font-weight:600;text-align:center;cursor:pointer;min-width:4.5em}
td.cell:focus,td.cell.on{outline:3px solid #000}
th.col{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}
.key{color:#fff;padding:.1em .5em;border-radius:3px;font-weight:600}
#details{margin-top:1.5em}
#details tr.allowed td:first-child{color:#2e7d32}#details tr.denied td:first-child{color:#c62828}#details tr.mixed td:first-child{color:#f9a825}
.note{color:#555;font-style:italic}
</style></head><body>
<h1>${esc(title)}</h1>
<p>${m.sources.length} sources × ${m.destinations.length} destinations. ${legend}</p>
<p>${esc(LEGEND)} Hover a cell for its summary; click it for every request and the policy that decided it.</p>
<table id="grid"><tr><th>from \\ to</th>${head}</tr>
${body}
</table>
<div id="details"><p>Click a cell.</p></div>
<div hidden>${panels.join('\n')}</div>
<script>
(function(){var on=null,box=document.getElementById('details');
function show(td){if(on)on.classList.remove('on');on=td;td.classList.add('on');box.innerHTML=document.getElementById(td.getAttribute('data-panel')).innerHTML;}
document.getElementById('grid').addEventListener('click',function(e){var t=e.target.closest('td.cell');if(t)show(t);});
document.getElementById('grid').addEventListener('keydown',function(e){var t=e.target.closest('td.cell');if(t&&(e.key==='Enter'||e.key===' ')){e.preventDefault();show(t);}});
})();
</script>
</body></html>
`;
}
