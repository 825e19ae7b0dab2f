/**
 * Building blocks for the kinds' schemas (zod). Every object is strict: an
 * unknown key is an error (TRL1002), never dropped. Rules shared by many kinds
 * live here once: durations, RE2 regexes, ports, label maps, string
 * matches, "one of" and "no repeats" checks. Name rules live in kinds/names.ts.
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

/** Whether `n` is in the range of port numbers, 1–65535. */
export function inPortRange(n: number): boolean {
  return n >= 1 && n <= 65535;
}

/** Whether `s` writes a port number in decimal digits (`"8080"`), as AuthorizationPolicy ports and PeerAuthentication port keys do. */
export function isPortText(s: string): boolean {
  return /^\d+$/.test(s) && inPortRange(Number(s));
}

/** A TCP/UDP port number, 1–65535. */
export function port() {
  return z.number().int({ message: 'port must be a whole number' }).refine(inPortRange, {
    message: 'port must be between 1 and 65535',
  });
}

/** A percentage 0–100 (Istio's `Percent`, or a plain double). */
export function percentage() {
  return z.number().refine((n) => n >= 0 && n <= 100, { message: 'percentage must be between 0 and 100' });
}

/** A map of label keys to values. */
export const labels = z.record(z.string(), z.string());

/** The fields of Istio's `StringMatch`. */
const stringMatchFields = { exact: z.string().optional(), prefix: z.string().optional(), regex: re2().optional() };
const STRING_MATCH_KINDS = ['exact', 'prefix', 'regex'] as const;

/** Istio's `StringMatch`: exactly one of exact, prefix, regex. */
export const stringMatch = z
  .strictObject(stringMatchFields)
  .superRefine((m, ctx) => exactlyOne(m, STRING_MATCH_KINDS, ctx, 'a string match'));

/**
 * A header or query parameter match: a `StringMatch`, or `{}` alone, which
 * (as in Istio) only asks that the header or parameter be present.
 */
export const presenceOrStringMatch = z
  .strictObject(stringMatchFields)
  .superRefine((m, ctx) => atMostOne(m, STRING_MATCH_KINDS, ctx, 'a string match'));

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
  if (keys.every((k) => obj[k] === undefined)) ctx.addIssue({ code: 'custom', message: `${what} needs one of ${keys.join(', ')}`, path: [] });
  else atMostOne(obj, keys, ctx, what);
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

/**
 * Reports a key that a list holds twice, at each later occurrence (items
 * whose key is undefined are passed over). `what` names the value for the
 * message `Duplicate value: <what> "<key>" appears more than once`, or words
 * the whole message from the key and the index of its first occurrence.
 */
export function noDuplicates<T, K extends string | number>(
  items: readonly T[] | undefined,
  keyOf: (t: T) => K | undefined,
  ctx: z.RefinementCtx,
  path: (i: number) => PropertyKey[],
  what: string | ((key: K, first: number) => string),
): void {
  if (!items) return;
  const firstAt = new Map<K, number>();
  items.forEach((item, i) => {
    const k = keyOf(item);
    if (k === undefined) return;
    const first = firstAt.get(k);
    if (first === undefined) { firstAt.set(k, i); return; }
    const message = typeof what === 'string' ? `Duplicate value: ${what} "${k}" appears more than once` : what(k, first);
    ctx.addIssue({ code: 'custom', message, path: path(i) });
  });
}

/** Deeply readonly view of a parsed value, for the resource types. */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;
