/**
 * A small, lenient reader of the Prometheus text exposition format (0.0.4),
 * for the control plane's scrapes of its proxies: one sample per line —
 * metric name, optional `{label="value",…}` with `\\`, `\"` and `\n`
 * escapes, value, optional timestamp. Comments (`# HELP`, `# TYPE`, any
 * other `#` line) and blank lines are skipped; a line that is not a sample
 * is counted in `skipped`, never thrown on, so one odd line from a proxy
 * does not lose the whole scrape.
 *
 * `keep` filters by metric name before the labels are read, so a scrape
 * that wants two families does not pay for the others (process and proxy
 * metrics).
 */

export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PromText {
  readonly samples: PromSample[];
  /** Lines that were neither comments, blank, nor samples. */
  readonly skipped: number;
}

const NAME_CHAR = /[a-zA-Z0-9_:]/;

/** Go's ParseFloat spellings that Number() does not read: Inf and NaN in any case (prom-client writes `Nan`). */
function parseValue(v: string): number {
  const lower = v.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  if (lower === 'nan') return NaN;
  return v === '' ? NaN : Number(v);
}

/** Reads `{…}` starting at `line[at] === '{'`; returns the labels and the index after `}`, or undefined when malformed. */
function parseLabels(line: string, at: number): { labels: Record<string, string>; end: number } | undefined {
  const labels: Record<string, string> = {};
  let i = at + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return { labels, end: i + 1 };
    const nameStart = i;
    while (i < line.length && line[i] !== '=' && line[i] !== ' ') i++;
    const name = line.slice(nameStart, i);
    while (line[i] === ' ') i++;
    if (!name || line[i] !== '=') return undefined;
    i++;
    while (line[i] === ' ') i++;
    if (line[i] !== '"') return undefined;
    i++;
    let value = '';
    let from = i;
    for (;;) {
      const c = line[i];
      if (c === undefined) return undefined;
      if (c === '"') break;
      if (c === '\\') {
        value += line.slice(from, i);
        const next = line[i + 1];
        value += next === 'n' ? '\n' : next ?? '';
        i += 2;
        from = i;
        continue;
      }
      i++;
    }
    labels[name] = value + line.slice(from, i);
    i++;
  }
}

/** Parses an exposition; samples whose name `keep` refuses are passed over. */
export function parsePromText(text: string, keep: (name: string) => boolean = () => true): PromText {
  const samples: PromSample[] = [];
  let skipped = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '' || line.startsWith('#')) continue;
    let i = 0;
    while (i < line.length && NAME_CHAR.test(line[i]!)) i++;
    const name = line.slice(0, i);
    if (!name) { skipped++; continue; }
    if (!keep(name)) continue;
    let labels: Record<string, string> = {};
    if (line[i] === '{') {
      const l = parseLabels(line, i);
      if (!l) { skipped++; continue; }
      labels = l.labels;
      i = l.end;
    }
    const rest = line.slice(i).trim().split(/\s+/);
    const value = parseValue(rest[0] ?? '');
    if (Number.isNaN(value) && rest[0]?.toLowerCase() !== 'nan') { skipped++; continue; }
    samples.push({ name, labels, value });
  }
  return { samples, skipped };
}

/** One bucket of a histogram: its upper bound (`le`, Infinity for `+Inf`) and cumulative count. */
export interface Bucket {
  readonly le: number;
  readonly count: number;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of cumulative buckets, as Prometheus's
 * `histogram_quantile` computes it: find the bucket the rank falls in and
 * interpolate linearly inside it (the first bucket starts at 0); a rank in
 * the `+Inf` bucket answers the highest finite bound. Undefined without
 * observations or without a `+Inf` bucket. Counts that dip (a reset between
 * two scrapes of different buckets) are raised to stay monotonic first.
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | undefined {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const last = sorted.at(-1);
  if (!last || last.le !== Infinity || sorted.length < 2) return undefined;
  let running = 0;
  const counts = sorted.map((b) => (running = Math.max(running, b.count)));
  const total = counts.at(-1)!;
  if (total <= 0) return undefined;
  const rank = Math.min(Math.max(q, 0), 1) * total;
  let i = counts.findIndex((c) => c >= rank);
  if (i === sorted.length - 1) return sorted[sorted.length - 2]!.le;
  if (i < 0) i = sorted.length - 2;
  const upper = sorted[i]!.le;
  if (i === 0 && upper <= 0) return upper;
  const lower = i === 0 ? 0 : sorted[i - 1]!.le;
  const below = i === 0 ? 0 : counts[i - 1]!;
  const inBucket = counts[i]! - below;
  return inBucket > 0 ? lower + (upper - lower) * ((rank - below) / inBucket) : upper;
}
