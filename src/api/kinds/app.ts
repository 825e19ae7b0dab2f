/**
 * `trellis.dev/v1alpha1` App: the local-mode manifest. It declares an
 * application's services, their ports, and the workloads (commands and
 * replicas) that run them; `trellis up` starts every instance with a sidecar.
 *
 * ```yaml
 * apiVersion: trellis.dev/v1alpha1
 * kind: App
 * metadata: { name: bank }
 * spec:
 *   namespace: bank
 *   services:
 *   - name: accounts
 *     ports: [{ name: http, port: 8080 }]
 *     health: { path: /healthz, interval: 2s }
 *     workloads:
 *     - name: accounts-v1
 *       labels: { version: v1 }
 *       replicas: 2
 *       command: [node, services/accounts.js]
 *       placement: [{ region: eu-west, zone: eu-west-a }, { region: eu-west, zone: eu-west-b }]
 *   - name: frontend                # one workload, named like the service
 *     ports: [{ name: http, port: 3000 }]
 *     command: node services/frontend.js
 *     upstreams:                      # local ports for apps that cannot use HTTP_PROXY, and for TCP
 *     - { service: accounts, port: 8080 }            # TRELLIS_UPSTREAM_ACCOUNTS_8080=127.0.0.1:<any>
 *     - { service: ledger, namespace: core, port: 5432, localPort: 15432 }
 * ```
 *
 * Defaults are applied in one place, `appServices()`, which every reader uses.
 */
import { duration, labels, noDuplicates, port, z, type DeepReadonly } from '../schema.js';
import { defineKind } from '../kind.js';
import { isDnsSubdomain, isLowercaseDnsLabel } from './names.js';

const dnsLabel = (what: string) => z.string().refine(isLowercaseDnsLabel, {
  message: `${what} must be a lowercase DNS-1123 label (a-z, 0-9 and "-", at most 63 characters)`,
});

/** A service port. */
const appPort = z.strictObject({
  /** Port name; its prefix gives the protocol as in Istio (`http`, `grpc-api`, `tcp-db`). Required when a service has several ports. */
  name: dnsLabel('a port name').optional(),
  /** The port callers use (`http://accounts.bank:8080`). */
  port: port(),
  /** The port the application listens on; the service port by default. */
  targetPort: port().optional(),
  /** Overrides the protocol the name gives (`http`, `grpc`, `kubernetes.io/h2c`, …). */
  appProtocol: z.string().optional(),
});

/** An HTTP health check of each instance, made by its sidecar. */
const health = z.strictObject({
  /** Path of the check, answered with 2xx when the instance is ready. */
  path: z.string().startsWith('/', { message: 'a health check path starts with "/"' }),
  /** The application port to check; the first port's targetPort by default. */
  port: port().optional(),
  /** Time between checks; 10s by default. */
  interval: duration({ positive: true }).optional(),
  /** Time a check may take; 1s by default. */
  timeout: duration({ positive: true }).optional(),
});

/** Where an instance runs, for locality-aware load balancing and compliance checks. */
const placement = z.strictObject({
  region: z.string().min(1, { message: 'region must not be empty' }),
  zone: z.string().min(1).optional(),
  subzone: z.string().min(1).optional(),
}).superRefine((p, ctx) => {
  if (p.subzone !== undefined && p.zone === undefined) ctx.addIssue({ code: 'custom', path: ['subzone'], message: 'a subzone needs a zone' });
});

/**
 * A service the instances call through a local port of their sidecar
 * (Consul-style upstreams): `trellis up` opens 127.0.0.1:<localPort> in each
 * instance's sidecar and tells the app in TRELLIS_UPSTREAM_* variables
 * (`upstreamEnvName`). TCP services are tunnelled to the peer's sidecar; HTTP
 * ones are routed as if the app had called `http://<service>.<namespace>:<port>`.
 */
const upstream = z.strictObject({
  service: dnsLabel('an upstream service'),
  /** The service's namespace; the calling workload's by default. */
  namespace: dnsLabel('a namespace').optional(),
  /** The service port. */
  port: port(),
  /** The local port; one per instance picked by `trellis up` when unset. Only for a single replica. */
  localPort: port().optional(),
});

