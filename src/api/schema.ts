/**
 * Building blocks for the kinds' schemas (zod). Every object is strict: an
 * unknown key is an error (TRL1002), never dropped. Rules shared by many kinds
 * live here once: durations, RE2 regexes, ports, label maps, selectors,
 * string matches.
 */
import { z } from 'zod';
import { RE2JS } from 're2js';
import { parseDuration } from './duration.js';

export { z };

/** A duration string (`10s`, `1.5s`, `250ms`, `1m`); `min` in milliseconds. */
export function duration(opts: { min?: number; positive?: boolean } = {}) {
  return z.string().superRefine((s, ctx) => {
    const ms = parseDuration(s);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${s}" is not a valid duration: use a number with a unit, such as 10s, 1.5s, 250ms or 1m` });
      return;
    }
    if (opts.positive && ms <= 0) ctx.addIssue({ code: 'custom', message: `duration must be greater than 0, got "${s}"` });
    if (opts.min !== undefined && ms < opts.min) ctx.addIssue({ code: 'custom', message: `duration must be at least ${opts.min}ms, got "${s}"` });
  });
}

/** Compiles an RE2 pattern anchored to the whole string; the error text, or undefined when valid. */
export function re2Error(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** A regular expression in RE2 syntax (as Istio and Envoy use), checked to compile. */
export function re2() {
  return z.string().superRefine((s, ctx) => {
    const err = re2Error(s);
    if (err !== undefined) ctx.addIssue({ code: 'custom', message: `invalid RE2 regular expression "${s}": ${err}` });
  });
}

/** A TCP/UDP port number, 1–65535. */
export function port() {
  return z.number().int({ message: 'port must be a whole number' }).refine((n) => n >= 1 && n <= 65535, {
    message: 'port must be between 1 and 65535',
  });
}

/** A percentage 0–100 (Istio's `Percent`, or a plain double). */
export function percentage() {
  return z.number().refine((n) => n >= 0 && n <= 100, { message: 'percentage must be between 0 and 100' });
}

/** A map of label keys to values. */
export const labels = z.record(z.string(), z.string());

/** Istio's `WorkloadSelector`. */
export const workloadSelector = z.strictObject({ matchLabels: labels.optional() });

/** Istio's `StringMatch`: exactly one of exact, prefix, regex. */
export const stringMatch = z
  .strictObject({ exact: z.string().optional(), prefix: z.string().optional(), regex: re2().optional() })
  .superRefine((m, ctx) => exactlyOne(m, ['exact', 'prefix', 'regex'], ctx, 'a string match'));

/**
 * Adds an issue unless exactly one of `keys` is set. `what` names the object
 * for the message ("a string match", "a destination").
 */
export function exactlyOne(
  obj: Readonly<Record<string, unknown>>,
  keys: readonly string[],
  ctx: z.RefinementCtx,
  what: string,
): void {
  const set = keys.filter((k) => obj[k] !== undefined);
  if (set.length === 1) return;
  ctx.addIssue({
    code: 'custom',
    message: set.length === 0
      ? `${what} needs one of ${keys.join(', ')}`
      : `${what} may set only one of ${keys.join(', ')}; found ${set.join(' and ')}`,
    path: set.length > 1 ? [set[1]!] : [],
  });
}

/** Adds an issue when more than one of `keys` is set. */
export function atMostOne(
  obj: Readonly<Record<string, unknown>>,
  keys: readonly string[],
  ctx: z.RefinementCtx,
  what: string,
): void {
  const set = keys.filter((k) => obj[k] !== undefined);
  if (set.length > 1) {
    ctx.addIssue({ code: 'custom', message: `${what} may set only one of ${keys.join(', ')}; found ${set.join(' and ')}`, path: [set[1]!] });
  }
}

/** Reports values that appear twice in a list, at the second occurrence. */
export function noDuplicates<T>(
  items: readonly T[] | undefined,
  keyOf: (t: T) => string | number | undefined,
  ctx: z.RefinementCtx,
  path: (i: number) => PropertyKey[],
  what: string,
): void {
  if (!items) return;
  const seen = new Set<string | number>();
  items.forEach((item, i) => {
    const k = keyOf(item);
    if (k === undefined) return;
    if (seen.has(k)) ctx.addIssue({ code: 'custom', message: `Duplicate value: ${what} "${k}" appears more than once`, path: path(i) });
    seen.add(k);
  });
}

/** Deeply readonly view of a parsed value, for the resource types. */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
