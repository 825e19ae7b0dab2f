/** `trellis proxy`: one sidecar (or gateway) proxy and its agent, as a process (docs/running-mesh.md). */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { createAgent, type AgentEvent } from '../../proxy/agent.js';
import { createDataPlane } from '../../proxy/data-plane.js';
import { IdentityClient } from '../../proxy/identity-client.js';
import { parseSize, type ProxyLimits } from '../../proxy/limits.js';
import type { UpstreamPort } from '../../proxy/types.js';
import { countArg, durationArg, logLine, portArg } from '../args.js';
import { CliError } from '../cli-error.js';

/** Exit status of a proxy whose registration the control plane refused. */
export const EXIT_REFUSED = 3;

interface Flags {
  controlPlane: string;
  instance: string;
  host: string;
  outboundHost: string;
  inboundPort: number;
  outboundPort: number;
  adminPort: number;
  appPort?: number;
  healthPath?: string;
  healthTcp?: boolean;
  healthInterval: number;
  healthFailures: number;
  leaveTimeout: number;
  drainTimeout: number;
  gateway?: boolean;
  listen: string[];
  upstream: string[];
  claimLabel: string[];
  claimServiceAccount?: string;
  claimIdentity?: string;
  /** false with --no-idle-gc. */
  idleGc: boolean;
  headersTimeout?: number;
  idleTimeout?: number;
  streamIdleTimeout?: number;
  requestTimeout?: number;
  maxRequestHeaders?: number;
  maxRequestBody?: number;
  joinToken?: string;
  joinTokenFile?: string;
  identityDir?: string;
}

/** The join token: --join-token, else the file --join-token-file names, else $TRELLIS_JOIN_TOKEN. */
function joinTokenOf(f: Flags): string | undefined {
  if (f.joinToken !== undefined && f.joinTokenFile !== undefined) throw new CliError('--join-token and --join-token-file exclude each other', 2);
  if (f.joinTokenFile !== undefined) {
    try {
      return readFileSync(f.joinTokenFile, 'utf8').trim();
    } catch (e) {
      throw new CliError(`cannot read --join-token-file ${f.joinTokenFile}: ${(e as Error).message}`, 2);
    }
  }
  return f.joinToken ?? (process.env.TRELLIS_JOIN_TOKEN || undefined);
}

/** A duration flag of the proxy's limits: `30s`, `500ms`, `1h`, or 0 for none. */
function limitDurationArg(flag: string) {
  const parse = durationArg(flag);
  return (v: string): number => {
    const ms = v === '0' ? 0 : Math.round(parse(v));
    if (ms > 2 ** 31 - 1) throw new CliError(`${flag} must be at most 596h (Node's longest timer), not "${v}"`, 2);
    return ms;
  };
}

/** A size flag of the proxy's limits: `64KiB`, `1MiB`, `10MB`, or bytes. */
function sizeArg(flag: string, min: number) {
  return (v: string): number => {
    const n = parseSize(v);
    if (n === undefined || n < min) throw new CliError(`${flag} must be a size like 64KiB, 1MiB or 65536 (bytes)${min > 0 ? `, at least ${min}` : ''}, not "${v}"`, 2);
    return n;
  };
}

/** The limits the flags set; the others keep their defaults (src/proxy/limits.ts). */
function limitsOf(f: Flags): Partial<ProxyLimits> {
  const out: { -readonly [K in keyof ProxyLimits]?: number } = {};
  if (f.headersTimeout !== undefined) out.headersTimeoutMs = f.headersTimeout;
  if (f.idleTimeout !== undefined) out.idleTimeoutMs = f.idleTimeout;
  if (f.streamIdleTimeout !== undefined) out.streamIdleTimeoutMs = f.streamIdleTimeout;
  if (f.requestTimeout !== undefined) out.requestTimeoutMs = f.requestTimeout;
  if (f.maxRequestHeaders !== undefined) out.maxRequestHeadersBytes = f.maxRequestHeaders;
  if (f.maxRequestBody !== undefined) out.maxRequestBodyBytes = f.maxRequestBody;
  return out;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function formatAgentEvent(e: AgentEvent): string {
  switch (e.type) {
    case 'connecting':
      return `connecting to control plane ${e.target} (attempt ${e.attempt})`;
    case 'connected':
      return `connected to control plane ${e.target}`;
    case 'disconnected':
      return `disconnected from control plane: ${e.reason}; retrying in ${e.retryInMs} ms (serving the last snapshot meanwhile)`;
    case 'applied':
      return `snapshot applied version=${e.version}`;
    case 'nack':
      return `snapshot rejected version=${e.version}: ${e.reason}`;
    case 'refused':
      return `registration refused ${e.code}: ${e.reason}`;
    case 'health':
      return `app ${e.healthy ? 'healthy' : 'unhealthy'}${e.detail ? `: ${e.detail}` : ''}`;
    case 'leaving':
      return 'leaving rotation: told the control plane, serving until it says drained';
    case 'drained':
      return e.why === 'acked'
        ? `drained: every caller ACKed a snapshot without this instance (${e.waitedMs} ms)`
        : `drained: the control plane's leave grace passed (${e.waitedMs} ms)${e.pending?.length ? `; not ACKed by ${e.pending.join(',')}` : ''}`;
  }
}

function gatewayPorts(listen: readonly string[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const l of listen) {
    const m = /^(\d{1,5})=(\d{1,5})$/.exec(l);
    if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535 || Number(m[2]) > 65535) throw new CliError(`--listen takes <serverPort>=<localPort> (e.g. 80=18080, 0 for any local port), not "${l}"`, 2);
    out[Number(m[1])] = Number(m[2]);
  }
  return out;
}