/** How to run instances: shared by a workload and a service's shorthand single workload. */
const runFields = {
  /** Number of instances; 1 by default; 0 declares the workload without running it. */
  replicas: z.number().int({ message: 'replicas must be a whole number' }).min(0, { message: 'replicas must not be negative' }).optional(),
  /** The program: a list (argv, no shell) or a string run by `/bin/sh -c`; run from the app directory. */
  command: z.union([
    z.string().min(1, { message: 'command must not be empty' }),
    z.array(z.string()).min(1, { message: 'command must name a program' }),
  ]).optional(),
  /** Environment variables added to the instance's environment. */
  env: z.record(z.string(), z.string({ message: 'an env value must be a string (quote numbers and booleans)' })).optional(),
  /** One locality for every instance, or one per instance (as many as replicas). */
  placement: z.array(placement).optional(),
  /** Services reached through local ports of the sidecar. */
  upstreams: z.array(upstream).optional(),
};

/** A set of identical instances of a service, like a Deployment. */
const appWorkload = z.strictObject({
  name: dnsLabel('a workload name'),
  /** Labels of the instances; `app: <service name>` is added, so the service selects them. */
  labels: labels.optional(),
  ...runFields,
  command: runFields.command.unwrap(),
});

const appService = z.strictObject({
  /** The service name; callers reach it as `<name>`, `<name>.<namespace>` or `<name>.<namespace>.svc.cluster.local`. */
  name: dnsLabel('a service name'),
  /** The namespace; `spec.namespace` by default. */
  namespace: dnsLabel('a namespace').optional(),
  /** The account the instances run as (their identity); the service name by default. */
  serviceAccount: z.string().refine(isDnsSubdomain, { message: 'a service account must be a lowercase DNS-1123 name' }).optional(),
  /** Labels of the service itself (not of its instances). */
  labels: labels.optional(),
  ports: z.array(appPort).min(1, { message: 'a service needs at least one port' }),
  health: health.optional(),
  /** The workloads that run the service. Or, for a single workload named like the service, set command (and replicas, env, placement) on the service. */
  workloads: z.array(appWorkload).optional(),
  ...runFields,
});

export const appSpec = z.strictObject({
  /** Default namespace of the services; `default` by default. */
  namespace: dnsLabel('a namespace').optional(),
  services: z.array(appService),
}).superRefine((spec, ctx) => {
  const namespaceOf = (s: (typeof spec.services)[number]) => s.namespace ?? spec.namespace ?? 'default';
  noDuplicates(spec.services, (s) => `${s.name}.${namespaceOf(s)}`, ctx, (i) => ['services', i, 'name'], (key, first) => `Duplicate value: service "${key}" is already services[${first}]`);
  const workloads = new Map<string, string>();
  const localPorts = new Map<number, string>();
  spec.services.forEach((s, i) => {
    const at = (...p: PropertyKey[]) => ['services', i, ...p];
    const ns = namespaceOf(s);

    if (s.workloads !== undefined && s.command !== undefined) ctx.addIssue({ code: 'custom', path: at('command'), message: 'set either workloads or command (a single workload named like the service), not both' });
    if (s.workloads === undefined && s.command === undefined) ctx.addIssue({ code: 'custom', path: at('workloads'), message: 'Required value: a service needs workloads, or a command for a single workload' });
    if (s.workloads !== undefined) {
      for (const f of ['replicas', 'env', 'placement', 'upstreams'] as const) {
        if (s[f] !== undefined) ctx.addIssue({ code: 'custom', path: at(f), message: `${f} belongs to each workload when a service lists workloads` });
      }
    }

    if (s.ports.length > 1) s.ports.forEach((p, j) => {
      if (!p.name) ctx.addIssue({ code: 'custom', path: at('ports', j, 'name'), message: 'Required value: every port of a service with several ports needs a name' });
    });
    noDuplicates(s.ports, (p) => p.name, ctx, (j) => at('ports', j, 'name'), (name, first) => `Duplicate value: port name "${name}" is already ports[${first}]`);
    noDuplicates(s.ports, (p) => p.port, ctx, (j) => at('ports', j, 'port'), (port, first) => `Duplicate value: port ${port} is already ports[${first}]`);

    const ws = s.workloads ?? [{ name: s.name, replicas: s.replicas, placement: s.placement, env: s.env, upstreams: s.upstreams }];
    ws.forEach((w, j) => {
      const wat = (...p: PropertyKey[]) => (s.workloads ? at('workloads', j, ...p) : at(...p));
      const wkey = `${w.name}.${ns}`;
      const first = workloads.get(wkey);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: s.workloads ? wat('name') : at('name'), message: `Duplicate value: workload "${wkey}" is already declared by ${first}` });
      else workloads.set(wkey, s.workloads ? `services[${i}].workloads[${j}]` : `services[${i}]`);
      const replicas = w.replicas ?? 1;
      const n = w.placement?.length;
      if (n !== undefined && n !== 1 && n !== replicas) {
        ctx.addIssue({ code: 'custom', path: wat('placement'), message: `placement lists ${n} localities for ${replicas} replica${replicas === 1 ? '' : 's'}: give one for all, or one per replica` });
      }
      const app = 'labels' in w ? (w.labels as Record<string, string> | undefined)?.app : undefined;
      if (app !== undefined && app !== s.name) {
        ctx.addIssue({ code: 'custom', path: wat('labels', 'app'), message: `label app is set to the service name "${s.name}" for its workloads; remove it or use another label` });
      }
      for (const k of Object.keys(w.env ?? {})) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) ctx.addIssue({ code: 'custom', path: wat('env', k), message: `"${k}" is not a valid environment variable name` });
      }
      checkUpstreams(w.upstreams ?? [], { service: s.name, workload: w.name, namespace: ns, replicas }, (k, ...p) => wat('upstreams', k, ...p), localPorts, ctx);
    });
  });
});

