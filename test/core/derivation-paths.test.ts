/**
 * Derivations generated here, built both as Nix expressions and as Derivation values: the
 * store paths we compute (text, source, fixed-output and input-addressed outputs through
 * hashDerivationModulo) must equal what nix-instantiate writes, and every .drv it writes
 * must round-trip byte-exact and agree with `nix show-derivation`.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  computeOutputPaths,
  derivationStorePath,
  parseDerivation,
  printDerivation,
  sortDerivation,
} from '../../daemon/core/derivation.ts';
import type { Derivation } from '../../daemon/core/derivation.ts';
import { encodeBase16, formatHash, hashBytes, parseHash } from '../../daemon/core/hash.ts';
import type { HashAlgorithm, HashEncoding } from '../../daemon/core/hash.ts';
import { formatStorePath, makeFixedOutputPath, makeTextPath, parseStorePath } from '../../daemon/core/store-path.ts';
import { NIX_COMMAND, nix, nixString, nonce, tempDir } from './nix-oracle.ts';

interface Fixed {
  mode: 'flat' | 'recursive';
  algorithm: HashAlgorithm;
  encoding: HashEncoding;
  digest: Uint8Array;
}
interface Node {
  name: string;
  outputs: string[];
  args: string[];
  fixed?: Fixed;
  deps: { node: number; output: string }[];
  text?: string;
  useSrc: boolean;
}

const NASTY = ['quote " backslash \\ end', 'new\nline\r\ncarriage\ttab', 'dollar $ {x} ${', 'ünïcødé ✓ 🚀', '', ' spaces  '];
const OUTPUT_SETS = [['out'], ['out', 'dev'], ['bin', 'out', 'lib'], ['dev', 'out']];
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

function generateGraph(token: string): Node[] {
  const fixedSpecs: Omit<Fixed, 'digest'>[] = [
    { mode: 'flat', algorithm: 'sha256', encoding: 'base32' },
    { mode: 'recursive', algorithm: 'sha256', encoding: 'sri' },
    { mode: 'flat', algorithm: 'sha1', encoding: 'base16' },
    { mode: 'recursive', algorithm: 'sha1', encoding: 'base32' },
    { mode: 'recursive', algorithm: 'sha512', encoding: 'base64' },
  ];
  const nodes: Node[] = fixedSpecs.map((spec, i) => ({
    name: `fod${i}-${token}`,
    outputs: ['out'],
    args: ['-c', `fetch ${i}`],
    fixed: { ...spec, digest: randomBytes(spec.algorithm === 'sha1' ? 20 : spec.algorithm === 'sha256' ? 32 : 64) },
    deps: [],
    useSrc: false,
  }));
  // A twin of the first fixed-output derivation: same hash, different recipe.
  nodes.push({ ...nodes[0]!, args: ['-c', 'another way to fetch the same thing'] });
  for (let i = 0; i < 7; i++) {
    const deps = Array.from({ length: 1 + Math.floor(Math.random() * 3) }, () => {
      const node = Math.floor(Math.random() * nodes.length);
      return { node, output: pick(nodes[node]!.outputs) };
    });
    nodes.push({
      name: `node${i}-${token}`,
      outputs: pick(OUTPUT_SETS),
      args: ['-c', pick(NASTY), pick(NASTY)],
      deps,
      text: i % 3 === 0 ? `text ${i} ${pick(NASTY)}` : undefined,
      useSrc: i % 2 === 0,
    });
  }
  // Two dependants identical but for which fixed-output twin they use: same outputs, different .drv.
  for (const twin of [0, 5]) {
    nodes.push({ name: `twin-${token}`, outputs: ['out'], args: ['-c', 'same'], deps: [{ node: twin, output: 'out' }], useSrc: false });
  }
  return nodes;
}

function encodeFixed(f: Fixed): string {
  const hash = { algorithm: f.algorithm, digest: f.digest };
  return f.encoding === 'sri' ? formatHash(hash, 'sri') : formatHash(hash, f.encoding, false);
}

function nixExpression(nodes: Node[], srcFile: string): string {
  const bindings = nodes.map((n, i) => {
    const attrs = [`name = ${nixString(n.name)};`, 'system = "x86_64-linux";', 'builder = "/bin/sh";'];
    attrs.push(`args = [ ${n.args.map(nixString).join(' ')} ];`, `nasty = ${nixString(n.args.at(-1)!)};`);
    if (n.outputs.length > 1) attrs.push(`outputs = [ ${n.outputs.map(nixString).join(' ')} ];`);
    if (n.fixed) {
      attrs.push(`outputHashMode = "${n.fixed.mode}";`, `outputHashAlgo = "${n.fixed.algorithm}";`, `outputHash = "${encodeFixed(n.fixed)}";`);
    }
    if (n.deps.length > 0) attrs.push(`deps = "${n.deps.map((d) => `\${n${d.node}.${d.output}}`).join(' ')}";`);
    if (n.text !== undefined) attrs.push(`txt = builtins.toFile "t${i}" (${nixString(n.text)} + "\${./${srcFile}}");`);
    if (n.useSrc) attrs.push(`src = ./${srcFile};`);
    return `  n${i} = derivation { ${attrs.join(' ')} };`;
  });
  const results = nodes.map((n, i) => `{ inherit (n${i}) drvPath; outs = [ ${n.outputs.map((o) => `n${i}.${o}.outPath`).join(' ')} ]; }`);
  return `let\n${bindings.join('\n')}\nin [\n  ${results.join('\n  ')}\n]\n`;
}

/** Our own construction of each node, from the same plan, with all paths computed here. */
function buildDerivations(nodes: Node[], srcPath: string): { drvPath: string; drv: Derivation }[] {
  const built: { drvPath: string; drv: Derivation }[] = [];
  const byPath = new Map<string, Derivation>();
  const context = { readDerivation: (p: string) => byPath.get(p)!, cache: new Map() };
  for (const [i, n] of nodes.entries()) {
    const env = new Map([['builder', '/bin/sh'], ['name', n.name], ['system', 'x86_64-linux'], ['nasty', n.args.at(-1)!]]);
    const inputSrcs: string[] = [];
    const inputDrvs = new Map<string, string[]>();
    if (n.outputs.length > 1) env.set('outputs', n.outputs.join(' '));
    const outputs = new Map(n.outputs.map((o) => [o, { path: '', hashAlgo: '', hash: '' }]));
    for (const o of n.outputs) env.set(o, '');
    if (n.fixed) {
      const prefix = n.fixed.mode === 'recursive' ? 'r:' : '';
      outputs.set('out', { path: '', hashAlgo: `${prefix}${n.fixed.algorithm}`, hash: encodeBase16(n.fixed.digest) });
      env.set('outputHashMode', n.fixed.mode).set('outputHashAlgo', n.fixed.algorithm).set('outputHash', encodeFixed(n.fixed));
    }
    if (n.deps.length > 0) {
      env.set('deps', n.deps.map((d) => built[d.node]!.drv.outputs.get(d.output)!.path).join(' '));
      for (const d of n.deps) {
        const path = built[d.node]!.drvPath;
        inputDrvs.set(path, [...(inputDrvs.get(path) ?? []), d.output]);
      }
    }
    if (n.text !== undefined) {
      const text = makeTextPath(`t${i}`, hashBytes('sha256', n.text + srcPath), [parseStorePath(srcPath)]);
      env.set('txt', formatStorePath(text));
      // The text file's own reference to the source stays inside its context: not an input here.
      inputSrcs.push(formatStorePath(text));
    }
    if (n.useSrc) {
      env.set('src', srcPath);
      inputSrcs.push(srcPath);
    }
    const draft = sortDerivation({ outputs, inputDrvs, inputSrcs, platform: 'x86_64-linux', builder: '/bin/sh', args: n.args, env });
    const drv = computeOutputPaths(draft, n.name, context);
    const drvPath = formatStorePath(derivationStorePath(drv, n.name));
    byPath.set(drvPath, drv);
    built.push({ drvPath, drv });
  }
  return built;
}

