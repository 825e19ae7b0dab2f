/**
 * `trellis reach`: who can call whom, on which methods and paths, decided by
 * the proxies' own functions on compiled snapshots (src/analyze/reach/).
 * The matrix (text, JSON, HTML, Markdown), one question (`--from A --to B
 * [METHOD path]`, answered with the exit code), and the review of a change
 * (`--diff <old> <new>`, directories or git revisions).
 */
import { Command, Option } from 'commander';
import { loadConfig } from '../../api/load.js';
import { meshOf } from '../../analyze/analyze.js';
import { diffReach } from '../../analyze/reach/diff.js';
import { reachContext, reachMatrix } from '../../analyze/reach/matrix.js';
import { describeDecision, type ReachCell, type ReachMatrix } from '../../analyze/reach/model.js';
import { renderDiffMarkdown, renderDiffText } from '../../analyze/reach/render-diff.js';
import { renderHtml } from '../../analyze/reach/render-html.js';
import { renderCell, renderText } from '../../analyze/reach/render-text.js';
import { ReachArgError, resolveDestinations, resolveSources } from '../../analyze/reach/resolve.js';
import { diffSides } from '../../analyze/reach/revision.js';
import { CliError, loadMesh, report, type MeshInput } from '../mesh-input.js';

const METHOD = /^[A-Z]+$/;

type Format = 'text' | 'json' | 'html' | 'markdown';
interface Opts { from?: string; to?: string; diff?: boolean; output: Format; details?: boolean; exitCode?: boolean }

const HELP = `Computes the reachability matrix of a configuration: for every source (each
workload, gateways included, and "plaintext", a caller outside the mesh
without a certificate) and every destination (each port of each service with
workloads), the methods and paths allowed and what decides each answer.

Nothing is sent anywhere: each answer comes from the proxies' own decision
functions on the snapshots the control plane would push. The caller's proxy
routes the request (simulate: route, rewrite, clusters, mTLS or plaintext);
each workload behind the destination applies its PeerAuthentication mode,
path normalization and AuthorizationPolicies (the same authorizer as the
proxy). The requests tried are one per method and path condition that the
destination's policies and the callers' routes name, plus an "any other"
method and path, so a cell says exactly what is allowed:
  "POST /credit, /debit; everything else denied".
Not evaluated: request headers, JWTs, source addresses (a note names the
policies that read them) and rate limits (an allowed request may get 429).

Cell words: ALL every request allowed · SOME some · DENY denied by
authorization (a DENY rule, or ALLOW policies none of which matched) · MTLS
refused by PeerAuthentication · ROUTE the caller's proxy does not send it
there (no route, routed to another service, no endpoint).

Output (-o):
  text      the grid, then each cell that allows anything (default)
  json      schema trellis.dev/reach/v1 (docs/reach.md): sources,
            destinations, cells with every request and its decision
  html      one self-contained page: the grid in colour, the summary on
            hover, every request and the deciding policy on click
  markdown  the grid as a Markdown table (and --diff for a pull request)

One question: --from A --to B [METHOD path]
  A and B: a workload (frontend, frontend.bank), a service host (accounts,
  accounts.bank, accounts.bank.svc.cluster.local, optionally :port), or an
  identity (spiffe://bank.example/ns/bank/sa/frontend); A may be "plaintext".
  With METHOD and path: "yes" or "no" and why (policy and rule, or the
  default). Without: the cell, request by request.

Review a change: --diff <old> <new>
  Each a directory (or file), or a git revision: REV:path (path from the top
  of the repository, or ./path from here), or git:REV (the other side's
  directory at REV). Both matrices are computed on the same requests and only
  the cells that change are printed (allowed → denied, denied → allowed,
  narrowed, widened), with the resources that caused it. -o markdown for a
  pull request comment, -o json (schema trellis.dev/reach-diff/v1).

Exit status:
  0  the matrix or diff was printed; --from/--to: allowed (every pair, and
     without METHOD path: each pair allows something)
  1  --from/--to: denied; --diff --exit-code: some cell changes; the
     configuration has errors
  2  usage error, a name that resolves to nothing, an unreadable revision

Examples:
  trellis reach examples/bank
  trellis reach examples/bank -o html > reach.html
  trellis reach examples/bank --from frontend --to accounts GET /balance
  trellis reach examples/bank --from funds-transfer --to debit-credit
  trellis reach --diff git:main examples/bank -o markdown
  trellis reach --diff HEAD~1:config config`;

export function reachCommand(): Command {
  return new Command('reach')
    .summary('who can call whom, on which methods and paths, and why')
    .description(HELP)
    .argument('<args...>', 'paths (files or directories), then METHOD and path with --from/--to; with --diff: <old> <new>')
    .option('--from <A>', 'the caller: workload, service host, spiffe:// identity, or plaintext')
    .option('--to <B>', 'the callee: service host[:port], workload, or spiffe:// identity')
    .option('--diff', 'compare two configurations: the arguments are <old> <new> (directories or git revisions)')
    .option('--details', 'text: every request of every cell, with its decision')
    .option('--exit-code', 'with --diff: exit 1 when some cell changes')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'html', 'markdown']).default('text'))
    .action((args: string[], opts: Opts) => {
      try {
        if (opts.diff) return diff(args, opts);
        return run(args, opts);
      } catch (e) {
        if (e instanceof ReachArgError) throw new CliError(e.message, 2);
        throw e;
      }
    });
}

/** Loads and reports; configuration errors stop here (the control plane would reject them too). */
function load(paths: readonly string[], what = ''): MeshInput {
  const mesh = loadMesh(paths);
  if (report(mesh.diagnostics, { quiet: true }) > 0) throw new CliError(`the configuration${what} has errors (above): fix them first`, 1);
  return mesh;
}

