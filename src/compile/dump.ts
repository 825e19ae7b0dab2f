/**
 * The stable JSON form of a snapshot (`trellis compile --dump`): keys in a
 * fixed order, maps as sorted arrays, two-space indentation, so that two
 * versions of the control plane can be compared with a plain diff. Documented
 * in docs/snapshot.md.
 */
import type { Snapshot } from '../protocol/snapshot.js';

export function dumpSnapshot(s: Snapshot): string {
  return JSON.stringify(sortKeys(s), null, 2) + '\n';
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== undefined) out[k] = sortKeys(x);
  }
  return out;
}
