/**
 * Which store paths can be had without building them: valid in the local store, in our binary
 * cache, or in an upstream cache, asked in that order, each source only about what the ones
 * before it lacked. Planning asks this once per layer of the derivation graph, so narinfo
 * lookups go out concurrently (bounded, over fetch's keep-alive connections) and answers are
 * remembered for a while: a miss briefly (the path may be published any moment), a hit longer.
 *
 * A cache that cannot be asked does not stop planning: after one retry its unanswered paths count
 * as missing, with a warning naming it, so they are built — a delay, not a loss. It is then left
 * alone for the negative TTL, so a cache that swallows requests costs one timeout per TTL, not one
 * per layer of the graph.
 */
import type { PublicKey } from '../core/signing.ts';
import type { BinaryCache } from './cache-client.ts';
import { HttpTimeoutError } from '../../lib/http.ts';
import { CacheRequestError, SubstitutionError } from './errors.ts';
import { checkSignature } from './substituter.ts';

/** A binary cache to ask, and whose signatures make its narinfos count. */
export interface LookupSource {
  cache: BinaryCache;
  /** Keys one of whose signatures a narinfo needs; undefined for our own cache, which only our signer writes. */
  trustedKeys?: readonly PublicKey[] | undefined;
  /**
   * False for our own cache: builds publish there all the time, and a remembered miss would make a
   * second eval right after the first plan (and build) again what the first just published.
   */
  rememberMisses?: boolean;
}

export interface PathLookupOptions {
  /** The local store's valid paths among these (one daemon query); asked first, never remembered. */
  local?: ((paths: string[]) => Promise<Set<string>>) | undefined;
  /** Our cache, then the upstream caches, in the order they are asked. */
  sources: readonly LookupSource[];
  /** How long a miss is remembered, and a hit. */
  negativeTtlMs: number;
  positiveTtlMs: number;
  /** Narinfo requests in flight at once, per source. */
  concurrency?: number;
  /** Told when a cache could not be asked or answered with narinfos that do not count. */
  warn(message: string): void;
  /** Remembered answers per source before the oldest are forgotten. */
  maxRemembered?: number;
  /** The clock, in milliseconds (tests move it). */
  now?: () => number;
}

export const DEFAULT_LOOKUP_CONCURRENCY = 48;
const DEFAULT_MAX_REMEMBERED = 500_000;
/** Pause before the one retry of a failed lookup: a dropped connection or a restarting server. */
const RETRY_DELAY_MS = 250;

interface Remembered {
  present: boolean;
  expires: number;
}

/** What went wrong with one source during one query, reported once at its end. */
interface QueryTrouble {
  outage?: unknown;
  unanswered: number;
  rejected: number;
  example?: string;
}

/** Answers "which of these store paths are available" across the local store and every cache. */
export class PathLookup {
  private readonly memos: Array<Map<string, Remembered>>;
  /** Per source: until when it is not asked, after it could not be. */
  private readonly downUntil: number[];
  private readonly concurrency: number;
  private readonly maxRemembered: number;
  private readonly now: () => number;

  constructor(private readonly options: PathLookupOptions) {
    this.memos = options.sources.map(() => new Map());
    this.downUntil = options.sources.map(() => 0);
    this.concurrency = Math.max(1, options.concurrency ?? DEFAULT_LOOKUP_CONCURRENCY);
    this.maxRemembered = options.maxRemembered ?? DEFAULT_MAX_REMEMBERED;
    this.now = options.now ?? Date.now;
  }

  /** The subset of `paths` valid locally or in some source. */
  async available(paths: readonly string[]): Promise<Set<string>> {
    const unique = [...new Set(paths)];
    const found = new Set<string>(unique.length > 0 && this.options.local ? await this.options.local(unique) : []);
    let lacking = unique.filter((path) => !found.has(path));
    for (const [index, source] of this.options.sources.entries()) {
      if (lacking.length === 0) break;
      if (this.now() < this.downUntil[index]!) continue;
      const present = await this.ask(source, this.memos[index]!, lacking, index);
      for (const path of present) found.add(path);
      lacking = lacking.filter((path) => !present.has(path));
    }
    return found;
  }

