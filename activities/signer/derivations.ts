/**
 * What the signer knows of a derivation before it signs one of its outputs: the `.drv` itself
 * (from our cache, where the evaluator published it and the signer checked it against its path;
 * or from the local store when the signer shares a machine with the evaluator), whether the output
 * is one of its outputs at the path Nix would compute for it, and the closure of its inputs, within
 * which every reference of the output must lie.
 *
 * Derivations and references never change for a given path, so both are remembered (bounded).
 */
import { readFile } from 'node:fs/promises';
import { computeOutputPaths, isFixedOutput, parseDerivation, type Derivation } from '../../daemon/core/derivation.ts';
import { parseHashAlgorithm, type Hash, type HashAlgorithm } from '../../daemon/core/hash.ts';
import { parseNarInfo } from '../../daemon/core/narinfo.ts';
import { parseStorePath } from '../../daemon/core/store-path.ts';
import type { BinaryCache } from '../../daemon/executor/cache-client.ts';
import { zstdDecompress } from '../../daemon/executor/zstd.ts';
import { parseNar } from '../../daemon/nar/parse.ts';
import type { DaemonPool } from '../../daemon/protocol/pool.ts';
import { readText } from '../../cache/backend-reader.ts';
import { narInfoKey } from '../../cache/layout.ts';
import type { CacheBackend } from '../../cache/types.ts';

/** A reason to refuse an output, for the build record: "rejected by the signer: <reason>". */
export class RefusedOutput extends Error {}

export interface DerivationSources {
  backend: CacheBackend;
  /** The local store, when the signer shares a machine with the evaluator and builders. */
  store?: DaemonPool | undefined;
  /** Upstream caches, asked for the references of inputs our cache does not hold. */
  upstream?: readonly BinaryCache[];
}

/** What an output is checked against. */
export interface OutputExpectation {
  /** The output name → path the derivation places it at. */
  outputs: Map<string, string>;
  system: string;
  /** The derivation's direct inputs: its sources and the outputs it uses of its input derivations. */
  inputs: string[];
  /** Set for a fixed-output derivation: what its output's hash is over, and the hash. */
  fixed?: { algorithm: HashAlgorithm; recursive: boolean; hash: string };
}

/** Entries remembered of each kind; all are forgotten between two checks once there are more. */
const REMEMBERED = 50_000;

export class SignerDerivations {
  private readonly derivations = new Map<string, Derivation>();
  private readonly moduloHashes = new Map<string, ReadonlyMap<string, Hash>>();
  private readonly referencesOf = new Map<string, readonly string[] | null>();

  constructor(private readonly sources: DerivationSources) {}

  /** Checks that the derivation places its outputs where Nix would, and says what its outputs must match. */
  async expect(drvPath: string): Promise<OutputExpectation> {
    for (const remembered of [this.derivations, this.moduloHashes, this.referencesOf]) if (remembered.size > REMEMBERED) remembered.clear();
    const drv = await this.derivation(drvPath);
    await this.loadInputs(drv);
    const name = parseStorePath(drvPath).name.replace(/\.drv$/, '');
    let placed: Derivation;
    try {
      placed = computeOutputPaths(drv, name, {
        readDerivation: (path) => this.derivations.get(path)!,
        cache: this.moduloHashes,
      });
    } catch (error) {
      throw new RefusedOutput(`the output paths of ${drvPath} cannot be computed: ${(error as Error).message}`);
    }
    for (const [output, { path }] of drv.outputs) {
      if (placed.outputs.get(output)?.path !== path) {
        throw new RefusedOutput(`${drvPath} places its output '${output}' at ${path}, not at ${placed.outputs.get(output)?.path} where Nix would`);
      }
    }
    const inputs = [...drv.inputSrcs];
    for (const [input, names] of drv.inputDrvs) {
      const inputDrv = this.derivations.get(input)!;
      for (const output of names) inputs.push(inputDrv.outputs.get(output)!.path);
    }
    const expectation: OutputExpectation = { outputs: new Map([...drv.outputs].map(([output, { path }]) => [output, path])), system: drv.platform, inputs };
    if (isFixedOutput(drv)) {
      const out = [...drv.outputs.values()][0]!;
      const recursive = out.hashAlgo.startsWith('r:');
      expectation.fixed = { algorithm: parseHashAlgorithm(recursive ? out.hashAlgo.slice(2) : out.hashAlgo), recursive, hash: out.hash };
    }
    return expectation;
  }

