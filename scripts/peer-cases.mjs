#!/usr/bin/env node
// Developer aid: runs Istio's analyzer cases through the built Trellis analyzers
// and prints each case's verdict. `node scripts/peer-cases.mjs [analyzer-substring]`
// (run `npm run build` first).
import { peerCases, runCase } from '../dist/test/analyze/peer.js';
const filter = process.argv[2] ?? '';
let agree = 0, n = 0;
for (const c of peerCases()) {
  if (!c.analyzerName.includes(filter)) continue;
  n++;
  const r = runCase(c);
  if (r.agree) agree++;
  console.log(`${r.agree ? 'agree   ' : 'DISAGREE'} #${c.id} ${c.name} (${c.analyzerName})${r.covered ? '' : ' [no Trellis analyzer]'}`);
  if (!r.agree) {
    if (r.missing.length) console.log(`    missing: ${r.missing.join('; ')}`);
    if (r.extra.length) console.log(`    extra:   ${r.extra.join('; ')}`);
  }
}
console.log(`${agree} of ${n} agree`);