function run(args: string[], opts: Opts): void {
  let paths = args;
  let request: { method: string; path: string } | undefined;
  const n = args.length;
  if (n >= 3 && METHOD.test(args[n - 2]!) && args[n - 1]!.startsWith('/')) {
    if (!opts.from || !opts.to) throw new CliError('METHOD and path need --from and --to: trellis reach <paths...> --from A --to B GET /path', 2);
    request = { method: args[n - 2]!, path: args[n - 1]! };
    paths = args.slice(0, -2);
  }
  const mesh = load(paths);
  const ctx = reachContext(mesh.config, mesh.registry);
  if (opts.from && opts.to) return question(mesh, ctx, opts, request);
  const sources = opts.from ? resolveSources(ctx, opts.from) : undefined;
  const picked = opts.to ? resolveDestinations(ctx, opts.to) : undefined;
  const m = reachMatrix(mesh.config, mesh.registry, {
    context: ctx, ...(sources ? { sources } : {}), ...(picked ? { destinations: picked.destinations, onlyWorkloads: picked.only } : {}),
  });
  process.stdout.write(render(m, opts));
}

function render(m: ReachMatrix, opts: Opts): string {
  switch (opts.output) {
    case 'json': return JSON.stringify(m, null, 2) + '\n';
    case 'html': return renderHtml(m);
    case 'markdown': return renderMarkdown(m);
    default: return renderText(m, { details: opts.details ?? false });
  }
}

function renderMarkdown(m: ReachMatrix): string {
  const byKey = new Map(m.cells.map((c) => [`${c.from}\u0000${c.to}`, c]));
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  let out = `| from \\ to | ${m.destinations.map((d) => `\`${d.id}\``).join(' | ')} |\n|---|${m.destinations.map(() => '---').join('|')}|\n`;
  for (const s of m.sources) out += `| \`${s.id}\` | ${m.destinations.map((d) => esc(byKey.get(`${s.id}\u0000${d.id}`)?.summary ?? '')).join(' | ')} |\n`;
  return out;
}

/** `--from A --to B [METHOD path]`: yes or no, and why; the exit code says it too. */
function question(mesh: MeshInput, ctx: ReturnType<typeof reachContext>, opts: Opts, request: { method: string; path: string } | undefined): void {
  const sources = resolveSources(ctx, opts.from!);
  const { destinations, only } = resolveDestinations(ctx, opts.to!);
  const probes = request ? [{ method: request.method, path: request.path, tcp: false, methodLabel: request.method, pathLabel: request.path }] : undefined;
  const m = reachMatrix(mesh.config, mesh.registry, { context: ctx, sources, destinations, onlyWorkloads: only, ...(probes ? { probes } : {}) });
  const answers = m.cells.map((c) => (request ? answerOf(c, request) : { cell: c, yes: c.access !== 'none' }));
  if (opts.output === 'json') {
    process.stdout.write(JSON.stringify(request
      ? answers.map((a) => ({ from: a.cell.from, to: a.cell.to, request, allowed: a.yes, ...('probe' in a ? { verdict: a.probe.verdict, decision: a.probe.decision, ...(a.probe.byWorkload ? { byWorkload: a.probe.byWorkload } : {}) } : {}) }))
      : m.cells, null, 2) + '\n');
  } else {
    let out = '';
    for (const a of answers) {
      if (!request) { out += renderCell(a.cell); continue; }
      const p = (a as { probe: ReachCell['probes'][number] }).probe;
      const what = `${request.method} ${request.path}`;
      out += `${a.yes ? 'yes' : 'no'}: ${a.cell.from} ${a.yes ? 'may' : 'may not'} call ${a.cell.to} with ${what}\n`;
      if (p.byWorkload) for (const t of p.byWorkload) out += `  at ${t.workload}: ${t.allowed ? 'allowed' : 'denied'} — ${t.reason} (${describeDecision(t)})\n`;
      else {
        const short = describeDecision(p.decision);
        out += `  ${p.decision.reason}${p.decision.kind === 'allow-policy' || p.decision.kind === 'deny-policy' || short === p.decision.reason ? '' : ` (${short})`}\n`;
      }
    }
    process.stdout.write(out);
  }
  if (!answers.every((a) => a.yes)) process.exitCode = 1;
}

/** The cell's answer to one request: the matrix computed with that request as its only probe. */
function answerOf(c: ReachCell, request: { method: string; path: string }): { cell: ReachCell; yes: boolean; probe: ReachCell['probes'][number] } {
  const p = c.probes.find((x) => x.tcp || (x.method === request.method && x.path === request.path));
  if (!p) throw new Error(`internal: no probe for ${request.method} ${request.path} in ${c.from} → ${c.to}`);
  return { cell: c, yes: p.verdict === 'allowed', probe: p };
}

function diff(args: string[], opts: Opts): void {
  if (args.length !== 2) throw new CliError('usage: trellis reach --diff <old> <new>  (directories, REV:path or git:REV)', 2);
  const sides = diffSides(args[0]!, args[1]!);
  try {
    const side = (s: typeof sides.old) => {
      const mesh = meshOf(loadConfig([s.path], { cwd: s.root }));
      if (report(mesh.diagnostics, { quiet: true }) > 0) throw new CliError(`the configuration of ${s.label} has errors (above): fix them first`, 1);
      return mesh;
    };
    const d = diffReach(side(sides.old), side(sides.new));
    process.stdout.write(opts.output === 'json' ? JSON.stringify(d, null, 2) + '\n' : opts.output === 'markdown' ? renderDiffMarkdown(d) : renderDiffText(d));
    if (opts.exitCode && d.changes.length > 0) process.exitCode = 1;
  } finally {
    sides.cleanup();
  }
}
