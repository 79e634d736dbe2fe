/**
 * Turning a source into a Nix expression every worker evaluates identically. A flake is
 * locked once (`nix flake metadata`), so all workers see the same tree even if the
 * checkout changes during the evaluation, and evaluated in pure mode like `nix eval .#…`.
 * A plain file is evaluated impurely, like `nix-instantiate` and Hydra's release files.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { formatHash } from '../core/hash.ts';
import { narHash } from '../nar/nar-hash.ts';
import { EvaluationFailedError } from './errors.ts';
import { nixString, runNix } from './nix.ts';
import type { NixContext } from './nix.ts';
import type { EvalSource } from './types.ts';

/** The root of an evaluation: an expression and the evaluation mode it needs. */
export interface EvalRoot {
  expr: string;
  pure: boolean;
  /** How people call the source in messages. */
  label: string;
}

const metadataSchema = z.object({
  url: z.string(),
  path: z.string(),
  locked: z.object({ narHash: z.string().optional(), dir: z.string().optional() }).loose(),
});

/** A filesystem path given as a flake reference, made absolute; other references unchanged. */
export function normalizeFlakeRef(ref: string, cwd = process.cwd()): string {
  if (ref.startsWith('.') || isAbsolute(ref)) return resolve(cwd, ref);
  if (ref.startsWith('path:') && !ref.startsWith('path:/')) return `path:${resolve(cwd, ref.slice('path:'.length))}`;
  return ref;
}

async function lockedUrl(metadata: z.infer<typeof metadataSchema>): Promise<string | undefined> {
  const query = new URL(metadata.url).searchParams;
  if (query.has('rev') || query.has('narHash')) return metadata.url;
  if (metadata.locked.narHash === undefined) return undefined;
  // A dirty git checkout has no revision: evaluate the copy Nix just made, pinned by content.
  if (metadata.locked.dir === undefined) return `path:${metadata.path}?narHash=${encodeURIComponent(metadata.locked.narHash)}`;
  // Nix 2.8's path flakes take no `dir`: pin the subdirectory of the copy by its own NAR hash.
  const subdir = join(metadata.path, metadata.locked.dir);
  const { hash } = await narHash(subdir);
  return `path:${subdir}?narHash=${encodeURIComponent(formatHash(hash, 'sri'))}`;
}

/** Locks a flake and returns `builtins.getFlake "<locked ref>"`; fails the evaluation if Nix cannot load it. */
async function flakeRoot(ctx: NixContext, ref: string): Promise<EvalRoot> {
  const outcome = await runNix(ctx, ['flake', 'metadata', '--json', '--no-write-lock-file', ref]);
  if (!outcome.ok) {
    const hint = /does not exist|No such file/.test(outcome.message)
      ? "\nIn a git repository Nix sees only tracked files: 'git add' them, or pass 'path:<dir>' to use the directory as it is."
      : '';
    throw new EvaluationFailedError(`cannot load flake '${ref}'`, outcome.message + hint);
  }
  const metadata = metadataSchema.parse(JSON.parse(outcome.stdout));
  const url = await lockedUrl(metadata);
  if (url === undefined) throw new EvaluationFailedError(`flake '${ref}' could not be locked to a revision or content hash`, '');
  return { expr: `builtins.getFlake ${nixString(url)}`, pure: true, label: `flake '${ref}'` };
}

/**
 * What a command-line argument names: an existing regular file (or a name ending in `.nix`) is
 * a plain file; anything else (a directory, `path:…`, `github:…`) is a flake reference.
 */
export async function sourceFromArgument(argument: string, cwd = process.cwd()): Promise<EvalSource> {
  const isFile = await stat(resolve(cwd, argument)).then(
    (info) => info.isFile(),
    () => argument.endsWith('.nix'),
  );
  return isFile ? { kind: 'file', path: resolve(cwd, argument) } : { kind: 'flake', ref: normalizeFlakeRef(argument, cwd) };
}

/** The evaluation root of a source. */
export async function resolveRoot(ctx: NixContext, source: EvalSource): Promise<EvalRoot> {
  if (source.kind === 'flake') return flakeRoot(ctx, normalizeFlakeRef(source.ref));
  const path = resolve(source.path);
  return { expr: `import (/. + ${nixString(path)})`, pure: false, label: `file '${path}'` };
}

/** The `nix eval` arguments that evaluate `program` as JSON in the root's mode. */
export function evalArgs(root: EvalRoot, program: string): string[] {
  return ['eval', '--json', ...(root.pure ? ['--option', 'pure-eval', 'true'] : ['--impure']), '--expr', program];
}
