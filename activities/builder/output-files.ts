/**
 * What a build's outputs say about themselves through Hydra's `nix-support` conventions, read
 * from this builder's store right after the build: `nix-support/failed` marks a build that
 * produced output but failed (a test report); `nix-support/hydra-build-products` lists files
 * offered for download.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { BuildProduct, BuiltOutput } from '../../workflows/types.ts';

/** The outputs holding a regular `nix-support/failed` file, as `$out/nix-support/failed` paths. */
export async function failedMarkers(outputs: readonly BuiltOutput[]): Promise<string[]> {
  const found: string[] = [];
  for (const output of outputs) {
    const marker = join(output.path, 'nix-support', 'failed');
    const stat = await lstat(marker).catch(() => undefined);
    if (stat?.isFile()) found.push(marker);
  }
  return found;
}

/** Most products kept per build, and the largest products file read. */
const MAX_PRODUCTS = 100;
const MAX_PRODUCTS_FILE = 64 * 1024;

// Hydra's own line format (hydra-queue-runner, build-result.cc): `type subtype path [defaultPath]`,
// the path in double quotes when it holds spaces.
const PRODUCT_LINE = /^([a-zA-Z0-9_-]+)\s+([a-zA-Z0-9_-]+)\s+("[^"]+"|[^"\s<>]+)(?:\s+([^"\s<>]+))?$/;

/** The products the outputs declare; lines that do not parse or point outside the outputs are skipped. */
export async function readBuildProducts(outputs: readonly BuiltOutput[]): Promise<BuildProduct[]> {
  const products: BuildProduct[] = [];
  const roots = outputs.map((o) => o.path);
  for (const output of outputs) {
    const file = join(output.path, 'nix-support', 'hydra-build-products');
    const stat = await lstat(file).catch(() => undefined);
    if (!stat?.isFile() || stat.size > MAX_PRODUCTS_FILE) continue;
    for (const line of (await readFile(file, 'utf8')).split('\n')) {
      if (products.length >= MAX_PRODUCTS) return products;
      const match = PRODUCT_LINE.exec(line.trim());
      if (!match) continue;
      const [, type = '', subtype = '', quoted = '', defaultPath] = match;
      const product = await describeProduct(roots, type, subtype, quoted.replace(/^"(.*)"$/, '$1'), defaultPath);
      if (product) products.push(product);
    }
  }
  return products;
}

/** A product whose path resolves inside one of `roots`; undefined for anything else. */
async function describeProduct(roots: string[], type: string, subtype: string, path: string, defaultPath: string | undefined): Promise<BuildProduct | undefined> {
  const real = await realpath(path).catch(() => undefined);
  // A symbolic link may not lead out of the output, nor may `..`.
  if (real === undefined || !roots.some((root) => real === root || real.startsWith(`${root}/`))) return undefined;
  const stat = await lstat(real);
  const product: BuildProduct = { type, subtype, path: real, name: basename(real) };
  if (stat.isFile()) {
    product.fileSize = stat.size;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(real)) hash.update(chunk as Buffer);
    product.sha256 = hash.digest('hex');
  } else if (!stat.isDirectory()) {
    return undefined;
  }
  if (defaultPath !== undefined && stat.isDirectory() && !defaultPath.split('/').includes('..')) product.defaultPath = defaultPath;
  return product;
}
