/**
 * Flag parsers and the log line shared by the commands. Light on purpose:
 * `trellis proxy` imports it, and a sidecar must not load the compiler or
 * the control plane to parse its flags.
 */
import { parseDuration } from '../api/duration.js';
import { CliError } from './cli-error.js';

/** A port flag: 0–65535. */
export function portArg(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n > 65535) throw new CliError(`${flag} must be a port number 0-65535 (0 picks a free port), not "${v}"`, 2);
    return n;
  };
}

/** A whole-number flag within [min, max]. */
export function countArg(flag: string, min = 1, max = 1000) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new CliError(`${flag} must be a whole number ${min}-${max}, not "${v}"`, 2);
    return n;
  };
}

/** A duration flag, Istio style (`10s`, `500ms`, `1m`). */
export function durationArg(flag: string) {
  return (v: string): number => {
    const ms = parseDuration(v);
    if (ms === undefined) throw new CliError(`${flag} must be a duration like 10s, 500ms or 1m, not "${v}"`, 2);
    return ms;
  };
}

/** Writes one line per event with a timestamp. */
export function logLine(prefix: string, text: string): void {
  process.stdout.write(`${new Date().toISOString()} ${prefix} ${text}\n`);
}