/** `--upstream <service>[.<namespace>]:<port>=<localPort>` (repeatable): the per-upstream local ports. */
export function upstreamPorts(values: readonly string[]): UpstreamPort[] {
  const seen = new Map<string, string>();
  return values.map((v) => {
    const m = /^([a-z0-9]([a-z0-9.-]*[a-z0-9])?):(\d{1,5})=(\d{1,5})$/i.exec(v);
    const port = Number(m?.[3]);
    const localPort = Number(m?.[4]);
    if (!m || port < 1 || port > 65535 || localPort > 65535) {
      throw new CliError(`--upstream takes <service>[.<namespace>]:<port>=<localPort> (e.g. db.bank:5432=15432, 0 for any local port), not "${v}"`, 2);
    }
    const host = m[1]!.toLowerCase();
    const key = `${host}:${port}`;
    if (seen.has(key)) throw new CliError(`--upstream ${key} is given twice ("${seen.get(key)}" and "${v}")`, 2);
    seen.set(key, v);
    return { host, port, localPort };
  });
}

export function proxyCommand(): Command {
  return new Command('proxy')
    .summary('run a sidecar (or gateway) proxy that takes its configuration from the control plane')
    .description(
      'Opens the data plane\'s listeners (outbound for the app\'s calls, inbound from other proxies,\n' +
      'admin), registers with the control plane as --instance and serves the snapshots it pushes. While\n' +
      'the control plane is unreachable it keeps serving the last snapshot and reconnects with backoff.\n' +
      `If the control plane refuses the registration (unknown instance, claims that disagree with the\n` +
      `configuration) it exits with status ${EXIT_REFUSED} without serving.\n\n` +
      'Identity: the proxy makes its own key and has the control plane\'s CA sign it. The first time it\n' +
      'proves which instance it is with a one-time join token (--join-token, --join-token-file or\n' +
      '$TRELLIS_JOIN_TOKEN; `trellis up` mints them, `trellis token create <instance>` in hosts mode);\n' +
      'the token also pins the CA root, so even that call is verified TLS. With --identity-dir the\n' +
      'certificate is kept (0600) and a restarted proxy renews with it instead of a new token. The\n' +
      'certificate is renewed at half life; every call to other proxies is mTLS with it.\n\n' +
      'Admin port: /ready /config_dump /metrics.\n' +
      'SIGTERM or SIGINT: leave rotation (tell the control plane `leaving`, keep serving until it answers\n' +
      '`drained` — every caller has ACKed a snapshot without this instance — or --leave-timeout), then\n' +
      'stop accepting, finish the requests in flight (up to --drain-timeout, `Connection: close` on the\n' +
      'responses), exit 0. A second signal skips the wait for `drained`.\n\n' +
      'Examples:\n' +
      '  trellis proxy --control-plane 127.0.0.1:15010 --instance accounts-v1.bank#0 --app-port 18080 --health-path /healthz\n' +
      '  trellis proxy --control-plane 127.0.0.1:15010 --instance ingress.bank --gateway --listen 80=18000\n' +
      '  trellis proxy --control-plane 127.0.0.1:15010 --instance web.bank --app-port 18081 --upstream db.bank:5432=15432',
    )
    .requiredOption('--control-plane <host:port>', 'the control plane\'s gRPC address')
    .requiredOption('--instance <name>', 'the instance this proxy serves: workload.namespace#i, or workload.namespace for one replica')
    .option('--host <address>', 'address the inbound, gateway and admin listeners bind to (and other proxies reach this one at)', '127.0.0.1')
    .option('--outbound-host <address>', 'address the outbound listener binds to: loopback, since whoever reaches it calls the mesh as this workload', '127.0.0.1')
    .option('--inbound-port <port>', 'inbound listener port (0 = any)', portArg('--inbound-port'), 0)
    .option('--outbound-port <port>', 'outbound listener port for the app\'s calls (0 = any)', portArg('--outbound-port'), 0)
    .option('--admin-port <port>', 'admin port (0 = any)', portArg('--admin-port'), 0)
    .option('--app-port <port>', 'where the local app listens (127.0.0.1)', portArg('--app-port'))
    .option('--health-path <path>', 'HTTP health check of the app on --app-port (2xx = healthy); unhealthy instances leave rotation')
    .option('--health-tcp', 'TCP health check of the app on --app-port (a connection = healthy), for apps without a health path')
    .option('--health-interval <duration>', 'time between health checks', durationArg('--health-interval'), 1500)
    .option('--health-failures <n>', 'failed checks in a row before a healthy app leaves rotation (the first check at start decides alone; one pass brings it back)', countArg('--health-failures', 1, 100), 3)
    .option('--leave-timeout <duration>', 'on SIGTERM, how long to wait for the control plane to say drained', durationArg('--leave-timeout'), 7000)
    .option('--drain-timeout <duration>', 'on SIGTERM, how long requests in flight may take to finish after drained', durationArg('--drain-timeout'), 5000)
    .option('--gateway', 'gateway mode: no inbound listener, one listener per --listen')
    .option('--listen <serverPort=localPort>', 'gateway mode: a Gateway server port and the local port to listen on (repeatable)', collect, [] as string[])
    .option('--upstream <service:port=localPort>', 'sidecar: a local port on 127.0.0.1 for a service port (db.bank:5432=15432; TCP is tunnelled, HTTP routed) (repeatable)', collect, [] as string[])
    // Limits on what callers send to the traffic listeners (docs/running-mesh.md names the Envoy setting each mirrors).
    .option('--headers-timeout <duration>', 'the request head must arrive within this, else 408 (0 = none; default 60s)', limitDurationArg('--headers-timeout'))
    .option('--idle-timeout <duration>', 'a connection with no request in flight is closed after this (0 = none; default 1h)', limitDurationArg('--idle-timeout'))
    .option('--stream-idle-timeout <duration>', 'a request in flight with no bytes either way ends after this: 408/504 (0 = none; default 5m)', limitDurationArg('--stream-idle-timeout'))
    .option('--request-timeout <duration>', 'the whole request must arrive within this, else 408 (0 = none, the default)', limitDurationArg('--request-timeout'))
    .option('--max-request-headers <size>', 'the largest request head, else 431 (default 60KiB)', sizeArg('--max-request-headers', 1))
    .option('--max-request-body <size>', 'the largest request body, else 413 (0 = unlimited, the default)', sizeArg('--max-request-body', 0))
    .option('--join-token <token>', 'the one-time join token of this instance (or $TRELLIS_JOIN_TOKEN)')
    .option('--join-token-file <file>', 'read the join token from a file')
    .option('--identity-dir <dir>', 'keep the key and certificate here (0600) so a restart needs no new token')
    .option('--claim-label <key=value>', 'a label the proxy claims; registration is refused if the configuration disagrees (repeatable)', collect, [] as string[])
    .option('--claim-service-account <name>', 'a service account the proxy claims (checked like --claim-label)')
    .option('--claim-identity <spiffe-id>', 'an identity the proxy claims (checked like --claim-label)')
    .option('--no-idle-gc', 'do not collect young garbage while no request is in flight (also $TRELLIS_IDLE_GC=off); by default the proxy does, so that fewer of V8\'s collections land in requests')
    .action(async (f: Flags) => {
      if (f.healthPath !== undefined && !f.healthPath.startsWith('/')) throw new CliError(`--health-path must start with "/", not "${f.healthPath}"`, 2);
      if (f.healthPath !== undefined && f.appPort === undefined) throw new CliError('--health-path needs --app-port', 2);
      if (f.healthTcp && f.appPort === undefined) throw new CliError('--health-tcp needs --app-port', 2);
      if (f.healthTcp && f.healthPath !== undefined) throw new CliError('--health-tcp and --health-path exclude each other', 2);
      if (!f.gateway && f.listen.length) throw new CliError('--listen is for --gateway mode', 2);
      if (f.gateway && f.upstream.length) throw new CliError('--upstream is for sidecars, not --gateway mode', 2);
      const upstreams = upstreamPorts(f.upstream);
      const joinToken = joinTokenOf(f);
      const labels: Record<string, string> = {};
      for (const l of f.claimLabel) {
        const eq = l.indexOf('=');
        if (eq <= 0) throw new CliError(`--claim-label takes key=value, not "${l}"`, 2);
        labels[l.slice(0, eq)] = l.slice(eq + 1);
      }
      const claims = {
        ...(f.claimLabel.length ? { labels } : {}),
        ...(f.claimServiceAccount ? { serviceAccount: f.claimServiceAccount } : {}),
        ...(f.claimIdentity ? { identity: f.claimIdentity } : {}),
      };
      const log = (text: string) => logLine(`proxy ${f.instance}`, text);
      const dp = createDataPlane({
        log,
        ...(upstreams.length ? { upstreams } : {}),
        mode: f.gateway ? 'gateway' : 'sidecar',
        host: f.host,
        outboundHost: f.outboundHost,
        outboundPort: f.outboundPort,
        adminPort: f.adminPort,
        ...(f.gateway ? { gatewayPorts: gatewayPorts(f.listen) } : { inboundPort: f.inboundPort }),
        ...(f.appPort !== undefined ? { appPort: f.appPort } : {}),
        limits: limitsOf(f),
        idleGc: f.idleGc && process.env['TRELLIS_IDLE_GC'] !== 'off',
      });
      let addresses;
      try {
        addresses = await dp.start();
      } catch (e) {
        throw new CliError(`cannot open the proxy's listeners: ${(e as Error).message}`);
      }
      const gw = addresses.gateway ? ` gateway=${Object.entries(addresses.gateway).map(([p, a]) => `${p}=${a}`).join(',')}` : '';
      const ups = addresses.upstreams ? ` upstreams=${Object.entries(addresses.upstreams).map(([u, a]) => `${u}=${a}`).join(',')}` : '';
      log(`listening inbound=${addresses.inbound ?? '-'} outbound=${addresses.outbound ?? '-'} admin=${addresses.admin}${gw}${ups}`);

      let exitCode = 0;
      await new Promise<void>((resolve) => {
        let stopping = false;
        let skipLeave: (() => void) | undefined;
        const stop = async (why: string, code: number) => {
          if (stopping) {
            skipLeave?.();
            return;
          }
          stopping = true;
          exitCode = code;
          const refusedNow = code === EXIT_REFUSED;
          log(`${why}: ${refusedNow ? 'closing' : 'leaving rotation, then draining'}`);
          const force = setTimeout(() => process.exit(code || 1), f.leaveTimeout + f.drainTimeout + 3000);
          force.unref();
          if (!refusedNow) {
            const r = await Promise.race([
              agent.leave(f.leaveTimeout),
              new Promise<undefined>((res) => (skipLeave = () => res(undefined))),
            ]);
            if (!r) log('second signal: not waiting for drained');
            else if (r.why === 'disconnected') log('not connected to the control plane: draining without waiting for the callers');
            else if (r.why === 'local-timeout') log(`no drained from the control plane within ${f.leaveTimeout} ms: draining anyway`);
          }
          await agent.close();
          log(`draining requests in flight (up to ${f.drainTimeout} ms)`);
          const began = performance.now();
          await dp.close(refusedNow ? 0 : f.drainTimeout);
          if (!refusedNow) log(`closed after ${Math.round(performance.now() - began)} ms of draining`);
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          resolve();
        };
        const identity = new IdentityClient({
          controlPlane: f.controlPlane,
          instance: f.instance,
          ...(joinToken ? { joinToken } : {}),
          ...(f.identityDir ? { identityDir: f.identityDir } : {}),
          onCertificate: (c) => {
            try {
              dp.setCertificate({ keyPem: c.keyPem, certChainPem: c.certChainPem });
              dp.setTrustBundle(c.trustBundle);
            } catch (e) {
              log(`the certificate from the control plane cannot be used (the previous one stays): ${(e as Error).message}`);
            }
          },
          log,
        });
        const agent = createAgent({
          controlPlane: f.controlPlane,
          instance: f.instance,
          dataPlane: dp,
          identity,
          ...(Object.keys(claims).length ? { claims } : {}),
          ...(f.healthPath !== undefined && f.appPort !== undefined ? { healthCheck: { port: f.appPort, path: f.healthPath, intervalMs: f.healthInterval, failureThreshold: f.healthFailures } } : {}),
          ...(f.healthTcp && f.appPort !== undefined ? { healthCheck: { port: f.appPort, intervalMs: f.healthInterval, failureThreshold: f.healthFailures } } : {}),
          log: (e) => log(formatAgentEvent(e)),
          onRefused: (code) => void stop(`refused by the control plane (${code}); not serving`, EXIT_REFUSED),
        });
        const onTerm = () => void stop('SIGTERM', 0);
        const onInt = () => void stop('SIGINT', 0);
        process.on('SIGTERM', onTerm);
        process.on('SIGINT', onInt);
        void agent.start();
      });
      process.exitCode = exitCode;
      setTimeout(() => process.exit(exitCode), 1000).unref();
    });
}
