/**
 * String matchers from snapshot data, built once per snapshot. Regexes are
 * RE2 (linear time, no backtracking) and anchored to the whole string, as in
 * Istio and Envoy.
 */
import { RE2JS } from 're2js';
import type { StringMatcher } from '../protocol/snapshot.js';

export type StringTest = (value: string) => boolean;

export function compileStringMatcher(m: StringMatcher): StringTest {
  const { value } = m;
  switch (m.kind) {
    case 'exact':
      if (m.ignoreCase) { const v = value.toLowerCase(); return (s) => s.length === v.length && s.toLowerCase() === v; }
      return (s) => s === value;
    case 'prefix':
      if (m.ignoreCase) { const v = value.toLowerCase(); return (s) => s.length >= v.length && s.slice(0, v.length).toLowerCase() === v; }
      return (s) => s.startsWith(value);
    case 'regex': {
      const re = RE2JS.compile(value, m.ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
      return (s) => re.matches(s);
    }
  }
}
