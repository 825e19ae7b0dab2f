/**
 * What `trellis up` runs for a configuration: the gateway workloads (those a
 * Gateway's selector picks) and every instance of every App workload, with
 * the ports each process gets. Pure: the ports come in from the caller.
 */
import type { ConfigSet } from '../../api/config-set.js';
import { appServices } from '../../api/kinds/app.js';
import { labelsMatch } from '../../policy/route-match.js';
import { instanceName } from '../../registry/endpoints.js';
import type { Registry } from '../../registry/types.js';
import { CliError } from '../cli-error.js';

/** One instance of an App workload: its sidecar and its app. */
export interface InstancePlan {
  /** `accounts-v1.bank#0`, or `frontend.bank` for a single replica. */
  readonly instance: string;
  readonly service: string;
  readonly workload: string;
  readonly namespace: string;
  /** The `version` label; `''` when there is none. */
  readonly version: string;
  readonly region: string;
  readonly zone: string;
  readonly command: string | readonly string[];
  /** The manifest's `env`. */
  readonly env: Readonly<Record<string, string>>;
  /** The app's health check path; undefined when the service declares none (then a TCP connect decides). */
  readonly healthPath?: string;
  readonly appPort: number;
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly adminPort: number;
  /** The manifest's upstreams, each with its local port in this instance's sidecar. */
  readonly upstreams: readonly UpstreamPlan[];
}

/** A per-upstream local port of one instance: the sidecar's `--upstream <host>:<port>=<localPort>`, the app's `<env>`. */
export interface UpstreamPlan {
  /** `<service>.<namespace>` */
  readonly host: string;
  readonly port: number;
  readonly localPort: number;
  /** The app's variable for it (`upstreamEnvName` in src/api/kinds/app.ts). */
  readonly env: string;
}

/** One instance of a gateway workload (the ingress): a `trellis proxy --gateway` and no app. */
export interface GatewayPlan {
  readonly instance: string;
  readonly workload: string;
  readonly namespace: string;
  /** `namespace/name` of each Gateway that selects the workload. */
  readonly gateways: readonly string[];
  /** Gateway server port → the local port it listens on. */
  readonly listen: Readonly<Record<number, number>>;
  /** The server ports that speak HTTP, for the URL to try. */
  readonly httpPorts: readonly number[];
  readonly adminPort: number;
}

export interface MeshPlan {
  readonly controlPlane: { readonly grpcPort: number; readonly adminPort: number };
  readonly gateways: readonly GatewayPlan[];
  readonly instances: readonly InstancePlan[];
  /** Things worth saying before starting (a Gateway that selects nothing, an env variable the mesh overrides). */
  readonly warnings: readonly string[];
}

/** How many ports `planMesh` will ask for. */
export function portsNeeded(config: ConfigSet, registry: Registry): number {
  let n = 0;
  planMesh(config, registry, () => ++n);
  return n;
}

/** The plan, taking each port from `port()`; throws a CliError when the configuration cannot run locally. */
export function planMesh(config: ConfigSet, registry: Registry, nextPort: () => number): MeshPlan {
  const warnings: string[] = [];
  const allocated: number[] = [];
  const port = () => { const p = nextPort(); allocated.push(p); return p; };
  const controlPlane = { grpcPort: port(), adminPort: port() };

  const gatewayResources = config.ofKind('Gateway').filter((g) => Object.keys(g.body.spec.selector ?? {}).length > 0);
  const gateways: GatewayPlan[] = [];
  const selected = new Set<string>();
  for (const w of registry.workloads()) {
    const by = gatewayResources.filter((g) => labelsMatch(g.body.spec.selector!, w.labels));
    if (!by.length) continue;
    selected.add(`${w.name}.${w.namespace}`);
    if (w.kind === 'App') {
      throw new CliError(
        `App workload ${w.name}.${w.namespace} is selected by Gateway ${by.map((g) => `${g.metadata.namespace}/${g.metadata.name}`).join(', ')}: ` +
        'a gateway runs no app command. Declare the gateway workload as a WorkloadEntry with the selector\'s labels, or change the selector.',
      );
    }
    const servers = by.flatMap((g) => g.body.spec.servers);
    const serverPorts = [...new Set(servers.map((s) => s.port.number))].sort((a, b) => a - b);
    const httpPorts = serverPorts.filter((p) => servers.some((s) => s.port.number === p && /^(HTTP|HTTP2|GRPC|GRPC-WEB)$/i.test(s.port.protocol)));
    for (let i = 0; i < w.replicas; i++) {
      const listen: Record<number, number> = {};
      for (const p of serverPorts) listen[p] = port();
      gateways.push({
        instance: instanceName(w, i),
        workload: w.name,
        namespace: w.namespace,
        gateways: by.map((g) => `${g.metadata.namespace}/${g.metadata.name}`),
        listen,
        httpPorts,
        adminPort: port(),
      });
    }
  }
  for (const g of gatewayResources) {
    const any = registry.workloads().some((w) => selected.has(`${w.name}.${w.namespace}`) && labelsMatch(g.body.spec.selector!, w.labels));
    if (!any) warnings.push(`Gateway ${g.metadata.namespace}/${g.metadata.name} selects no workload (selector ${JSON.stringify(g.body.spec.selector)}): no ingress is started for it; declare one as a WorkloadEntry with those labels`);
  }

  const instances: InstancePlan[] = [];
  const fixed = new Map<number, string>();
  for (const app of config.ofKind('App')) {
    for (const s of appServices(app.body.spec)) {
      for (const w of s.workloads) {
        const upstreamVars = new Set(w.upstreams.flatMap((u) => upstreamVariables(u.env)));
        for (const k of Object.keys(w.env)) {
          const overridden = k === 'VERSION' ? w.labels.version !== undefined && w.labels.version !== w.env.VERSION : MESH_ENV.includes(k) || upstreamVars.has(k);
          if (overridden) warnings.push(`${w.name}.${s.namespace}: env ${k} is set by trellis up${k === 'VERSION' ? ' from the version label' : ''}; the manifest's value is ignored`);
        }
        if (w.replicas > 0) warnings.push(...unknownUpstreams(registry, `${w.name}.${s.namespace}`, w.upstreams));
        for (const u of w.upstreams) if (u.localPort !== undefined) fixed.set(u.localPort, `upstream ${u.service}.${u.namespace}:${u.port} of ${w.name}.${s.namespace}`);
        for (let i = 0; i < w.replicas; i++) {
          const loc = w.placement[i]!;
          instances.push({
            instance: instanceName({ name: w.name, namespace: s.namespace, replicas: w.replicas }, i),
            service: s.name,
            workload: w.name,
            namespace: s.namespace,
            version: w.labels.version ?? '',
            region: loc.region,
            zone: loc.zone,
            command: w.command,
            env: w.env,
            ...(s.health ? { healthPath: s.health.path } : {}),
            appPort: port(),
            inboundPort: port(),
            outboundPort: port(),
            adminPort: port(),
            upstreams: w.upstreams.map((u) => ({ host: `${u.service}.${u.namespace}`, port: u.port, localPort: u.localPort ?? port(), env: u.env })),
          });
          if (s.ports.length > 1 && i === 0) warnings.push(`${w.name}.${s.namespace}: service ${s.name} has ${s.ports.length} ports; trellis up gives the app one port (PORT) and the sidecar forwards every service port to it`);
        }
      }
    }
  }
  const taken = allocated.find((p) => fixed.has(p));
  if (taken !== undefined) throw new CliError(`localPort ${taken} of ${fixed.get(taken)} was also picked as a free port for another process of the mesh; run trellis up again, or fix another localPort`);
  return { controlPlane, gateways, instances, warnings };
}

