/** LIST globs of §4 List and §8.22: `*`, `?`, `[...]`, `[!...]`, no escapes, every other character literal. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { globToRegExp, literalPattern } from '../../protocol/glob.js';

const test = suite('protocol: glob');
const matches = (pattern: string, name: string) => globToRegExp(pattern).test(name);

test('wildcards: * any run (also none, also a leading dot), ? exactly one character (a code point)', () => {
  assert.ok(matches('*', 'a'));
  assert.ok(matches('a*', 'a'));
  assert.ok(matches('*.txt', 'x.y.txt'));
  assert.ok(matches('?.txt', 'é.txt'));
  assert.ok(matches('?', '😀'));
  assert.not.ok(matches('?', 'ab'));
  assert.not.ok(matches('a*', 'ba'), 'anchored');
});

test('classes: ranges, [!...] negation, a leading ] literal, an unclosed [ literal', () => {
  assert.ok(matches('[a-c]x', 'bx'));
  assert.not.ok(matches('[a-c]x', 'dx'));
  assert.ok(matches('[!a]b', 'cb'));
  assert.not.ok(matches('[!a]b', 'ab'));
  assert.ok(matches('[]]', ']'));
  assert.ok(matches('[!]]x', 'ax'));
  assert.not.ok(matches('[!]]x', ']x'));
  assert.ok(matches('[a-]', '-'), 'a trailing - is literal');
  assert.ok(matches('a[', 'a['));
  assert.ok(matches('[z-a]', '[z-a]'), 'a range out of order stands for itself');
});

test('case-sensitive; no escapes; (, ), +, |, {, }, ^, $, . and \\ are literal', () => {
  assert.not.ok(matches('A*', 'a'));
  assert.ok(matches('(1).txt', '(1).txt'));
  assert.not.ok(matches('(1).txt', '1.txt'));
  assert.ok(matches('*(1).txt', 'report (1).txt'));
  assert.not.ok(matches('C++', 'C+'));
  assert.not.ok(matches('a|b', 'a'));
  assert.not.ok(matches('{a,b}', 'a'));
  assert.ok(matches('{a,b}', '{a,b}'));
  assert.not.ok(matches('$$', '$'));
  assert.not.ok(matches('a.c', 'abc'));
  assert.ok(matches('^a', '^a'));
  assert.ok(matches('!x', '!x'), 'a leading ! is a character, not a negation of the whole pattern');
});

test('literalPattern(name) matches that name and nothing else', () => {
  const names = ['a*b.bin', 'a?c', 'a[1].bin', 'file[1] (copy).txt', 'why? (draft).txt', 'notes (v2)*.md', 'a]b', 'a[!b]', '[x', 'x-y', 'C++', '$$', '[-]', 'a|b', '{x}', 'plain.txt'];
  for (const name of names) {
    const pattern = literalPattern(name);
    assert.ok(matches(pattern, name), `${name} by ${pattern}`);
    for (const other of names) if (other !== name) assert.not.ok(matches(pattern, other), `${other} by ${pattern}`);
    assert.not.ok(matches(pattern, `${name}x`));
  }
});

test.run();
