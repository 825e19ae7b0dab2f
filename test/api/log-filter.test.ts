/**
 * Telemetry access log filter expressions (the CEL subset Istio uses):
 * the trees they parse to (CEL precedence, literals, attributes, headers,
 * methods, `in` lists), the request headers a tree reads, and the errors,
 * each with its character position.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FILTER_ATTRIBUTES, filterHeaders, parseLogFilter, type FilterExpr } from '../../src/api/log-filter.js';

const parse = (text: string): FilterExpr => {
  const r = parseLogFilter(text);
  if ('error' in r) throw new Error(`${text}: ${r.error}`);
  return r.expr;
};
const error = (text: string): string => {
  const r = parseLogFilter(text);
  if ('expr' in r) throw new Error(`${text} parsed: ${JSON.stringify(r.expr)}`);
  return r.error;
};

const attr = (name: string): FilterExpr => ({ kind: 'attr', name });
const lit = (value: string | number | boolean | null): FilterExpr => ({ kind: 'literal', value });
const code = attr('response.code');
const path = attr('request.url_path');

test('the examples from Istio parse to the trees they mean', () => {
  assert.deepEqual(parse('response.code >= 400'), { kind: 'cmp', op: '>=', left: code, right: lit(400) });
  assert.deepEqual(parse("response.code >= 500 || request.url_path.startsWith('/api')"), {
    kind: 'or',
    left: { kind: 'cmp', op: '>=', left: code, right: lit(500) },
    right: { kind: 'call', fn: 'startsWith', target: path, arg: lit('/api') },
  });
  assert.deepEqual(parse("!(request.url_path == '/healthz') && connection.mtls"), {
    kind: 'and',
    left: { kind: 'not', arg: { kind: 'cmp', op: '==', left: path, right: lit('/healthz') } },
    right: attr('connection.mtls'),
  });
});

test('precedence: || is looser than &&, which is looser than the relations; ! binds tighter; chains go left', () => {
  const a = { kind: 'cmp', op: '==', left: code, right: lit(1) } as const;
  const b = { kind: 'cmp', op: '==', left: code, right: lit(2) } as const;
  const c = { kind: 'cmp', op: '==', left: code, right: lit(3) } as const;
  assert.deepEqual(parse('response.code == 1 || response.code == 2 && response.code == 3'), { kind: 'or', left: a, right: { kind: 'and', left: b, right: c } });
  assert.deepEqual(parse('response.code == 1 && response.code == 2 || response.code == 3'), { kind: 'or', left: { kind: 'and', left: a, right: b }, right: c });
  assert.deepEqual(parse('(response.code == 1 || response.code == 2) && response.code == 3'), { kind: 'and', left: { kind: 'or', left: a, right: b }, right: c });
  assert.deepEqual(parse('response.code == 1 || response.code == 2 || response.code == 3'), { kind: 'or', left: { kind: 'or', left: a, right: b }, right: c });
  assert.deepEqual(parse('!connection.mtls == false'), { kind: 'cmp', op: '==', left: { kind: 'not', arg: attr('connection.mtls') }, right: lit(false) });
  assert.deepEqual(parse('!!connection.mtls'), { kind: 'not', arg: { kind: 'not', arg: attr('connection.mtls') } });
  assert.deepEqual(parse('((response.code)) < 5'), { kind: 'cmp', op: '<', left: code, right: lit(5) });
  for (const op of ['==', '!=', '<', '<=', '>', '>='] as const) {
    assert.deepEqual(parse(`response.size ${op} 10`), { kind: 'cmp', op, left: attr('response.size'), right: lit(10) });
  }
});

test('literals: integers (with or without u), doubles, negative numbers, strings in either quote with escapes, true, false, null', () => {
  const right = (text: string) => { const e = parse(`response.code == ${text}`); assert.equal(e.kind, 'cmp'); return (e as { right: FilterExpr }).right; };
  assert.deepEqual(right('404'), lit(404));
  assert.deepEqual(right('404u'), lit(404));
  assert.deepEqual(right('404U'), lit(404));
  assert.deepEqual(right('1.5'), lit(1.5));
  assert.deepEqual(right('2e3'), lit(2000));
  assert.deepEqual(right('-7'), lit(-7));
  assert.deepEqual(right('- 2.5'), lit(-2.5));
  assert.deepEqual(right("'it\\'s'"), lit("it's"));
  assert.deepEqual(right('"say \\"hi\\""'), lit('say "hi"'));
  assert.deepEqual(right("'a\\\\b\\n\\t\\r'"), lit('a\\b\n\t\r'));
  assert.deepEqual(right(`"it's"`), lit("it's"));
  assert.deepEqual(right("''"), lit(''));
  assert.deepEqual(right('true'), lit(true));
  assert.deepEqual(right('false'), lit(false));
  assert.deepEqual(right('null'), lit(null));
});

test('request headers by index, with the name lower-cased; header-backed attributes', () => {
  assert.deepEqual(parse("request.headers['X-Canary'] == 'yes'"), { kind: 'cmp', op: '==', left: { kind: 'header', name: 'x-canary' }, right: lit('yes') });
  assert.deepEqual(parse('request.headers["User-Agent"].contains("curl")'), {
    kind: 'call', fn: 'contains', target: { kind: 'header', name: 'user-agent' }, arg: lit('curl'),
  });
  assert.deepEqual(parse("request.useragent.startsWith('kube-probe')"), { kind: 'call', fn: 'startsWith', target: attr('request.useragent'), arg: lit('kube-probe') });
});

test('the four methods, on attributes, headers and parenthesized targets, with any expression as argument', () => {
  for (const fn of ['startsWith', 'endsWith', 'contains', 'matches'] as const) {
    assert.deepEqual(parse(`request.path.${fn}('x')`), { kind: 'call', fn, target: attr('request.path'), arg: lit('x') });
  }
  assert.deepEqual(parse("(request.host).endsWith('.internal')"), { kind: 'call', fn: 'endsWith', target: attr('request.host'), arg: lit('.internal') });
  assert.deepEqual(parse('request.path.startsWith(request.host)'), { kind: 'call', fn: 'startsWith', target: attr('request.path'), arg: attr('request.host') });
  assert.deepEqual(parse("request.path.matches('^/v[0-9]+/')"), { kind: 'call', fn: 'matches', target: attr('request.path'), arg: lit('^/v[0-9]+/') });
  assert.deepEqual(parse("!request.path.startsWith('/a')"), { kind: 'not', arg: { kind: 'call', fn: 'startsWith', target: attr('request.path'), arg: lit('/a') } });
});

test('"in" takes a list literal of any elements; an empty list and a trailing comma are allowed', () => {
  assert.deepEqual(parse('response.code in [500, 503u]'), { kind: 'in', left: code, list: [lit(500), lit(503)] });
  assert.deepEqual(parse("request.method in ['GET', 'HEAD',]"), { kind: 'in', left: attr('request.method'), list: [lit('GET'), lit('HEAD')] });
  assert.deepEqual(parse('response.code in []'), { kind: 'in', left: code, list: [] });
  assert.deepEqual(parse('request.host in [request.referer, "a"]'), { kind: 'in', left: attr('request.host'), list: [attr('request.referer'), lit('a')] });
  assert.deepEqual(parse('response.code in [1] && connection.mtls'), { kind: 'and', left: { kind: 'in', left: code, list: [lit(1)] }, right: attr('connection.mtls') });
});

test('every attribute Trellis knows parses, and request.duration is not one of them', () => {
  for (const name of FILTER_ATTRIBUTES) assert.deepEqual(parse(`${name} == 1`), { kind: 'cmp', op: '==', left: attr(name), right: lit(1) });
  assert.equal(FILTER_ATTRIBUTES.length, 24);
  assert.ok(!FILTER_ATTRIBUTES.includes('request.duration'));
  assert.match(error('request.duration > 1'), /^unknown attribute "request.duration" at character 1/);
});

test('filterHeaders: the request headers a tree reads, lower case, sorted, once each', () => {
  assert.deepEqual(filterHeaders(parse('response.code >= 400')), []);
  assert.deepEqual(filterHeaders(parse(
    "request.headers['X-B'] == 'a' || !(request.useragent.contains('curl')) && request.host in [request.headers['x-a'], request.referer] || request.headers['x-b'].matches('.')",
  )), ['referer', 'user-agent', 'x-a', 'x-b']);
});

test('grammar errors name what is wrong and the character where it is', () => {
  assert.equal(error('response.code >= 400)'), 'unexpected ")" at character 21');
  assert.equal(error('response.code 400'), 'unexpected number 400 at character 15');
  assert.equal(error("response.code == 1 'x'"), "unexpected string 'x' at character 20");
  assert.equal(error('response.code >= 400 &&'), 'the expression ends after "&&" at character 22');
  assert.equal(error('!'), 'the expression ends after "!" at character 1');
  assert.equal(error('response.code in [1,'), 'the expression ends after "," at character 20');
  assert.equal(error('(response.code == 1'), 'the "(" at character 1 is not closed');
  assert.equal(error('(response.code == 1]'), 'expected ")" to close the "(" at character 1, found "]" at character 20');
  assert.equal(error('response.code == 1 || && connection.mtls'), 'unexpected "&&" at character 23');
  assert.equal(error('response.code = 400'), 'unexpected "=" at character 15 (did you mean "=="?)');
  assert.equal(error('connection.mtls & true'), 'unexpected "&" at character 17 (did you mean "&&"?)');
  assert.equal(error('response.code # 1'), 'unexpected "#" at character 15');
  assert.equal(error('in'), 'unexpected "in" at character 1');
});

test('"in" errors: the right side must be a list, and a list may stand nowhere else', () => {
  assert.equal(error('response.code in 500'), '"in" takes a list: [a, b]; found number 500 at character 18');
  assert.equal(error('response.code in (500)'), '"in" takes a list: [a, b]; found "(" at character 18');
  assert.equal(error('response.code in'), '"in" takes a list: [a, b]; the expression ends at character 17');
  assert.equal(error('response.code in [1 2]'), 'expected "," or "]" in the list at character 18, found number 2 at character 21');
  assert.equal(error('response.code in [1, 2'), 'the "[" at character 18 is not closed');
  assert.equal(error('[1, 2] == response.code'), 'a list may only follow "in", as in x in [a, b] ("[" at character 1)');
});

test('attribute errors: unknown names listed with the known ones; request.headers only by index', () => {
  const unknown = error('response.code == 1 || response.cod == 500');
  assert.match(unknown, /^unknown attribute "response.cod" at character 23 \(known: response.code, response.code_details, .*xds.node, request.headers\['name'\]\)$/);
  for (const name of FILTER_ATTRIBUTES) assert.ok(unknown.includes(name), name);
  assert.match(error('foo'), /^unknown attribute "foo" at character 1 \(known: /);
  assert.match(error('request == 1'), /^unknown attribute "request" at character 1/);
  const usage = "request.headers at character 1 takes the header name as an index, as in request.headers['x-name']";
  assert.equal(error('request.headers.foo == "a"'), usage);
  assert.equal(error('request.headers == "a"'), usage);
  assert.equal(error('request.headers[1]'), `${usage}; found number 1 at character 17`);
  assert.equal(error('request.headers['), `${usage}; found the end at character 17`);
  assert.equal(error("request.headers['']"), 'the header name at character 17 is empty');
  assert.equal(error("request.headers['a'"), 'the "[" at character 16 is not closed');
  assert.equal(error("request.headers['a']['b']"), `only request.headers can be indexed, as in request.headers['x-name'] ("[" at character 21)`);
  assert.equal(error('response.code[0]'), `only request.headers can be indexed, as in request.headers['x-name'] ("[" at character 14)`);
});

test('method errors: unknown methods and functions, argument counts, field access on a value, regular expressions', () => {
  assert.equal(error("request.path.startswith('/')"), 'unknown method "startswith" at character 14 (known: startsWith, endsWith, contains, matches)');
  assert.equal(error("'a'.size()"), 'unknown method "size" at character 5 (known: startsWith, endsWith, contains, matches)');
  assert.equal(error('size(request.path) > 1'), "unknown function \"size\" at character 1: methods are called on a value, as in request.path.startsWith('/api')");
  assert.equal(error('request.path.contains()'), 'contains() at character 14 takes one argument');
  assert.equal(error("request.path.contains('a', 'b')"), 'contains() at character 14 takes one argument; found "," at character 26');
  assert.equal(error("request.path.contains('a'"), 'the "(" at character 22 is not closed');
  assert.equal(error("'abc'.length == 3"), '".length" at character 7 can only be a method call: startsWith, endsWith, contains, matches');
  assert.equal(error('request.path.matches(request.host)'), 'matches() at character 14 takes its pattern as a string literal');
  assert.match(error("request.path.matches('(unclosed')"), /^the pattern "\(unclosed" of matches\(\) at character 22 is not a valid regular expression \(Invalid regular expression: .*\)$/);
  assert.match(error("request.path.matches('[z-a]')"), /^the pattern "\[z-a\]" of matches\(\) at character 22 is not a valid regular expression/);
});

test('lexical errors: strings, escapes, numbers, unary minus', () => {
  assert.equal(error("request.path == '/a"), 'the string starting at character 17 is not closed');
  assert.equal(error("request.path == '/a\n'"), 'the string starting at character 17 is not closed');
  assert.equal(error("request.path == '\\q'"), "unknown escape \"\\q\" at character 18 (known: \\\\ \\' \\\" \\n \\t \\r)");
  assert.equal(error('response.code == 0x1F'), 'malformed number "0x1F" at character 18');
  assert.equal(error('response.code == 400ms'), 'malformed number "400ms" at character 18');
  assert.equal(error('response.code == 1.5u'), 'malformed number "1.5u" at character 18');
  assert.equal(error('response.code == 99999999999999999999'), 'the integer 99999999999999999999 at character 18 is too large');
  assert.equal(error('response.code == -400u'), 'the unsigned integer 400u at character 19 cannot be negative');
  assert.equal(error('-response.code < 0'), '"-" at character 1 applies only to a number literal');
  assert.equal(error('response.code == -'), 'the expression ends after "-" at character 18');
  // The first mistake is the one reported, even when a lexical one comes later.
  assert.equal(error("response.code == ) 'open"), 'unexpected ")" at character 18');
});

test('empty text, text over 4096 characters and nesting over 64 levels are refused', () => {
  assert.equal(error(''), 'the expression is empty');
  assert.equal(error(' \n\t '), 'the expression is empty');
  const long = `request.path == '${'a'.repeat(4096)}'`;
  assert.equal(error(long), `the expression is ${long.length} characters long; the limit is 4096`);
  const atLimit = `request.path == '${'a'.repeat(4096 - 18)}'`;
  assert.equal(atLimit.length, 4096);
  assert.equal(parse(atLimit).kind, 'cmp');
  assert.equal(parse(`${'('.repeat(64)}connection.mtls${')'.repeat(64)}`).kind, 'attr');
  assert.equal(error(`${'('.repeat(65)}connection.mtls${')'.repeat(65)}`), 'the expression nests deeper than 64 levels at character 65');
  assert.equal(error(`${'!'.repeat(65)}connection.mtls`), 'the expression nests deeper than 64 levels at character 65');
  assert.equal(parse(`${'!'.repeat(64)}connection.mtls`).kind, 'not');
  // A long flat chain is not nesting.
  const chain = Array.from({ length: 200 }, (_, i) => `response.code == ${i}`).join(' || ');
  assert.ok(chain.length > 4096);
  assert.equal(parse(chain.slice(0, chain.lastIndexOf(' || ', 4096))).kind, 'or');
});
