/**
 * `trellis graph`: the running mesh's service graph (the control plane's
 * `/api/topology`) as a table of edges, Graphviz DOT, a Mermaid flowchart,
 * or the JSON document itself. In DOT and Mermaid, workloads are boxes,
 * services rounded; a solid arrow is traffic (workload → service, labelled
 * with its rate, errors and latency), a dashed line joins a service to the
 * workloads that run it. Only nodes that take part in the window's traffic
 * are drawn, with the workloads and services next to them.
 */
import { Command, Option } from 'commander';
import type { Edge, TopologyDoc } from '../../controlplane/topology-graph.js';
import { fetchTopology, formatMs, formatRatio, formatRps, serviceNodes, shortId, signalsLine, topologySource, windowArg, windowLine } from '../topology-client.js';
import { formatTable } from '../up/table.js';

type Format = 'text' | 'dot' | 'mermaid' | 'json';

/** The nodes drawn and the dashed service–workload lines between them. */
function drawn(doc: TopologyDoc): { nodes: TopologyDoc['nodes']; members: [string, string][] } {
  const ids = new Set(doc.edges.flatMap((e) => [e.source, e.destination]));
  const members: [string, string][] = [];
  for (const n of doc.nodes) {
    if (n.kind === 'service' && ids.has(n.id)) for (const w of n.workloads) members.push([n.id, w]);
    if (n.kind === 'workload' && ids.has(n.id)) for (const s of n.services) members.push([s, n.id]);
  }
  const unique = [...new Map(members.map((m) => [m.join('\n'), m])).values()];
  for (const [s, w] of unique) ids.add(s).add(w);
  return { nodes: doc.nodes.filter((n) => ids.has(n.id)), members: unique };
}

const dotString = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
const edgeLabel = (e: Edge, sep: string) => signalsLine(e).split(', ').join(sep);

export function toDot(doc: TopologyDoc): string {
  const { nodes, members } = drawn(doc);
  const lines = [
    'digraph trellis {',
    '  rankdir=LR;',
    '  node [fontname="Helvetica", fontsize=11];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ];
  for (const n of nodes) {
    const shape = n.kind === 'service' ? 'shape=ellipse' : n.kind === 'workload' ? 'shape=box' : 'shape=diamond, style=dashed';
    lines.push(`  ${dotString(n.id)} [label=${dotString(shortId(n.id))}, ${shape}];`);
  }
  for (const [s, w] of members) lines.push(`  ${dotString(s)} -> ${dotString(w)} [style=dashed, arrowhead=none, color=gray];`);
  for (const e of doc.edges) lines.push(`  ${dotString(e.source)} -> ${dotString(e.destination)} [label=${dotString(edgeLabel(e, '\n'))}${e.errors > 0 ? ', color=red' : ''}];`);
  return lines.join('\n') + '\n}\n';
}

export function toMermaid(doc: TopologyDoc): string {
  const { nodes, members } = drawn(doc);
  const ids = new Map(nodes.map((n, i) => [n.id, `n${i}`]));
  const text = (s: string) => `"${s.replace(/"/g, '#quot;')}"`;
  const lines = ['flowchart LR'];
  for (const n of nodes) {
    const label = text(shortId(n.id));
    lines.push(`  ${ids.get(n.id)}${n.kind === 'service' ? `([${label}])` : n.kind === 'workload' ? `[${label}]` : `{{${label}}}`}`);
  }
  for (const [s, w] of members) lines.push(`  ${ids.get(s)} -.- ${ids.get(w)}`);
  for (const e of doc.edges) lines.push(`  ${ids.get(e.source)} -->|${text(edgeLabel(e, ' · '))}| ${ids.get(e.destination)}`);
  return lines.join('\n') + '\n';
}

export function toText(doc: TopologyDoc): string {
  const head = `Service graph, ${windowLine(doc)}\n\n`;
  if (!doc.edges.length) {
    const why = doc.scrape.proxies === 0 ? 'no proxy is connected to the control plane' : 'send some requests through the mesh and try again';
    return `${head}No traffic seen in the last ${doc.window.seconds}s: ${why}.\n`;
  }
  const rows = [...doc.edges].sort((a, b) => b.rps - a.rps || (a.source < b.source ? -1 : 1)).map((e) => [
    shortId(e.source), shortId(e.destination), e.protocol, formatRps(e.rps), formatRatio(e.errorRatio), e.clientErrors,
    formatMs(e.latencyMs?.p50), formatMs(e.latencyMs?.p99), e.requests, e.reporter,
  ]);
  const table = formatTable(['SOURCE', 'DESTINATION', 'PROTOCOL', 'RPS', 'ERRORS', '4XX', 'P50', 'P99', 'REQUESTS', 'REPORTER'], rows);
  const busy = new Set(doc.edges.map((e) => e.destination));
  const idle = serviceNodes(doc).filter((s) => s.inRegistry && !busy.has(s.id)).map((s) => shortId(s.id));
  return head + table + (idle.length ? `\nNo traffic to: ${idle.join(', ')}\n` : '');
}

export function graphCommand(): Command {
  return new Command('graph')
    .summary('show who calls whom in the running mesh, with rate, errors and latency per edge')
    .description(
      'Asks the control plane for its service graph (/api/topology, built by scraping\n' +
      'every proxy\'s /metrics) and prints it. An edge goes from a source workload to\n' +
      'a destination service; `unknown` stands for callers outside the mesh. The mesh\n' +
      'is the one `trellis up` runs (found like `trellis status` finds it), or the\n' +
      'control plane --admin names (hosts mode).\n' +
      '\n' +
      'Formats (-o):\n' +
      '  text     a table of edges: requests per second, error % (5xx, no response,\n' +
      '           upstream failures), 4xx apart, p50 and p99 latency, request count\n' +
      '  dot      Graphviz DOT: `trellis graph -o dot | dot -Tsvg > mesh.svg`;\n' +
      '           workloads are boxes, services ellipses, traffic solid arrows\n' +
      '           (red when some requests failed), dashed lines join a service to\n' +
      '           the workloads that run it\n' +
      '  mermaid  a Mermaid flowchart (paste it into Markdown in a ```mermaid block),\n' +
      '           drawn like the DOT graph\n' +
      '  json     the control plane\'s document, schema trellis.dev/topology/v1\n' +
      '           (docs/running-mesh.md): nodes, edges with requests, errors and\n' +
      '           latency over the window\n' +
      '\n' +
      'Exit status: 0 when the control plane answered (with or without traffic),\n' +
      '1 when no mesh runs or its control plane does not answer.',
    )
    .addOption(new Option('-o, --output <format>', 'text, dot, mermaid or json').choices(['text', 'dot', 'mermaid', 'json']).default('text'))
    .option('--window <duration>', 'how far back to look (at most the control plane\'s history, 60s)', windowArg('--window', 1000), 60_000)
    .option('--state-dir <dir>', 'the state dir of the mesh (default: $TRELLIS_STATE_DIR, or the one the pointer file names)')
    .option('--admin <host:port>', 'the control plane\'s admin API, for a mesh not started by trellis up')
    .action(async (opts: { output: Format; window: number; stateDir?: string; admin?: string }) => {
      const doc = await fetchTopology(topologySource(opts), opts.window);
      const out = opts.output === 'json' ? JSON.stringify(doc, null, 2) + '\n'
        : opts.output === 'dot' ? toDot(doc) : opts.output === 'mermaid' ? toMermaid(doc) : toText(doc);
      process.stdout.write(out);
    });
}
