/**
 * The small ATerm subset `.drv` files use: quoted strings with Nix's escapes, lists and
 * tuples.
 */
import { DerivationError } from './errors.ts';

const ESCAPES: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t' };

/** A cursor over ATerm text that throws DerivationError with the position on bad input. */
export class AtermReader {
  pos = 0;
  constructor(readonly text: string) {}

  /** Throws a DerivationError at the current position. */
  fail(message: string, at = this.pos): never {
    throw new DerivationError(`invalid derivation: ${message}`, at);
  }

  /** Consumes `token` or fails. */
  expect(token: string): void {
    if (!this.text.startsWith(token, this.pos)) {
      this.fail(`expected '${token}', found '${this.text.slice(this.pos, this.pos + 20)}'`);
    }
    this.pos += token.length;
  }

  /** A quoted string; \n \r \t are control characters, a backslash before anything else keeps that character. */
  string(): string {
    this.expect('"');
    const text = this.text;
    let out = '';
    let start = this.pos;
    // One linear pass copying runs between escapes: values can be megabytes with many escapes.
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        this.pos = i + 1;
        return out + text.slice(start, i);
      }
      if (c === 0x5c && i + 1 < text.length) {
        const escaped = text[i + 1]!;
        out += text.slice(start, i) + (ESCAPES[escaped] ?? escaped);
        i++;
        start = i + 1;
      }
    }
    return this.fail('unterminated string', text.length);
  }

  /** Items of a `[...]` list, each read by `item`, separated by single commas. */
  list<T>(item: () => T): T[] {
    this.expect('[');
    const items: T[] = [];
    if (this.text[this.pos] === ']') {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(item());
      if (this.text[this.pos] === ']') {
        this.pos++;
        return items;
      }
      this.expect(',');
    }
  }

  /** A `(a,b,…)` tuple of `arity` strings. */
  strings(arity: number): string[] {
    this.expect('(');
    const values: string[] = [];
    for (let i = 0; i < arity; i++) {
      if (i > 0) this.expect(',');
      values.push(this.string());
    }
    this.expect(')');
    return values;
  }
}

/** Quotes a string with Nix's ATerm escapes (printString in derivations.cc). */
export function quoteAtermString(s: string): string {
  return `"${s.replace(/["\\\n\r\t]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\${c}`))}"`;
}

/** Orders strings as C++ std::string does (by UTF-8 bytes, i.e. by code point). */
export function compareBytewise(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}
