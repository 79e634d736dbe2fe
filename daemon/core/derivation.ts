/**
 * `.drv` files (libstore/derivations.cc): parsed and printed byte-exact, and hashed
 * "modulo" fixed-output inputs to place input-addressed outputs. Maps keep file order so
 * printDerivation(parseDerivation(t)) === t; Nix writes them sorted (see sortDerivation).
 */
import { AtermReader, compareBytewise, quoteAtermString } from './aterm.ts';
import { DerivationError } from './errors.ts';
import { encodeBase16, hashBytes, parseHash, parseHashAlgorithm } from './hash.ts';
import type { Hash } from './hash.ts';
import {
  DEFAULT_STORE_DIR,
  formatStorePath,
  makeFixedOutputPath,
  makeOutputPath,
  makeTextPath,
  parseStorePath,
} from './store-path.ts';
import type { StorePath } from './store-path.ts';

/**
 * One output. Input-addressed: path only. Fixed-output: path, hashAlgo (`sha256`, `r:sha256`)
 * and base16 hash. Floating content-addressed: hashAlgo only. Deferred: all empty.
 */
export interface DerivationOutput {
  path: string;
  hashAlgo: string;
  hash: string;
}

/** A store derivation: what to build, from which inputs, and where the outputs go. */
export interface Derivation {
  outputs: Map<string, DerivationOutput>;
  /** Input derivation path → the output names used from it. */
  inputDrvs: Map<string, string[]>;
  inputSrcs: string[];
  platform: string;
  builder: string;
  args: string[];
  env: Map<string, string>;
}

/** Options of printDerivation; both exist for hashDerivationModulo. */
export interface PrintDerivationOptions {
  /** Print output paths, and env entries named like an output, as empty strings. */
  maskOutputs?: boolean;
  /** Printed in place of the input derivations. */
  inputDrvsOverride?: ReadonlyMap<string, readonly string[]>;
}

/** Parses the ATerm text of a `.drv` file, checking that its paths are store paths in `storeDir`. */
export function parseDerivation(text: string, storeDir = DEFAULT_STORE_DIR): Derivation {
  const r = new AtermReader(text);
  const storePath = (what: string, at: number, value: string): string => {
    try {
      parseStorePath(value, storeDir);
    } catch (error) {
      r.fail(`${what}: ${error instanceof Error ? error.message : String(error)}`, at);
    }
    return value;
  };
  const pathString = (what: string): string => storePath(what, r.pos, r.string());

  r.expect('Derive(');
  const outputs = new Map<string, DerivationOutput>();
  r.list(() => {
    const at = r.pos;
    const [name = '', path = '', hashAlgo = '', hash = ''] = r.strings(4);
    if (path !== '') storePath(`output '${name}'`, at, path);
    if (outputs.has(name)) r.fail(`output '${name}' appears twice`, at);
    outputs.set(name, { path, hashAlgo, hash });
  });
  r.expect(',');
  const inputDrvs = new Map<string, string[]>();
  r.list(() => {
    r.expect('(');
    const path = pathString('input derivation');
    r.expect(',');
    inputDrvs.set(path, r.list(() => r.string()));
    r.expect(')');
  });
  r.expect(',');
  const inputSrcs = r.list(() => pathString('input source'));
  r.expect(',');
  const platform = r.string();
  r.expect(',');
  const builder = r.string();
  r.expect(',');
  const args = r.list(() => r.string());
  r.expect(',');
  const env = new Map<string, string>();
  r.list(() => {
    const [name = '', value = ''] = r.strings(2);
    env.set(name, value);
  });
  r.expect(')');
  if (r.pos !== text.length) r.fail('trailing characters after the derivation');
  return { outputs, inputDrvs, inputSrcs, platform, builder, args, env };
}

/** Nix prints paths, output names and the platform without escaping (printUnquotedString). */
function unquoted(s: string): string {
  return `"${s}"`;
}

/** Prints a derivation as the ATerm text Nix writes to a `.drv` file. */
export function printDerivation(drv: Derivation, options: PrintDerivationOptions = {}): string {
  const mask = options.maskOutputs ?? false;
  const outputs = [...drv.outputs].map(
    ([name, o]) => `(${unquoted(name)},${unquoted(mask ? '' : o.path)},${unquoted(o.hashAlgo)},${unquoted(o.hash)})`,
  );
  const inputDrvs = [...(options.inputDrvsOverride ?? drv.inputDrvs)].map(
    ([path, names]) => `(${unquoted(path)},[${names.map(unquoted).join(',')}])`,
  );
  const env = [...drv.env].map(
    ([name, value]) => `(${quoteAtermString(name)},${quoteAtermString(mask && drv.outputs.has(name) ? '' : value)})`,
  );
  return (
    `Derive([${outputs.join(',')}],[${inputDrvs.join(',')}],[${drv.inputSrcs.map(unquoted).join(',')}],` +
    `${unquoted(drv.platform)},${quoteAtermString(drv.builder)},[${drv.args.map(quoteAtermString).join(',')}],[${env.join(',')}])`
  );
}

function baseNameOrder(a: string, b: string): number {
  return compareBytewise(a.slice(a.lastIndexOf('/') + 1), b.slice(b.lastIndexOf('/') + 1));
}

