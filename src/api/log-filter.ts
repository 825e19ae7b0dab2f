/**
 * Telemetry `accessLogging[].filter.expression`: the part of CEL (Google's
 * Common Expression Language) that Istio's access log filters use, such as
 * `response.code >= 400 || request.url_path.startsWith('/api')`.
 *
 * This module only reads the text into a tree (`FilterExpr`), which the
 * snapshot carries as plain data; src/telemetry/log-filter.ts turns the tree
 * into a predicate over request records. Precedence follows CEL, loosest
 * first: `||`, `&&`, the relations (`== != < <= > >= in`), unary `!` and `-`,
 * then member access, method calls and indexing.
 *
 * What is left out of CEL: macros and global functions (`size()`, `has()`),
 * maps, arithmetic, the ternary operator, raw and triple-quoted strings, hex
 * literals. Regular expressions (`matches`) use JavaScript's syntax.
 */

export type FilterExpr =
  | { readonly kind: 'literal'; readonly value: string | number | boolean | null }
  | { readonly kind: 'attr'; readonly name: string }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'not'; readonly arg: FilterExpr }
  | { readonly kind: 'and' | 'or'; readonly left: FilterExpr; readonly right: FilterExpr }
  | { readonly kind: 'cmp'; readonly op: '==' | '!=' | '<' | '<=' | '>' | '>='; readonly left: FilterExpr; readonly right: FilterExpr }
  | { readonly kind: 'call'; readonly fn: 'startsWith' | 'endsWith' | 'contains' | 'matches'; readonly target: FilterExpr; readonly arg: FilterExpr }
  | { readonly kind: 'in'; readonly left: FilterExpr; readonly list: readonly FilterExpr[] };

/** The attributes an expression may read (Istio's names for Envoy's attributes). */
export const FILTER_ATTRIBUTES: readonly string[] = [
  'response.code', 'response.code_details', 'response.flags', 'response.grpc_status', 'response.size', 'response.total_size',
  'request.method', 'request.path', 'request.url_path', 'request.host', 'request.scheme', 'request.protocol', 'request.id',
  'request.size', 'request.total_size', 'request.useragent', 'request.referer',
  'connection.mtls', 'source.principal', 'destination.principal', 'upstream.address',
  'xds.cluster_name', 'xds.route_name', 'xds.node',
];

/** Attributes that are really request headers: the proxy must copy those into the record too. */
const HEADER_ATTRIBUTES: Readonly<Record<string, string>> = { 'request.useragent': 'user-agent', 'request.referer': 'referer' };

const MAX_LENGTH = 4096;
const MAX_DEPTH = 64;
const KNOWN = new Set(FILTER_ATTRIBUTES);
const METHODS = ['startsWith', 'endsWith', 'contains', 'matches'] as const;
type Method = (typeof METHODS)[number];
const isMethod = (s: string): s is Method => (METHODS as readonly string[]).includes(s);
const RELATIONS = ['==', '!=', '<', '<=', '>', '>='] as const;
type Relation = (typeof RELATIONS)[number];
const isRelation = (s: string): s is Relation => (RELATIONS as readonly string[]).includes(s);

export function parseLogFilter(text: string): { readonly expr: FilterExpr } | { readonly error: string } {
  if (text.length > MAX_LENGTH) return { error: `the expression is ${text.length} characters long; the limit is ${MAX_LENGTH}` };
  if (text.trim() === '') return { error: 'the expression is empty' };
  try {
    const p = new Parser(tokenize(text));
    const expr = p.or();
    const rest = p.peek();
    if (rest.kind !== 'end') p.unexpected(rest);
    return { expr };
  } catch (e) {
    if (e instanceof FilterSyntaxError) return { error: e.message };
    throw e;
  }
}

/** Request header names the expression reads (lower case, sorted, each once), for the proxy to copy into records. */
export function filterHeaders(e: FilterExpr): string[] {
  const found = new Set<string>();
  const walk = (x: FilterExpr): void => {
    switch (x.kind) {
      case 'literal': return;
      case 'attr': { const h = HEADER_ATTRIBUTES[x.name]; if (h) found.add(h); return; }
      case 'header': found.add(x.name); return;
      case 'not': walk(x.arg); return;
      case 'and': case 'or': case 'cmp': walk(x.left); walk(x.right); return;
      case 'call': walk(x.target); walk(x.arg); return;
      case 'in': walk(x.left); x.list.forEach(walk); return;
    }
  };
  walk(e);
  return [...found].sort();
}

