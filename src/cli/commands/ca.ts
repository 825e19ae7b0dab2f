/**
 * `trellis ca`: the mesh's certificate authority as the running control
 * plane holds it — `status` (roots, and which root each instance's
 * certificate came from), `rotate` (start a root rotation) and
 * `finish-rotation` (stop trusting the old root once every proxy renewed).
 */
import { Command } from 'commander';
import type { CaStatus } from '../../controlplane/mesh-identity.js';
import { CliError } from '../cli-error.js';
import { topologySource } from '../topology-client.js';
import { formatTable } from '../up/table.js';

interface Flags {
  admin?: string;
  stateDir?: string;
  output?: 'text' | 'json';
  force?: boolean;
}

async function call(f: Flags, method: 'GET' | 'POST', path: string): Promise<{ status: number; body: unknown }> {
  const src = topologySource({ ...(f.admin ? { admin: f.admin } : {}), ...(f.stateDir ? { stateDir: f.stateDir } : {}) });
  let res: Response;
  try {
    res = await fetch(`http://${src.admin}${path}`, { method, signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new CliError(`the control plane (${src.from}) does not answer: ${(e as Error).message}`);
  }
  return { status: res.status, body: await res.json().catch(() => ({})) };
}

function printStatus(s: CaStatus, f: Flags): void {
  if (f.output === 'json') { process.stdout.write(`${JSON.stringify(s, null, 2)}\n`); return; }
  process.stdout.write(`trust domain ${s.trustDomain}; ${s.managed ? 'root kept in the state dir' : 'CA plugged in from files'}${s.rotating ? '; ROTATING: old and new roots both trusted' : ''}\n\n`);
  process.stdout.write(formatTable(['ROOT (SHA-256)', 'SIGNS', 'NOT AFTER'], s.roots.map((r) => [r.fingerprint.slice(0, 16), r.signing ? 'yes' : 'no (trusted only)', r.notAfter])));
  if (s.issued.length) {
    process.stdout.write('\n');
    process.stdout.write(formatTable(['INSTANCE', 'ROOT', 'SERIAL', 'NOT AFTER'], s.issued.map((i) => [i.instance, i.fromSigningRoot ? 'current' : `old ${i.root.slice(0, 8)}`, i.serial.slice(0, 16), i.notAfter])));
  }
}

const common = (c: Command) => c
  .option('--admin <host:port>', 'the control plane\'s admin API (default: the mesh `trellis up` runs)')
  .option('--state-dir <dir>', 'the state dir of the mesh `trellis up` runs')
  .option('-o, --output <format>', 'text or json', 'text');

export function caCommand(): Command {
  const status = common(new Command('status').summary('the roots, and which root each instance\'s certificate came from'))
    .action(async (f: Flags) => {
      const r = await call(f, 'GET', '/ca');
      if (r.status !== 200) throw new CliError(`the control plane answered ${r.status}: ${JSON.stringify(r.body)}`);
      printStatus(r.body as CaStatus, f);
    });
  const rotate = common(new Command('rotate').summary('start a root rotation: a new root signs, old and new are both trusted'))
    .description(
      'Makes a new root; from now on workload certificates come from it. Every snapshot carries both\n' +
      'roots, so proxies with old-root certificates and proxies with new ones keep talking. Proxies\n' +
      'move to the new root when they renew (at half life). Then run `trellis ca finish-rotation`.',
    )
    .action(async (f: Flags) => {
      const r = await call(f, 'POST', '/ca/rotate');
      if (r.status !== 200) throw new CliError(`rotation refused (${r.status}): ${(r.body as { error?: string }).error ?? JSON.stringify(r.body)}`);
      printStatus(r.body as CaStatus, f);
    });
  const finish = common(new Command('finish-rotation').summary('stop trusting the old roots, once every proxy holds a new-root certificate'))
    .option('--force', 'drop the old roots even though some proxies still hold old-root certificates (they lose their connections)')
    .action(async (f: Flags) => {
      const r = await call(f, 'POST', `/ca/finish-rotation${f.force ? '?force=true' : ''}`);
      if (r.status === 409) {
        const b = r.body as { error: string; pending?: string[] };
        throw new CliError(`${b.error}${b.pending?.length ? `: ${b.pending.join(', ')}` : ''}`);
      }
      if (r.status !== 200) throw new CliError(`the control plane answered ${r.status}: ${JSON.stringify(r.body)}`);
      printStatus(r.body as CaStatus, f);
    });
  return new Command('ca')
    .summary('the mesh\'s certificate authority: status, root rotation')
    .addCommand(status).addCommand(rotate).addCommand(finish);
}