type UpstreamInput = z.infer<typeof upstream>;

/**
 * A workload's upstreams: each one once, each variable name once, and a
 * fixed local port only for a single instance and only once in the App
 * (`localPorts` remembers where each fixed port was declared).
 */
function checkUpstreams(
  ups: readonly UpstreamInput[], w: { service: string; workload: string; namespace: string; replicas: number },
  at: (k: number, ...p: PropertyKey[]) => PropertyKey[], localPorts: Map<number, string>, ctx: z.RefinementCtx,
): void {
  const who = `service "${w.service}" workload "${w.workload}"`;
  const seen = new Map<string, number>();
  const names = new Map<string, number>();
  ups.forEach((u, k) => {
    const key = `${u.service}.${u.namespace ?? w.namespace}:${u.port}`;
    const first = seen.get(key);
    if (first !== undefined) ctx.addIssue({ code: 'custom', path: at(k), message: `Duplicate value: ${who} already has upstream ${key} at upstreams[${first}]` });
    else seen.set(key, k);
    const env = upstreamEnvName(u, w.namespace);
    const clash = names.get(env);
    if (clash !== undefined && first === undefined) ctx.addIssue({ code: 'custom', path: at(k), message: `${who}: upstream ${key} would be announced as ${env}, like upstreams[${clash}]; the variable names must differ` });
    else names.set(env, k);
    if (u.localPort === undefined) return;
    if (w.replicas > 1) {
      ctx.addIssue({ code: 'custom', path: at(k, 'localPort'), message: `${who} has ${w.replicas} replicas, which cannot all listen on localPort ${u.localPort} for upstream ${key}: remove localPort (trellis up then picks one per instance) or run one replica` });
      return;
    }
    const other = localPorts.get(u.localPort);
    if (other !== undefined) ctx.addIssue({ code: 'custom', path: at(k, 'localPort'), message: `Duplicate value: localPort ${u.localPort} of ${who} is already the local port of ${other}` });
    else localPorts.set(u.localPort, `upstream ${key} of ${who}`);
  });
}

/**
 * The variable that tells an app where an upstream listens:
 * `TRELLIS_UPSTREAM_<SERVICE>_<PORT>`, with `_<NAMESPACE>` after the service
 * when it is in another namespace than the caller; letters upper-cased, `-`
 * turned into `_` (`ledger` in `core`, port 5432, called from `bank`:
 * `TRELLIS_UPSTREAM_LEDGER_CORE_5432`). `_HOST` and `_PORT` are added to it
 * for the two halves of its `127.0.0.1:<port>` value.
 */