class FilterSyntaxError extends Error {}
const fail = (message: string): never => { throw new FilterSyntaxError(message); };

// ---------------------------------------------------------------------------
// Tokens

interface Token {
  readonly kind: 'num' | 'str' | 'id' | 'op' | 'bad' | 'end';
  /** The source text (for `bad`, the error message). */
  readonly text: string;
  /** 1-based character position. */
  readonly pos: number;
  /** num: its value; str: its decoded text. */
  readonly num?: number;
  readonly str?: string;
  /** num: written with CEL's `u` suffix. */
  readonly unsigned?: boolean;
}

const OPERATORS = ['||', '&&', '==', '!=', '<=', '>=', '<', '>', '!', '-', '.', ',', '(', ')', '[', ']'];
const HINTS: Readonly<Record<string, string>> = { '=': '==', '&': '&&', '|': '||' };
const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t', r: '\r' };
const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const isIdStart = (c: string | undefined) => c !== undefined && /[A-Za-z_]/.test(c);
const isIdPart = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_]/.test(c);

/**
 * The whole text as tokens, ending with an `end` token. A lexical mistake
 * becomes a `bad` token in its place rather than an immediate error, so that
 * a grammar mistake earlier in the text is the one reported.
 */
function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const bad = (message: string) => { out.push({ kind: 'bad', text: message, pos: i + 1 }); };
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) { i++; continue; }
    const start = i;
    if (isDigit(c)) {
      while (isDigit(text[i])) i++;
      let integer = true;
      if (text[i] === '.' && isDigit(text[i + 1])) { integer = false; i++; while (isDigit(text[i])) i++; }
      if ((text[i] === 'e' || text[i] === 'E') && (isDigit(text[i + 1]) || (/[+-]/.test(text[i + 1] ?? '') && isDigit(text[i + 2])))) {
        integer = false;
        i += 2;
        while (isDigit(text[i])) i++;
      }
      const digits = text.slice(start, i);
      const unsigned = integer && (text[i] === 'u' || text[i] === 'U');
      if (unsigned) i++;
      // `0x1F`, `400ms`, `1.5u`, `1.2.3`: not numbers CEL or Trellis reads.
      if (isIdPart(text[i]) || (text[i] === '.' && isDigit(text[i + 1]))) {
        i = start;
        bad(`malformed number "${/^[\w.]+/.exec(text.slice(start))![0]}" at character ${start + 1}`);
        break;
      }
      const num = Number(digits);
      if (integer && !Number.isSafeInteger(num)) { i = start; bad(`the integer ${digits} at character ${start + 1} is too large`); break; }
      out.push({ kind: 'num', text: text.slice(start, i), pos: start + 1, num, unsigned });
      continue;
    }
    if (isIdStart(c)) {
      while (isIdPart(text[i])) i++;
      out.push({ kind: 'id', text: text.slice(start, i), pos: start + 1 });
      continue;
    }
    if (c === "'" || c === '"') {
      let value = '';
      let closed = false;
      i++;
      while (i < text.length && text[i] !== '\n') {
        const ch = text[i]!;
        if (ch === c) { closed = true; i++; break; }
        if (ch === '\\') {
          const esc = ESCAPES[text[i + 1] ?? ''];
          if (esc === undefined) break;
          value += esc;
          i += 2;
          continue;
        }
        value += ch;
        i++;
      }
      if (!closed) {
        if (text[i] === '\\') bad(`unknown escape "\\${text[i + 1] ?? ''}" at character ${i + 1} (known: \\\\ \\' \\" \\n \\t \\r)`);
        else { i = start; bad(`the string starting at character ${start + 1} is not closed`); }
        break;
      }
      out.push({ kind: 'str', text: text.slice(start, i), pos: start + 1, str: value });
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op) { out.push({ kind: 'op', text: op, pos: start + 1 }); i += op.length; continue; }
    const hint = HINTS[c];
    bad(`unexpected "${c}" at character ${start + 1}${hint ? ` (did you mean "${hint}"?)` : ''}`);
    break;
  }
  out.push({ kind: 'end', text: '', pos: text.length + 1 });
  return out;
}

