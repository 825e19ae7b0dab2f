/** What `trellis up` prints once the mesh is ready: the instance table, the ingress, and what to try. */
import type { MeshPlan } from './plan.js';
import { formatTable } from './table.js';

export function formatSummary(plan: MeshPlan, stateDir: string): string {
  const rows = plan.instances.map((i) => [i.service, i.instance, i.version, i.zone, i.appPort, i.inboundPort, i.outboundPort, i.adminPort]);
  let out = '\n' + formatTable(['SERVICE', 'INSTANCE', 'VERSION', 'ZONE', 'APP', 'INBOUND', 'OUTBOUND', 'ADMIN'], rows);
  if (plan.gateways.length) {
    out += '\n' + formatTable(['INGRESS', 'GATEWAYS', 'LISTEN', 'ADMIN'], plan.gateways.map((g) => [
      g.instance, g.gateways.join(','), Object.entries(g.listen).map(([s, l]) => `127.0.0.1:${l} (port ${s})`).join(', '), g.adminPort,
    ]));
  }
  out += `\ncontrol plane: grpc 127.0.0.1:${plan.controlPlane.grpcPort}, admin http://127.0.0.1:${plan.controlPlane.adminPort}/\n`;
  const url = ingressUrl(plan);
  out += '\n';
  if (url) out += `Try:      curl ${url}\n`;
  out += 'Status:   trellis status\n';
  out += `Logs:     trellis logs ${plan.instances[0]?.service ?? '<service>'} [--proxy] [--follow]   (${stateDir}/logs)\n`;
  out += 'Stop:     Ctrl-C\n';
  return out;
}

/** `http://127.0.0.1:<port>/` of the first gateway's first HTTP server port, if any. */
export function ingressUrl(plan: MeshPlan): string | undefined {
  for (const g of plan.gateways) {
    const p = g.httpPorts[0];
    if (p !== undefined) return `http://127.0.0.1:${g.listen[p]}/`;
  }
  return undefined;
}