  /**
   * Whether every one of `references` lies in the closure of `inputs` (or is among `outputs`);
   * the first one outside it, else undefined. The closure is walked only as far as needed.
   */
  async outsideClosure(references: readonly string[], inputs: readonly string[], outputs: readonly string[]): Promise<string | undefined> {
    const allowed = new Set([...inputs, ...outputs]);
    let missing = references.filter((path) => !allowed.has(path));
    let frontier = [...inputs];
    while (missing.length > 0 && frontier.length > 0) {
      const next: string[] = [];
      for (const path of frontier) {
        for (const reference of (await this.references(path)) ?? []) {
          if (allowed.has(reference)) continue;
          allowed.add(reference);
          next.push(reference);
        }
      }
      frontier = next;
      missing = missing.filter((path) => !allowed.has(path));
    }
    return missing[0];
  }

  /**
   * Loads the input derivations hashDerivationModulo will read: the direct ones always (their
   * output paths are inputs), deeper ones only where their modulo hash is not remembered.
   */
  private async loadInputs(drv: Derivation): Promise<void> {
    const seen = new Set<string>();
    let frontier = [...drv.inputDrvs.keys()];
    for (let depth = 0; frontier.length > 0; depth++) {
      const next: string[] = [];
      for (const path of frontier) {
        if (seen.has(path)) continue;
        seen.add(path);
        if (depth > 0 && this.moduloHashes.has(path)) continue;
        const input = await this.derivation(path);
        if (!this.moduloHashes.has(path)) next.push(...input.inputDrvs.keys());
      }
      frontier = next;
    }
  }

  private async derivation(drvPath: string): Promise<Derivation> {
    const known = this.derivations.get(drvPath);
    if (known) return known;
    const text = (await this.fromCache(drvPath)) ?? (await this.fromStore(drvPath));
    if (text === undefined) {
      throw new RefusedOutput(`${drvPath} is not in the cache${this.sources.store ? ' nor in the local store' : ''}: an evaluator publishes it before anything of it is built`);
    }
    let drv: Derivation;
    try {
      drv = parseDerivation(text);
    } catch (error) {
      throw new RefusedOutput(`${drvPath} is not a valid derivation: ${(error as Error).message}`);
    }
    this.derivations.set(drvPath, drv);
    return drv;
  }

  /** A `.drv` as the evaluator published it (its path checked against its contents when signed). */
  private async fromCache(drvPath: string): Promise<string | undefined> {
    const { backend } = this.sources;
    const narInfoText = await readText(backend, narInfoKey(drvPath));
    if (narInfoText === undefined) return undefined;
    const object = await backend.get(parseNarInfo(narInfoText).url);
    if (!object) return undefined;
    const chunks: Buffer[] = [];
    for await (const event of parseNar(zstdDecompress(object.body))) {
      if (event.type === 'contents') chunks.push(Buffer.from(event.chunk));
      else if (event.type !== 'regular' || event.path.length > 0) throw new RefusedOutput(`the NAR of ${drvPath} in the cache is not a single file`);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private async fromStore(drvPath: string): Promise<string | undefined> {
    const { store } = this.sources;
    if (!store || !(await store.use((client) => client.queryPathInfo(drvPath)))) return undefined;
    return readFile(drvPath, 'utf8');
  }

  /** The references of a store path from our cache, the local store or an upstream cache; null when none knows it. */
  private async references(path: string): Promise<readonly string[] | null> {
    if (this.referencesOf.has(path)) return this.referencesOf.get(path)!;
    let references: readonly string[] | null = null;
    const text = await readText(this.sources.backend, narInfoKey(path));
    if (text !== undefined) references = parseNarInfo(text).references;
    if (references === null && this.sources.store) {
      references = (await this.sources.store.use((client) => client.queryPathInfo(path)))?.references ?? null;
    }
    for (const cache of this.sources.upstream ?? []) {
      if (references !== null) break;
      references = (await cache.narInfo(path).catch(() => undefined))?.references ?? null;
    }
    this.referencesOf.set(path, references);
    return references;
  }
}
