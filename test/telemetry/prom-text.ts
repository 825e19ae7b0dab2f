/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for the
 * tests: every line must be a `# HELP`, a `# TYPE` or a sample of the family
 * the last TYPE named (histograms: `_bucket`, `_sum`, `_count`); label values
 * are unescaped; anything else throws with the line. (The npm parser tried,
 * parse-prometheus-text-format 1.1.1, drops histogram labels, sums and counts.)
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;

function parseLabels(text: string, line: string): Record<string, string> {
  const out: Record<string, string> = {};
  LABEL.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    LABEL.lastIndex = at;
    const m = LABEL.exec(text);
    if (!m) throw new Error(`bad labels in: ${line}`);
    if (m[1]! in out) throw new Error(`label ${m[1]} twice in: ${line}`);
    out[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    at = LABEL.lastIndex;
  }
  return out;
}

function parseValue(v: string, line: string): number {
  // As Prometheus reads them (Go's strconv.ParseFloat): Inf and NaN in any case; prom-client writes `Nan`.
  if (/^\+?inf$/i.test(v)) return Infinity;
  if (/^-inf$/i.test(v)) return -Infinity;
  if (/^nan$/i.test(v)) return NaN;
  const n = Number(v);
  if (!Number.isFinite(n) || v.trim() !== v || v === '') throw new Error(`bad value in: ${line}`);
  return n;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, Family>();
  let current: Family | undefined;
  let help = '';
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) { help = m[2]!; continue; }
    if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      if (!NAME.test(m[1]!) || families.has(m[1]!)) throw new Error(`bad or repeated TYPE: ${line}`);
      current = { name: m[1]!, type: m[2]!, help, samples: [] };
      families.set(current.name, current);
      continue;
    }
    if (line.startsWith('#')) throw new Error(`unexpected comment: ${line}`);
    m = SAMPLE.exec(line);
    if (!m || !current) throw new Error(`not a sample line: ${line}`);
    const name = m[1]!;
    const ok = current.type === 'histogram' ? [`${current.name}_bucket`, `${current.name}_sum`, `${current.name}_count`].includes(name) : name === current.name;
    if (!ok) throw new Error(`sample ${name} outside its family (${current.name}): ${line}`);
    current.samples.push({ name, labels: parseLabels(m[2] ?? '', line), value: parseValue(m[3]!, line) });
  }
  return families;
}

/** The samples of one family whose labels include `match`. */
export function select(f: Family | undefined, match: Readonly<Record<string, string>>, name?: string): Sample[] {
  if (!f) return [];
  return f.samples.filter((s) => (name === undefined || s.name === name) && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** One histogram series: its bucket bounds and cumulative counts, sum and count. */
export function histogram(f: Family | undefined, match: Readonly<Record<string, string>>): { bounds: number[]; counts: number[]; sum: number; count: number } {
  if (!f || f.type !== 'histogram') throw new Error(`not a histogram: ${f?.name}`);
  const buckets = select(f, match, `${f.name}_bucket`);
  const sum = select(f, match, `${f.name}_sum`);
  const count = select(f, match, `${f.name}_count`);
  if (sum.length !== 1 || count.length !== 1) throw new Error(`${f.name}: ${sum.length} series match ${JSON.stringify(match)}`);
  return { bounds: buckets.map((b) => parseValue(b.labels['le']!, 'le')), counts: buckets.map((b) => b.value), sum: sum[0]!.value, count: count[0]!.value };
}