/** A copy with outputs, inputs and env in the order (and deduplication) Nix uses when writing a `.drv`. */
export function sortDerivation(drv: Derivation): Derivation {
  const byKey = <V>(map: ReadonlyMap<string, V>, order = compareBytewise): Map<string, V> =>
    new Map([...map].sort(([a], [b]) => order(a, b)));
  const inputDrvs = new Map([...drv.inputDrvs].map(([path, names]) => [path, [...new Set(names)].sort(compareBytewise)]));
  return {
    ...drv,
    outputs: byKey(drv.outputs),
    inputDrvs: byKey(inputDrvs, baseNameOrder),
    inputSrcs: [...new Set(drv.inputSrcs)].sort(baseNameOrder),
    env: byKey(drv.env),
  };
}

/** True when every output carries a fixed hash (a fixed-output derivation). */
export function isFixedOutput(drv: Derivation): boolean {
  return drv.outputs.size > 0 && [...drv.outputs.values()].every((o) => o.hashAlgo !== '' && o.hash !== '');
}

/** What hashDerivationModulo needs to reach input derivations; kept synchronous so the core stays pure. */
export interface ModuloHashContext {
  /** The parsed derivation at an input `.drv` path (the caller loads them beforehand). */
  readDerivation(drvPath: string): Derivation;
  /** Modulo hashes by `.drv` path, reused across calls; filled as a side effect. */
  cache?: Map<string, ReadonlyMap<string, Hash>>;
}

/**
 * Nix's hashDerivationModulo: per output name, sha256("fixed:out:<algo>:<hex>:<path>") for a
 * fixed-output derivation; otherwise sha256 of the ATerm with each input `.drv` path replaced
 * by its own modulo hash (so fixed-output inputs that only change how they fetch do not
 * change dependants), and with output paths blanked when `maskOutputs` (to place them).
 */
export function hashDerivationModulo(drv: Derivation, maskOutputs: boolean, context: ModuloHashContext): Map<string, Hash> {
  if (isFixedOutput(drv)) {
    return new Map(
      [...drv.outputs].map(([name, o]) => {
        if (o.path === '') throw new DerivationError(`fixed-output derivation output '${name}' has no path: place it with computeOutputPaths first`);
        return [name, hashBytes('sha256', `fixed:out:${o.hashAlgo}:${o.hash}:${o.path}`)];
      }),
    );
  }
  for (const [name, o] of drv.outputs) {
    if (o.hashAlgo !== '' || (o.path === '' && !maskOutputs)) {
      throw new DerivationError(`output '${name}' is content-addressed or deferred: only input-addressed and fixed-output derivations are supported`);
    }
  }
  const replaced = new Map<string, Set<string>>();
  for (const [drvPath, names] of drv.inputDrvs) {
    const inputHashes = moduloHashOfPath(drvPath, context);
    for (const name of names) {
      const h = inputHashes.get(name);
      if (h === undefined) throw new DerivationError(`input derivation '${drvPath}' has no output '${name}'`);
      const key = encodeBase16(h.digest);
      replaced.set(key, (replaced.get(key) ?? new Set()).add(name));
    }
  }
  const inputDrvsOverride = new Map(
    [...replaced].sort(([a], [b]) => compareBytewise(a, b)).map(([key, names]) => [key, [...names].sort(compareBytewise)]),
  );
  const hash = hashBytes('sha256', printDerivation(drv, { maskOutputs, inputDrvsOverride }));
  return new Map([...drv.outputs.keys()].map((name) => [name, hash]));
}

function moduloHashOfPath(drvPath: string, context: ModuloHashContext): ReadonlyMap<string, Hash> {
  const cached = context.cache?.get(drvPath);
  if (cached) return cached;
  const hashes = hashDerivationModulo(context.readDerivation(drvPath), false, context);
  context.cache?.set(drvPath, hashes);
  return hashes;
}

/**
 * Places the outputs of a derivation whose outputs are named but not yet placed, as
 * `derivation` (derivationStrict) does: fills the output paths and the env entries named
 * after outputs. `drvName` is the `name` attribute.
 */
export function computeOutputPaths(drv: Derivation, drvName: string, context: ModuloHashContext, storeDir = DEFAULT_STORE_DIR): Derivation {
  const outputs = new Map<string, DerivationOutput>();
  const env = new Map(drv.env);
  const place = (name: string, output: DerivationOutput, path: StorePath): void => {
    const printed = formatStorePath(path, storeDir);
    outputs.set(name, { ...output, path: printed });
    env.set(name, printed);
  };
  if (isFixedOutput(drv)) {
    for (const [name, o] of drv.outputs) {
      const recursive = o.hashAlgo.startsWith('r:');
      const hash = parseHash(o.hash, parseHashAlgorithm(recursive ? o.hashAlgo.slice(2) : o.hashAlgo));
      place(name, o, makeFixedOutputPath({ method: recursive ? 'recursive' : 'flat', hash, name: drvName, storeDir }));
    }
  } else {
    const hashes = hashDerivationModulo(drv, true, context);
    for (const [name, o] of drv.outputs) place(name, o, makeOutputPath(name, hashes.get(name)!, drvName, storeDir));
  }
  return { ...drv, outputs, env };
}

/** The store path a `.drv` is written to: a text path referencing its input sources and derivations. */
export function derivationStorePath(drv: Derivation, drvName: string, storeDir = DEFAULT_STORE_DIR): StorePath {
  const references = [...drv.inputSrcs, ...drv.inputDrvs.keys()].map((p) => parseStorePath(p, storeDir));
  return makeTextPath(`${drvName}.drv`, hashBytes('sha256', printDerivation(drv)), references, storeDir);
}