/** A token as an error message names it. */
function describe(t: Token): string {
  const text = t.text.length > 24 ? `${t.text.slice(0, 20)}…` : t.text;
  if (t.kind === 'str') return `string ${text}`;
  if (t.kind === 'num') return `number ${text}`;
  return `"${text}"`;
}

// ---------------------------------------------------------------------------
// Grammar: one method per precedence level, loosest first.

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly tokens: readonly Token[]) {}

  peek(ahead = 0): Token {
    const t = this.tokens[Math.min(this.i + ahead, this.tokens.length - 1)]!;
    if (t.kind === 'bad') fail(t.text);
    return t;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'end') this.i++;
    return t;
  }

  private isOp(text: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.kind === 'op' && t.text === text;
  }

  unexpected(t: Token): never {
    if (t.kind === 'end') {
      const last = this.tokens[this.tokens.length - 2]!;
      return fail(`the expression ends after ${describe(last)} at character ${last.pos}`);
    }
    return fail(`unexpected ${describe(t)} at character ${t.pos}`);
  }

  /** Counts one level of nesting (parentheses, brackets, arguments, `!`), refusing past the limit. */
  private enter(t: Token): void {
    if (++this.depth > MAX_DEPTH) fail(`the expression nests deeper than ${MAX_DEPTH} levels at character ${t.pos}`);
  }

  private close(closer: ')' | ']', opener: Token): void {
    if (this.isOp(closer)) { this.next(); return; }
    const t = this.peek();
    if (t.kind === 'end') fail(`the "${opener.text}" at character ${opener.pos} is not closed`);
    fail(`expected "${closer}" to close the "${opener.text}" at character ${opener.pos}, found ${describe(t)} at character ${t.pos}`);
  }

  or(): FilterExpr {
    let left = this.and();
    while (this.isOp('||')) { this.next(); left = { kind: 'or', left, right: this.and() }; }
    return left;
  }

  private and(): FilterExpr {
    let left = this.relation();
    while (this.isOp('&&')) { this.next(); left = { kind: 'and', left, right: this.relation() }; }
    return left;
  }

  /** Relations chain to the left, as in CEL: `a == b == c` is `(a == b) == c`. */
  private relation(): FilterExpr {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.kind === 'op' && isRelation(t.text)) {
        this.next();
        left = { kind: 'cmp', op: t.text, left, right: this.unary() };
      } else if (t.kind === 'id' && t.text === 'in') {
        this.next();
        const open = this.peek();
        if (!this.isOp('[')) {
          fail(`"in" takes a list: [a, b]; ${open.kind === 'end' ? 'the expression ends' : `found ${describe(open)}`} at character ${open.pos}`);
        }
        left = { kind: 'in', left, list: this.list() };
      } else {
        return left;
      }
    }
  }

  private list(): FilterExpr[] {
    const open = this.next();
    this.enter(open);
    const items: FilterExpr[] = [];
    while (!this.isOp(']')) {
      items.push(this.or());
      if (this.isOp(',')) { this.next(); continue; } // a trailing comma is allowed, as in CEL
      if (this.isOp(']')) break;
      const t = this.peek();
      if (t.kind === 'end') fail(`the "[" at character ${open.pos} is not closed`);
      fail(`expected "," or "]" in the list at character ${open.pos}, found ${describe(t)} at character ${t.pos}`);
    }
    this.next();
    this.depth--;
    return items;
  }

  private unary(): FilterExpr {
    const t = this.peek();
    if (this.isOp('!')) {
      this.next();
      this.enter(t);
      const arg = this.unary();
      this.depth--;
      return { kind: 'not', arg };
    }
    if (this.isOp('-')) {
      this.next();
      const n = this.peek();
      if (n.kind === 'end') this.unexpected(n);
      if (n.kind !== 'num') fail(`"-" at character ${t.pos} applies only to a number literal`);
      if (n.unsigned) fail(`the unsigned integer ${n.text} at character ${n.pos} cannot be negative`);
      this.next();
      return { kind: 'literal', value: -n.num! };
    }
    return this.member();
  }

  /** A primary, then any method calls on it. */
  private member(): FilterExpr {
    let e = this.primary();
    for (;;) {
      if (this.isOp('.')) {
        this.next();
        const name = this.next();
        if (name.kind !== 'id') this.unexpected(name);
        if (!this.isOp('(')) fail(`".${name.text}" at character ${name.pos} can only be a method call: ${METHODS.join(', ')}`);
        e = this.call(e, name);
      } else if (this.isOp('[')) {
        fail(`only request.headers can be indexed, as in request.headers['x-name'] ("[" at character ${this.peek().pos})`);
      } else {
        return e;
      }
    }
  }

  private call(target: FilterExpr, name: Token): FilterExpr {
    const fn = name.text;
    if (!isMethod(fn)) return fail(`unknown method "${fn}" at character ${name.pos} (known: ${METHODS.join(', ')})`);
    const open = this.next();
    this.enter(open);
    const argToken = this.peek();
    if (this.isOp(')')) fail(`${fn}() at character ${name.pos} takes one argument`);
    const arg = this.or();
    if (this.isOp(',')) fail(`${fn}() at character ${name.pos} takes one argument; found "," at character ${this.peek().pos}`);
    this.close(')', open);
    this.depth--;
    if (fn === 'matches') {
      // Checked now so that a bad pattern is a configuration error, not a filter that never matches.
      if (arg.kind !== 'literal' || typeof arg.value !== 'string') fail(`matches() at character ${name.pos} takes its pattern as a string literal`);
      const pattern = (arg as { value: string }).value;
      try {
        new RegExp(pattern);
      } catch (e) {
        fail(`the pattern ${JSON.stringify(pattern)} of matches() at character ${argToken.pos} is not a valid regular expression (${(e as Error).message})`);
      }
    }
    return { kind: 'call', fn, target, arg };
  }

  private primary(): FilterExpr {
    const t = this.next();
    switch (t.kind) {
      case 'num': return { kind: 'literal', value: t.num! };
      case 'str': return { kind: 'literal', value: t.str! };
      case 'id': return this.identifier(t);
      case 'op':
        if (t.text === '(') {
          this.enter(t);
          const e = this.or();
          this.close(')', t);
          this.depth--;
          return e;
        }
        if (t.text === '[') fail(`a list may only follow "in", as in x in [a, b] ("[" at character ${t.pos})`);
        return this.unexpected(t);
      default: return this.unexpected(t);
    }
  }

  /** A keyword literal, or an attribute path (`response.code`, `request.headers['x']`). */
  private identifier(first: Token): FilterExpr {
    switch (first.text) {
      case 'true': return { kind: 'literal', value: true };
      case 'false': return { kind: 'literal', value: false };
      case 'null': return { kind: 'literal', value: null };
      case 'in': return this.unexpected(first);
    }
    if (this.isOp('(')) fail(`unknown function "${first.text}" at character ${first.pos}: methods are called on a value, as in request.path.startsWith('/api')`);
    // Gather `.name` segments; a segment followed by "(" is a method call, which member() handles.
    const names = [first.text];
    while (this.isOp('.') && this.peek(1).kind === 'id' && !this.isOp('(', 2)) {
      this.next();
      names.push(this.next().text);
    }
    // A misspelt method reads better as that than as an unknown attribute.
    if (this.isOp('.') && this.peek(1).kind === 'id' && !isMethod(this.peek(1).text)) {
      const m = this.peek(1);
      fail(`unknown method "${m.text}" at character ${m.pos} (known: ${METHODS.join(', ')})`);
    }
    const name = names.join('.');
    if (names[0] === 'request' && names[1] === 'headers') return this.header(first, names);
    if (!KNOWN.has(name)) fail(`unknown attribute "${name}" at character ${first.pos} (known: ${FILTER_ATTRIBUTES.join(', ')}, request.headers['name'])`);
    return { kind: 'attr', name };
  }

  private header(first: Token, names: readonly string[]): FilterExpr {
    const usage = `request.headers at character ${first.pos} takes the header name as an index, as in request.headers['x-name']`;
    const open = this.peek();
    if (names.length > 2 || !this.isOp('[')) fail(usage);
    this.next();
    const s = this.next();
    if (s.kind !== 'str') fail(`${usage}; found ${s.kind === 'end' ? 'the end' : describe(s)} at character ${s.pos}`);
    if (s.str === '') fail(`the header name at character ${s.pos} is empty`);
    this.close(']', open);
    return { kind: 'header', name: s.str!.toLowerCase() };
  }
}
