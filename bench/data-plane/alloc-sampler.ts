/**
 * Where a sidecar allocates, per request: preload this module into the
 * sidecars and toggle V8's sampling heap profiler with SIGUSR2.
 *
 *   NODE_OPTIONS="--import=$PWD/dist/bench/data-plane/alloc-sampler.js" \
 *     node dist/bench/data-plane/stand.js
 *   kill -USR2 <sidecar pid>      # start sampling
 *   h2load … -n 5000 …            # a known number of requests
 *   kill -USR2 <sidecar pid>      # stop: writes the profile
 *   node dist/bench/data-plane/profile-top.js <file>.heapprofile --per 5000
 *
 * Objects already collected are counted too (V8's includeObjectsCollectedBy*
 * flags): what matters for the scavenger is how much a request allocates,
 * not what survives. One sample per 512 bytes on average. The profile goes
 * to `$TRELLIS_ALLOC_DIR` (default: the temp dir) as
 * `alloc.<instance>.<pid>.heapprofile`, and its path is printed on stderr.
 * Processes other than `trellis proxy` (the control plane, the bench) load it
 * and do nothing.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SAMPLING_INTERVAL_BYTES = 512;

function install(instance: string): void {
  const session = new Session();
  session.connect();
  let sampling = false;
  process.on('SIGUSR2', () => {
    if (!sampling) {
      sampling = true;
      session.post('HeapProfiler.startSampling', {
        samplingInterval: SAMPLING_INTERVAL_BYTES,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      }, (err) => { if (err) process.stderr.write(`alloc-sampler: ${err.message}\n`); });
      process.stderr.write(`alloc-sampler: ${instance} (${process.pid}) sampling\n`);
      return;
    }
    sampling = false;
    session.post('HeapProfiler.stopSampling', (err, r) => {
      if (err) { process.stderr.write(`alloc-sampler: ${err.message}\n`); return; }
      const file = join(process.env.TRELLIS_ALLOC_DIR ?? tmpdir(), `alloc.${instance}.${process.pid}.heapprofile`);
      writeFileSync(file, JSON.stringify(r.profile));
      process.stderr.write(`alloc-sampler: ${instance} (${process.pid}) wrote ${file}\n`);
    });
  });
}

const argv = process.argv;
const at = argv.indexOf('--instance');
if (argv.includes('proxy') && at > 0 && argv[at + 1]) install(argv[at + 1]!);
