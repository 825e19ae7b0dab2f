/** `trellis control-plane`: the control plane as a process (docs/running-mesh.md). */
import { Command } from 'commander';
import { createControlPlane } from '../../controlplane/control-plane.js';
import { formatEvent } from '../../controlplane/events.js';
import { durationArg, logLine, portArg } from '../args.js';
import { CliError } from '../cli-error.js';

interface Flags {
  config: string;
  host: string;
  adminHost: string;
  grpcPort: number;
  adminPort: number;
  registrationGrace: number;
  goneAfter: number;
  leaveGrace: number;
  scrapeInterval: number;
  stateDir?: string;
  caCert?: string;
  caKey?: string;
  caChain?: string;
  workloadCertTtl?: number;
  serverName: string[];
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function controlPlaneCommand(): Command {
  return new Command('control-plane')
    .summary('run the control plane: watch configuration, register proxies, push snapshots')
    .description(
      'Watches a directory of YAML configuration (Istio networking/security kinds, App manifests,\n' +
      'WorkloadEntries), registers the proxies that connect over gRPC (each names the instance it\n' +
      'serves; what that instance is comes from the configuration), compiles each proxy\'s snapshot\n' +
      'and pushes it whenever it changes. An edit with errors is reported with file:line and the last\n' +
      'good version of that file stays in force.\n\n' +
      'Admin API (HTTP, JSON) on --admin-port: /ready /services /endpoints /proxies /config/errors\n' +
      '/api/topology (the service graph, from scraping every proxy\'s /metrics) /metrics.\n' +
      'Logs one line per event on stdout. SIGTERM or SIGINT closes it cleanly.\n\n' +
      'Identity: the control plane runs the mesh\'s CA. Its root (ECDSA P-256) is made on first start and\n' +
      'kept in --state-dir/ca (key 0600), or plugged in with --ca-cert/--ca-key (and --ca-chain for an\n' +
      'intermediate). Proxies get workload certificates (SPIFFE ID as URI SAN) through the gRPC port,\n' +
      'which is TLS; the stream itself is mTLS. Join tokens for new proxies: `trellis token create`.\n\n' +
      'Example:\n' +
      '  trellis control-plane --config examples/bank --grpc-port 0 --admin-port 0',
    )
    .requiredOption('--config <dir>', 'configuration directory (or file), watched for changes')
    .option('--host <address>', 'address the gRPC server (proxies connect to it) binds to', '127.0.0.1')
    .option('--admin-host <address>', 'address the admin API binds to; it is unauthenticated (it can rotate the CA), so loopback by default', '127.0.0.1')
    .option('--grpc-port <port>', 'gRPC port of the proxy stream (0 = any free port)', portArg('--grpc-port'), 15010)
    .option('--admin-port <port>', 'admin API port (0 = any free port)', portArg('--admin-port'), 15014)
    .option('--registration-grace <duration>', 'after a start, how long to wait for instances to register again before pushing snapshots without them to proxies that already serve one', durationArg('--registration-grace'), 10_000)
    .option('--gone-after <duration>', 'how long an instance whose stream closed stays known (out of rotation) before it is forgotten', durationArg('--gone-after'), 30_000)
    .option('--leave-grace <duration>', 'when an instance says it is leaving, how long to wait for every caller proxy to ACK a snapshot without it before telling it drained anyway', durationArg('--leave-grace'), 5000)
    .option('--scrape-interval <duration>', 'how often to scrape every connected proxy\'s /metrics for /api/topology (0 = off)', (v: string) => (v === '0' ? 0 : durationArg('--scrape-interval')(v)), 5000)
    .option('--state-dir <dir>', 'directory for state kept across restarts (control-plane.json: the registered instances)')
    .option('--ca-cert <file>', 'a CA certificate (root or intermediate) to sign workload certificates with, PEM')
    .option('--ca-key <file>', 'its private key, PEM (0600)')
    .option('--ca-chain <file>', 'the chain from --ca-cert up to the root, PEM (for an intermediate)')
    .option('--workload-cert-ttl <duration>', 'lifetime of workload certificates (renewed at half life)', durationArg('--workload-cert-ttl'))
    .option('--server-name <name>', 'an address proxies dial the control plane at (IP or DNS name), for its serving certificate (repeatable)', collect, [] as string[])
    .action(async (flags: Flags) => {
      if ((flags.caCert === undefined) !== (flags.caKey === undefined)) throw new CliError('--ca-cert and --ca-key go together', 2);
      if (flags.caChain !== undefined && flags.caCert === undefined) throw new CliError('--ca-chain needs --ca-cert and --ca-key', 2);
      if (flags.workloadCertTtl !== undefined && flags.workloadCertTtl < 1000) throw new CliError('--workload-cert-ttl must be at least 1s', 2);
      const cp = createControlPlane({
        ...(flags.caCert && flags.caKey ? { caFiles: { certFile: flags.caCert, keyFile: flags.caKey, ...(flags.caChain ? { chainFile: flags.caChain } : {}) } } : {}),
        ...(flags.workloadCertTtl !== undefined ? { workloadCertTtlMs: flags.workloadCertTtl } : {}),
        ...(flags.serverName.length ? { serverNames: flags.serverName } : {}),
        config: flags.config,
        host: flags.host,
        adminHost: flags.adminHost,
        grpcPort: flags.grpcPort,
        adminPort: flags.adminPort,
        registrationGraceMs: flags.registrationGrace,
        goneAfterMs: flags.goneAfter,
        leaveGraceMs: flags.leaveGrace,
        scrapeIntervalMs: flags.scrapeInterval,
        ...(flags.stateDir ? { stateDir: flags.stateDir } : {}),
        log: (e) => logLine('control-plane', formatEvent(e)),
      });
      try {
        await cp.start(); // logs "listening grpc=… admin=…"
      } catch (e) {
        throw new CliError(`cannot start the control plane: ${(e as Error).message}`);
      }
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          logLine('control-plane', `${sig}: closing`);
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          const force = setTimeout(() => process.exit(1), 5000);
          force.unref();
          void cp.close().then(() => {
            logLine('control-plane', 'closed');
            resolve();
          });
        };
        const onTerm = () => stop('SIGTERM');
        const onInt = () => stop('SIGINT');
        process.on('SIGTERM', onTerm);
        process.on('SIGINT', onInt);
      });
    });
}
