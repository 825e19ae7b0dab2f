/** The command lines `trellis up` runs: the control plane, gateway proxies and sidecars (docs/running-mesh.md). */
import { join } from 'node:path';
import type { GatewayPlan, InstancePlan, MeshPlan } from './plan.js';

/** Where a proxy of `trellis up` keeps its key and certificate (0600), so a restart renews instead of needing a new join token. */
export function identityDir(stateDir: string, instance: string): string {
  return join(stateDir, 'identity', instance.replace(/[^\w.-]/g, '_'));
}

export function controlPlaneArgs(plan: MeshPlan, configDir: string, stateDir: string): string[] {
  return ['control-plane', '--config', configDir, '--grpc-port', String(plan.controlPlane.grpcPort), '--admin-port', String(plan.controlPlane.adminPort), '--state-dir', stateDir];
}

export function gatewayArgs(plan: MeshPlan, g: GatewayPlan, stateDir: string): string[] {
  return [
    'proxy', '--gateway', '--instance', g.instance, '--identity-dir', identityDir(stateDir, g.instance),
    '--control-plane', `127.0.0.1:${plan.controlPlane.grpcPort}`,
    '--admin-port', String(g.adminPort),
    ...Object.entries(g.listen).flatMap(([server, local]) => ['--listen', `${server}=${local}`]),
  ];
}

/** How often a sidecar of `trellis up` checks its app: a crashed app leaves rotation within about this long. */
export const SIDECAR_HEALTH_INTERVAL = '500ms';

export function sidecarArgs(plan: MeshPlan, i: InstancePlan, stateDir: string): string[] {
  return [
    'proxy', '--instance', i.instance, '--identity-dir', identityDir(stateDir, i.instance),
    '--control-plane', `127.0.0.1:${plan.controlPlane.grpcPort}`,
    '--inbound-port', String(i.inboundPort),
    '--outbound-port', String(i.outboundPort),
    '--admin-port', String(i.adminPort),
    '--app-port', String(i.appPort),
    // Every app is checked: its health path, or else a TCP connect (so a crashed app leaves rotation either way).
    ...(i.healthPath ? ['--health-path', i.healthPath] : ['--health-tcp']),
    '--health-interval', SIDECAR_HEALTH_INTERVAL,
    ...i.upstreams.flatMap((u) => ['--upstream', `${u.host}:${u.port}=${u.localPort}`]),
  ];
}
