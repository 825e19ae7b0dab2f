/**
 * IP addresses and CIDR blocks for authorization (`ipBlocks`,
 * `remoteIpBlocks`, `source.ip`, `destination.ip`), parsed once per snapshot
 * into bit prefixes. IPv4 and IPv6; an IPv4-mapped IPv6 address
 * (`::ffff:10.0.0.1`, as a dual-stack socket reports an IPv4 peer) is
 * compared as the IPv4 address it carries, so a block cannot be dodged by the
 * address's spelling. No regular expressions, no `node:net`.
 */

/** An address as 16 bytes; IPv4 in the IPv4-mapped form. */
type Bytes = Uint8Array;

/** A test of an address (a string as a socket reports it); false for a missing or malformed one. */
export type IpTest = (ip: string | undefined) => boolean;

function parseV4(s: string, out: Bytes, at: number): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (p.length === 0 || p.length > 3 || (p.length > 1 && p[0] === '0')) return false;
    let n = 0;
    for (let j = 0; j < p.length; j++) {
      const c = p.charCodeAt(j) - 0x30;
      if (c < 0 || c > 9) return false;
      n = n * 10 + c;
    }
    if (n > 255) return false;
    out[at + i] = n;
  }
  return true;
}

function hexGroup(g: string): number {
  if (g.length === 0 || g.length > 4) return -1;
  let n = 0;
  for (let i = 0; i < g.length; i++) {
    const c = g.charCodeAt(i);
    const v = c >= 0x30 && c <= 0x39 ? c - 0x30 : (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66 ? (c | 0x20) - 0x57 : -1;
    if (v < 0) return -1;
    n = (n << 4) | v;
  }
  return n;
}

/** The 16 bytes of an IPv4 or IPv6 address (a zone `%eth0` is ignored), or undefined. */
export function parseIp(text: string): Bytes | undefined {
  const out = new Uint8Array(16);
  const pct = text.indexOf('%');
  const s = pct >= 0 ? text.slice(0, pct) : text;
  if (!s.includes(':')) {
    out[10] = 0xff; out[11] = 0xff;
    return parseV4(s, out, 12) ? out : undefined;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const words: number[] = [];
  const push = (list: string[], last: boolean): boolean => {
    for (let i = 0; i < list.length; i++) {
      const g = list[i]!;
      if (last && i === list.length - 1 && g.includes('.')) {
        const v4 = new Uint8Array(16);
        if (!parseV4(g, v4, 12)) return false;
        words.push((v4[12]! << 8) | v4[13]!, (v4[14]! << 8) | v4[15]!);
        continue;
      }
      const n = hexGroup(g);
      if (n < 0) return false;
      words.push(n);
    }
    return true;
  };
  if (!push(head, halves.length === 1)) return undefined;
  const headLen = words.length;
  if (!push(tail, true)) return undefined;
  const tailLen = words.length - headLen;
  if (halves.length === 1 ? words.length !== 8 : words.length > 7) return undefined;
  for (let i = 0; i < headLen; i++) { out[2 * i] = words[i]! >> 8; out[2 * i + 1] = words[i]! & 0xff; }
  for (let i = 0; i < tailLen; i++) {
    const w = words[headLen + i]!;
    const at = 16 - 2 * (tailLen - i);
    out[at] = w >> 8; out[at + 1] = w & 0xff;
  }
  return out;
}

interface Block { readonly bytes: Bytes; readonly bits: number }

/** A block from `10.0.0.0/8`, `2001:db8::/32` or a single address; undefined when malformed. */
export function parseBlock(text: string): Block | undefined {
  const slash = text.indexOf('/');
  const bytes = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!bytes) return undefined;
  const v4 = !text.includes(':');
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b) || Number(b) > max) return undefined;
    bits = Number(b);
  }
  return { bytes, bits: v4 ? bits + 96 : bits };
}

function inBlock(ip: Bytes, b: Block): boolean {
  const full = b.bits >> 3;
  for (let i = 0; i < full; i++) if (ip[i] !== b.bytes[i]) return false;
  const rest = b.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip[full]! & mask) === (b.bytes[full]! & mask);
}

/** A test that an address is in any of the blocks; blocks that do not parse match nothing. */
export function compileIpBlocks(blocks: readonly string[]): IpTest {
  const parsed = blocks.map(parseBlock).filter((b): b is Block => b !== undefined);
  return (ip) => {
    if (ip === undefined || ip === '') return false;
    const bytes = parseIp(ip);
    if (!bytes) return false;
    for (const b of parsed) if (inBlock(bytes, b)) return true;
    return false;
  };
}