/** The JSON `nix show-derivation` prints for a derivation. */
function showDerivationJson(d: Derivation): unknown {
  return {
    outputs: Object.fromEntries([...d.outputs].map(([k, o]) => [k, o.hashAlgo ? o : { path: o.path }])),
    inputSrcs: d.inputSrcs,
    inputDrvs: Object.fromEntries(d.inputDrvs),
    system: d.platform,
    builder: d.builder,
    args: d.args,
    env: Object.fromEntries(d.env),
  };
}

describe('store paths and derivations agree with nix-instantiate', () => {
  const tmp = tempDir('drv');
  const token = nonce();
  const srcFile = `src-${token}`;
  let nodes: Node[];
  let nixResult: { drvPath: string; outs: string[] }[];
  let srcPath: string;

  before(async () => {
    nodes = generateGraph(token);
    writeFileSync(join(tmp.dir, srcFile), `source ${token}\n`);
    writeFileSync(join(tmp.dir, 'graph.nix'), nixExpression(nodes, srcFile));
    const narHash = parseHash((await nix('nix-hash', ['--type', 'sha256', join(tmp.dir, srcFile)])).trim(), 'sha256');
    srcPath = formatStorePath(makeFixedOutputPath({ method: 'recursive', hash: narHash, name: srcFile }));
    nixResult = JSON.parse(await nix('nix-instantiate', ['--eval', '--strict', '--json', '--read-write-mode', join(tmp.dir, 'graph.nix')]));
  });
  after(() => tmp.cleanup());

  test('computed .drv paths and output paths equal Nix', () => {
    const ours = buildDerivations(nodes, srcPath);
    for (const [i, n] of nodes.entries()) {
      const expectedOuts = n.outputs.map((o) => ours[i]!.drv.outputs.get(o)!.path);
      assert.deepEqual(nixResult[i]!.outs, expectedOuts, `outputs of ${n.name} (${n.fixed ? 'fixed' : 'input-addressed'})`);
      assert.equal(ours[i]!.drvPath, nixResult[i]!.drvPath, `.drv path of ${n.name}`);
      assert.equal(printDerivation(ours[i]!.drv), readFileSync(nixResult[i]!.drvPath, 'utf8'), `.drv text of ${n.name}`);
    }
    const [twinA, twinB] = nixResult.slice(-2);
    assert.deepEqual(twinA!.outs, twinB!.outs, 'dependants of equal fixed outputs share output paths');
    assert.notEqual(twinA!.drvPath, twinB!.drvPath);
  });

  test('every .drv round-trips byte-exact and matches nix show-derivation', async () => {
    const paths = nixResult.map((r) => r.drvPath);
    const shown = JSON.parse(await nix('nix', [...NIX_COMMAND, 'show-derivation', ...paths])) as Record<string, unknown>;
    assert.equal(Object.keys(shown).length, paths.length);
    for (const path of paths) {
      const text = readFileSync(path, 'utf8');
      const drv = parseDerivation(text);
      assert.equal(printDerivation(drv), text, `round trip of ${path}`);
      assert.deepEqual(showDerivationJson(drv), shown[path], `show-derivation of ${path}`);
    }
  });

  test('text and source paths equal what Nix evaluates', async () => {
    const plain = `plain ${token}`;
    const expr = `let a = builtins.toFile "a-${token}" "${plain}"; s = ./${srcFile}; in [ a "\${s}" (builtins.toFile "b-${token}" "\${a} \${s}") ]`;
    writeFileSync(join(tmp.dir, 'text.nix'), expr);
    const [a, s, b] = JSON.parse(await nix('nix-instantiate', ['--eval', '--strict', '--json', join(tmp.dir, 'text.nix')])) as string[];
    const ourA = makeTextPath(`a-${token}`, hashBytes('sha256', plain));
    assert.equal(formatStorePath(ourA), a);
    assert.equal(srcPath, s);
    const ourB = makeTextPath(`b-${token}`, hashBytes('sha256', `${a} ${s}`), [parseStorePath(s!), ourA]);
    assert.equal(formatStorePath(ourB), b);
  });
});