  /** The paths `source` has, from memory where it is fresh, else by narinfo. */
  private async ask(source: LookupSource, memo: Map<string, Remembered>, paths: string[], index: number): Promise<Set<string>> {
    const present = new Set<string>();
    const toFetch: string[] = [];
    const now = this.now();
    for (const path of paths) {
      const remembered = memo.get(path);
      if (remembered === undefined || remembered.expires <= now) toFetch.push(path);
      else if (remembered.present) present.add(path);
    }
    const trouble: QueryTrouble = { unanswered: 0, rejected: 0 };
    await forEachBounded(toFetch, this.concurrency, async (path) => {
      // Once the cache is found down, the rest of this query does not wait on it again.
      if (trouble.outage !== undefined) return void trouble.unanswered++;
      const answer = await this.lookupOne(source, path, trouble);
      if (answer === undefined) return void trouble.unanswered++;
      if (answer || source.rememberMisses !== false) this.remember(memo, path, answer);
      if (answer) present.add(path);
    });
    if (trouble.outage !== undefined) this.downUntil[index] = this.now() + this.options.negativeTtlMs;
    this.report(source, trouble);
    return present;
  }

  /** Whether `source` has a narinfo for `path` that counts; undefined when the cache could not be asked. */
  private async lookupOne(source: LookupSource, path: string, trouble: QueryTrouble): Promise<boolean | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        const info = await source.cache.narInfo(path);
        if (info === undefined) return false;
        if (info.storePath !== path) throw new SubstitutionError(path, `the narinfo in ${source.cache.url} describes ${info.storePath} instead`);
        if (source.trustedKeys) checkSignature(info, source.trustedKeys);
        return true;
      } catch (error) {
        // A corrupt, misplaced or badly signed narinfo is that path's problem: it counts as missing (and
        // is built); the cache stays in use. Anything else (no connection, a timeout, a 5xx) is the cache's.
        if (error instanceof SubstitutionError && !(error instanceof CacheRequestError)) {
          trouble.rejected++;
          trouble.example ??= error.message;
          return false;
        }
        if (trouble.outage !== undefined) return undefined;
        // A timeout has waited long already; anything else (a dropped connection) gets one more try.
        if (attempt >= 2 || error instanceof HttpTimeoutError) {
          trouble.outage = error;
          return undefined;
        }
        await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
      }
    }
  }

  private remember(memo: Map<string, Remembered>, path: string, present: boolean): void {
    memo.delete(path);
    memo.set(path, { present, expires: this.now() + (present ? this.options.positiveTtlMs : this.options.negativeTtlMs) });
    if (memo.size <= this.maxRemembered) return;
    const now = this.now();
    for (const [key, entry] of memo) if (entry.expires <= now) memo.delete(key);
    // Still full of fresh answers: forget the oldest tenth (a Map iterates in insertion order).
    let excess = memo.size - Math.floor(this.maxRemembered * 0.9);
    for (const key of memo.keys()) {
      if (excess-- <= 0) break;
      memo.delete(key);
    }
  }

  private report(source: LookupSource, trouble: QueryTrouble): void {
    const url = source.cache.url;
    if (trouble.outage !== undefined) {
      const reason = trouble.outage instanceof Error ? trouble.outage.message : String(trouble.outage);
      this.options.warn(
        `binary cache ${url} could not be asked (${reason}); ${trouble.unanswered} path(s) it was asked about count as missing ` +
          `and will be built unless another source has them, and it is not asked again for ${Math.round(this.options.negativeTtlMs / 1000)} s: ` +
          `check that the cache is up and reachable from this host`,
      );
    }
    if (trouble.rejected > 0) {
      this.options.warn(`${trouble.rejected} narinfo(s) in ${url} do not count and their paths will be built unless another source has them; e.g. ${trouble.example}`);
    }
  }
}

/** Runs `fn` over `items` with at most `limit` calls pending at once. */
export async function forEachBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
