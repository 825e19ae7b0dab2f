/**
 * Field-path patterns such as `spec.http[*].mirror`: which concrete paths of
 * a value they hit. Used for "accepted but not enforced" warnings and for
 * marking Trellis extensions.
 */
type Seg = string | '*';

export function parsePattern(pattern: string): Seg[] {
  const segs: Seg[] = [];
  for (const part of pattern.split('.')) {
    const m = /^([^[\]]*)((?:\[\*\])*)$/.exec(part);
    if (!m) throw new Error(`bad field pattern ${pattern}`);
    if (m[1]) segs.push(m[1]);
    for (let i = 0; i < m[2]!.length / 3; i++) segs.push('*');
  }
  return segs;
}

/** Every concrete path in `value` that the pattern matches and that is set (not undefined). */
export function matchPaths(value: unknown, pattern: readonly Seg[]): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (v: unknown, i: number, path: (string | number)[]): void => {
    if (v === undefined || v === null) return;
    if (i === pattern.length) { out.push(path); return; }
    const seg = pattern[i]!;
    if (seg === '*') {
      if (Array.isArray(v)) v.forEach((x, j) => walk(x, i + 1, [...path, j]));
      else if (typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, i + 1, [...path, k]);
      return;
    }
    if (typeof v === 'object' && !Array.isArray(v)) walk((v as Record<string, unknown>)[seg], i + 1, [...path, seg]);
  };
  walk(value, 0, []);
  return out;
}
