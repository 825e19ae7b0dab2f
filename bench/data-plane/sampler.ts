/**
 * Profiles of a sidecar over a window the caller chooses: preload this
 * module into the sidecars, and each SIGUSR2 starts or stops V8's sampling
 * profiler. `TRELLIS_SAMPLE=alloc` (the default) samples allocations;
 * `TRELLIS_SAMPLE=cpu` samples the CPU (`--cpu-prof` cannot go in
 * NODE_OPTIONS, and would cover start-up and warm-up too);
 * `TRELLIS_SAMPLE=live` samples allocations and keeps only those still
 * alive when sampling stops (what grew the heap over the window: a leak's
 * stacks).
 *
 *   NODE_OPTIONS="--import=$PWD/dist/bench/data-plane/sampler.js" \
 *     node dist/bench/data-plane/stand.js
 *   kill -USR2 <sidecar pid>      # start
 *   h2load … -n 5000 …            # a known number of requests
 *   kill -USR2 <sidecar pid>      # stop: writes the profile
 *   node dist/bench/data-plane/profile-top.js <file> --per 5000
 *
 * Allocations: objects already collected are counted too (V8's
 * includeObjectsCollectedBy* flags), since what sets the scavenger's pace is
 * how much a request allocates, not what survives; one sample per 512 bytes
 * on average. CPU: one sample every 100 µs. The profile goes to
 * `$TRELLIS_SAMPLE_DIR` (default: the temp dir) as
 * `<kind>.<instance>.<pid>.heapprofile` or `.cpuprofile`; its path is
 * printed on the sidecar's stderr. Processes other than `trellis proxy` (the
 * control plane, the bench itself) load it and do nothing.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ALLOC_INTERVAL_BYTES = 512;
const CPU_INTERVAL_US = 100;

type Kind = 'alloc' | 'cpu' | 'live';

function install(instance: string, kind: Kind): void {
  const session = new Session();
  session.connect();
  const say = (what: string) => process.stderr.write(`sampler: ${instance} (${process.pid}) ${what}\n`);
  const failed = (err: Error | null) => { if (err) say(`failed: ${err.message}`); return err !== null; };
  const save = (profile: object, ext: string) => {
    const file = join(process.env.TRELLIS_SAMPLE_DIR ?? tmpdir(), `${kind}.${instance}.${process.pid}.${ext}`);
    writeFileSync(file, JSON.stringify(profile));
    say(`wrote ${file}`);
  };
  let on = false;
  process.on('SIGUSR2', () => {
    on = !on;
    if (kind !== 'cpu') {
      if (on) {
        const collectedToo = kind === 'alloc';
        session.post('HeapProfiler.startSampling', {
          samplingInterval: ALLOC_INTERVAL_BYTES, includeObjectsCollectedByMajorGC: collectedToo, includeObjectsCollectedByMinorGC: collectedToo,
        }, failed);
      } else {
        const stop = () => session.post('HeapProfiler.stopSampling', (err, r) => { if (!failed(err)) save(r.profile, 'heapprofile'); });
        // Live: a full collection first, so that only what is still reachable counts.
        if (kind === 'live') session.post('HeapProfiler.collectGarbage', stop);
        else stop();
      }
    } else if (on) {
      session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: CPU_INTERVAL_US }, () => session.post('Profiler.start', failed)));
    } else {
      session.post('Profiler.stop', (err, r) => { if (!failed(err)) save(r.profile, 'cpuprofile'); });
    }
    say(on ? `sampling (${kind})` : 'stopped');
  });
}

const argv = process.argv;
const at = argv.indexOf('--instance');
const kind = process.env.TRELLIS_SAMPLE ?? 'alloc';
if (argv.includes('proxy') && at > 0 && argv[at + 1]) {
  if (kind !== 'alloc' && kind !== 'cpu' && kind !== 'live') process.stderr.write(`sampler: TRELLIS_SAMPLE is "${kind}"; it takes alloc, cpu or live\n`);
  else install(argv[at + 1]!, kind);
}
