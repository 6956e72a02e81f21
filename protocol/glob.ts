/**
 * LIST patterns (PROTOCOL.md §4 List, §8.22): `*` any run of characters, `?`
 * one character, `[...]` one of a class (`[!...]` negated, `a-z` ranges, a
 * `]` first in the class taken literally), case-sensitive, no escapes. Every
 * other character stands for itself. Written here rather than taken from a
 * glob library: those read `(`, `)`, `|`, `+`, `!`, braces and backslashes
 * as syntax of their own dialects, so a name like "notes (v2).txt" did not
 * match its own pattern.
 */

/** Characters that mean something in a RegExp (with the u flag, only these may be escaped). */
const SYNTAX = /[\\^$.*+?()[\]{}|/]/g;
/** The same inside a class, where "-" means a range. */
const SYNTAX_IN_CLASS = /[\\^$.*+?()[\]{}|/-]/g;

const escape = (text: string): string => text.replace(SYNTAX, '\\$&');
const escapeInClass = (text: string): string => text.replace(SYNTAX_IN_CLASS, '\\$&');

/** `pattern` as an anchored RegExp over whole names (code points). */
export function globToRegExp(pattern: string): RegExp {
  const chars = [...pattern];
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const cls = classAt(chars, i);
      if (cls === undefined) out += '\\['; // never closed: an ordinary "["
      else {
        out += cls.source;
        i = cls.end;
      }
    } else out += escape(c);
  }
  try {
    return new RegExp(`^${out}$`, 'su');
  } catch {
    // A range out of order ("[z-a]"): the pattern can only stand for itself.
    return new RegExp(`^${escape(pattern)}$`, 'su');
  }
}

/** The class starting at `chars[start]` ("["), as RegExp source, and the index of its "]". */
function classAt(chars: string[], start: number): { source: string; end: number } | undefined {
  let i = start + 1;
  const negated = chars[i] === '!';
  if (negated) i++;
  const first = i;
  let body = '';
  for (; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === ']' && i > first) return { source: `[${negated ? '^' : ''}${body}]`, end: i };
    // A range keeps its "-"; anything else is literal inside the class.
    if (c === '-' && i > first && i + 1 < chars.length && chars[i + 1] !== ']') body += '-';
    else body += escapeInClass(c);
  }
  return undefined;
}

/** A pattern that matches `name` alone: with no escapes, each wildcard goes in a class of its own. */
export function literalPattern(name: string): string {
  return name.replace(/[*?[]/g, (c) => `[${c}]`);
}