/** The variables that announce one upstream: `<env>`, `<env>_HOST`, `<env>_PORT`. */
function upstreamVariables(env: string): string[] {
  return [env, `${env}_HOST`, `${env}_PORT`];
}

/** Upstreams whose service port the configuration does not declare (yet): their local ports close connections until it does. */
function unknownUpstreams(registry: Registry, workload: string, ups: readonly { service: string; namespace: string; port: number }[]): string[] {
  const out: string[] = [];
  for (const u of ups) {
    const svc = registry.services().find((x) => x.name === u.service && x.namespace === u.namespace);
    if (svc?.ports.some((p) => p.port === u.port)) continue;
    const what = svc ? `service ${u.service}.${u.namespace} has no port ${u.port} (its ports: ${svc.ports.map((p) => p.port).join(', ')})` : `there is no service ${u.service}.${u.namespace}`;
    out.push(`${workload}: upstream ${u.service}.${u.namespace}:${u.port}: ${what}; its local port closes connections until the configuration declares it`);
  }
  return out;
}

/** The variables `trellis up` sets in every app's environment (docs/running-mesh.md). */
export const MESH_ENV = ['HTTP_PROXY', 'http_proxy', 'TRELLIS_OUTBOUND', 'PORT', 'SERVICE', 'WORKLOAD', 'NAMESPACE', 'INSTANCE', 'VERSION'];

/**
 * The app's environment: the parent's, the manifest's `env`, then the mesh's
 * variables (which win, except VERSION when the workload has no version label).
 */
export function appEnv(i: InstancePlan, base: Readonly<Record<string, string | undefined>>): Record<string, string | undefined> {
  const outbound = `http://127.0.0.1:${i.outboundPort}`;
  return {
    ...base,
    ...i.env,
    HTTP_PROXY: outbound,
    http_proxy: outbound, // curl and some libraries read only the lowercase name
    TRELLIS_OUTBOUND: outbound,
    PORT: String(i.appPort),
    SERVICE: i.service,
    WORKLOAD: i.workload,
    NAMESPACE: i.namespace,
    INSTANCE: i.instance,
    ...(i.version || i.env.VERSION === undefined ? { VERSION: i.version } : {}),
    ...Object.fromEntries(i.upstreams.flatMap((u) => {
      const [at, host, port] = upstreamVariables(u.env);
      return [[at, `127.0.0.1:${u.localPort}`], [host, '127.0.0.1'], [port, String(u.localPort)]];
    })),
  };
}

/** Variables that would send a process's own HTTP or gRPC connections through a proxy (grpc-js reads them too). */
const PROXY_VARS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'grpc_proxy', 'ALL_PROXY', 'all_proxy'];

/**
 * The environment of the control plane and the proxies: the parent's
 * without proxy settings, so their loopback connections to each other never
 * go through a proxy the user's shell names.
 */
export function meshProcessEnv(base: Readonly<Record<string, string | undefined>>): Record<string, string | undefined> {
  const env = { ...base };
  for (const k of PROXY_VARS) delete env[k];
  return env;
}