export function upstreamEnvName(u: { readonly service: string; readonly namespace?: string | undefined; readonly port: number }, callerNamespace: string): string {
  const ns = u.namespace ?? callerNamespace;
  const name = ns === callerNamespace ? u.service : `${u.service}_${ns}`;
  return `TRELLIS_UPSTREAM_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_${u.port}`;
}

export type AppSpec = DeepReadonly<z.infer<typeof appSpec>>;

export const App = defineKind({
  kind: 'App',
  group: 'trellis.dev',
  versions: ['v1alpha1'],
  namespaced: false,
  body: z.strictObject({ spec: appSpec }),
  docs: 'The local-mode manifest: services, their ports and health checks, and the workloads (commands, replicas, env, placement, upstreams on local ports) that run them.',
});

/** A locality of an instance; empty strings where not given. */
export interface AppLocality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

/** An App workload with every default applied. */
export interface AppWorkloadResolved {
  readonly name: string;
  /** The workload's labels with `app: <service name>`. */
  readonly labels: Readonly<Record<string, string>>;
  readonly replicas: number;
  /** argv (a list) or a shell command (a string). */
  readonly command: string | readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** One locality per replica (length = replicas). */
  readonly placement: readonly AppLocality[];
  /** Services reached through local ports of the sidecar, namespaces filled in. */
  readonly upstreams: readonly AppUpstreamResolved[];
}

/** An upstream with its namespace; `localPort` only when the manifest fixes it. */
export interface AppUpstreamResolved {
  readonly service: string;
  readonly namespace: string;
  readonly port: number;
  readonly localPort?: number;
  /** The app's variable for it (`upstreamEnvName`). */
  readonly env: string;
}

/** An App service with every default applied. */
export interface AppServiceResolved {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ports: readonly { readonly name: string; readonly port: number; readonly targetPort: number; readonly appProtocol?: string }[];
  readonly health?: { readonly path: string; readonly port: number; readonly interval: string; readonly timeout: string };
  readonly workloads: readonly AppWorkloadResolved[];
}

const NO_LOCALITY: AppLocality = Object.freeze({ region: '', zone: '', subzone: '' });

/** The services of a validated App with every default applied: the one place App defaults live. */
export function appServices(spec: AppSpec): AppServiceResolved[] {
  return spec.services.map((s) => {
    const namespace = s.namespace ?? spec.namespace ?? 'default';
    const ports = s.ports.map((p) => ({ name: p.name ?? '', port: p.port, targetPort: p.targetPort ?? p.port, ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}) }));
    const ws = s.workloads ?? [{ name: s.name, labels: undefined, replicas: s.replicas, command: s.command!, env: s.env, placement: s.placement, upstreams: s.upstreams }];
    const workloads = ws.map((w): AppWorkloadResolved => {
      const replicas = w.replicas ?? 1;
      const given = (w.placement ?? []).map((p) => ({ region: p.region, zone: p.zone ?? '', subzone: p.subzone ?? '' }));
      const placement = Array.from({ length: replicas }, (_, i) => given.length === 0 ? NO_LOCALITY : given.length === 1 ? given[0]! : given[i] ?? NO_LOCALITY);
      const upstreams = (w.upstreams ?? []).map((u): AppUpstreamResolved => ({
        service: u.service, namespace: u.namespace ?? namespace, port: u.port,
        ...(u.localPort !== undefined ? { localPort: u.localPort } : {}), env: upstreamEnvName(u, namespace),
      }));
      return { name: w.name, labels: { ...w.labels, app: s.name }, replicas, command: w.command, env: { ...w.env }, placement, upstreams };
    });
    return {
      name: s.name,
      namespace,
      serviceAccount: s.serviceAccount ?? s.name,
      labels: { ...s.labels },
      ports,
      ...(s.health ? { health: { path: s.health.path, port: s.health.port ?? ports[0]!.targetPort, interval: s.health.interval ?? '10s', timeout: s.health.timeout ?? '1s' } } : {}),
      workloads,
    };
  });
}
