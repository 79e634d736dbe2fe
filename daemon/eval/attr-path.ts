/** Dotted attribute paths (`checks."x86_64-linux".app`) as users type them and nix-eval-jobs prints them. */
import { AttrPathError } from './errors.ts';

/** Splits `a.b."c.d"` into `['a', 'b', 'c.d']`; the empty string is the root (`[]`). */
export function parseAttrPath(text: string): string[] {
  if (text === '') return [];
  const components: string[] = [];
  let i = 0;
  for (;;) {
    let component = '';
    if (text[i] === '"') {
      const close = text.indexOf('"', i + 1);
      if (close < 0) throw new AttrPathError(`attribute path '${text}' has an unterminated quote; close it with '"'`);
      component = text.slice(i + 1, close);
      i = close + 1;
    } else {
      while (i < text.length && text[i] !== '.') {
        if (text[i] === '"') throw new AttrPathError(`attribute path '${text}' has a quote inside a name; quote the whole component`);
        component += text[i];
        i += 1;
      }
    }
    if (component === '') throw new AttrPathError(`attribute path '${text}' has an empty component; remove the extra '.'`);
    components.push(component);
    if (i === text.length) return components;
    if (text[i] !== '.') throw new AttrPathError(`attribute path '${text}' needs a '.' after a quoted component`);
    i += 1;
    if (i === text.length) throw new AttrPathError(`attribute path '${text}' ends with '.'; remove it`);
  }
}

/** Joins components with dots, quoting those that contain a dot, exactly like nix-eval-jobs' `attr` field. */
export function formatAttrPath(path: readonly string[]): string {
  return path.map((component) => (component.includes('.') ? `"${component}"` : component)).join('.');
}
