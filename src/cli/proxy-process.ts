/**
 * How a proxy process is started. A sidecar runs beside every workload
 * instance, so its memory is multiplied by the size of the mesh; V8's
 * defaults suit a long-running app server, not a proxy whose objects live
 * for one request.
 *
 * `--max-semi-space-size=2` (MiB) caps the young generation at 4 MiB
 * instead of 32: per-request garbage is collected sooner, at no CPU cost
 * measurable in `npm run bench`, and a sidecar under 32 busy connections
 * holds about 83 MB instead of 107 (1 MiB lets too much survive into the
 * old generation under load; 4 MiB saves less).
 *
 * `--no-parallel-scavenge`: young collections on the proxy's own thread.
 * What survives one is small (50–100 KB: the requests in flight), and
 * handing that to V8's helper threads cost more than the copying: a
 * scavenge paused a sidecar 0.6 ms on average with helpers (0.35 ms of it
 * in the parallel phase, plus ~0.1 ms of the helpers' own CPU), 0.34 ms
 * without, for the same survivors (`--trace-gc-nvp`, bench load, two
 * cores). A proxy shares its cores with its app, which is when helpers
 * wait longest to run.
 *
 * These are node flags: they must be on the command line (or in
 * NODE_OPTIONS where node allows them) when the process starts. `trellis up`
 * and the bench start proxies with them; on hosts, run
 * `node --max-semi-space-size=2 --no-parallel-scavenge … proxy`.
 */
export const PROXY_NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=2', '--no-parallel-scavenge']);
