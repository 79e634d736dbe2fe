/**
 * The signer's check that an evaluator's `.drv` files and sources are what their paths address
 * (activities/signer/content-address.ts), against paths the real Nix made: `nix-instantiate`
 * (.drv files, text paths with references), `builtins.toFile`, `nix-store --add` (recursive
 * sources) and `--add-fixed` (flat). The CA it derives must be the one Nix records; a path
 * claimed for other contents, or with other references, is refused.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { execa } from 'execa';
import { contentAddressOf } from '../../activities/signer/content-address.ts';
import { inspectUpload } from '../../activities/signer/inspect.ts';
import { zstdCompress } from '../../daemon/executor/zstd.ts';
import { lines, nix, NIX_COMMAND, nixString, nonce, tempDir } from './nix-oracle.ts';

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** What the signer reads back from an upload of this NAR. */
const readNarAddress = (nar: AsyncIterable<Uint8Array>) => inspectUpload(zstdCompress(nar), { candidates: [], maxNarSize: Infinity });

async function narOf(path: string): Promise<Buffer> {
  return (await execa('nix-store', ['--dump', path], { encoding: 'buffer' })).stdout as Buffer;
}

async function nixCa(path: string): Promise<string | undefined> {
  const [info] = JSON.parse(await nix('nix', [...NIX_COMMAND, 'path-info', '--json', path])) as Array<{ ca?: string }>;
  return info?.ca;
}

async function check(path: string, references?: string[]): Promise<string> {
  const nar = await narOf(path);
  const refs = references ?? lines(await nix('nix-store', ['--query', '--references', path]));
  return contentAddressOf(path, await readNarAddress(once(nar)), refs);
}

describe('content addresses of .drv files and sources', () => {
  const tmp = tempDir('hci-ca-');
  after(() => tmp.cleanup());
  const id = nonce();
  const sourceDir = join(tmp.dir, `src-${id}`);
  mkdirSync(sourceDir);
  writeFileSync(join(sourceDir, 'a'), `source ${id}\n`);
  writeFileSync(join(tmp.dir, 'flat'), `flat ${id}\n`);
  const expression = `derivation { name = "ca-${id}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo \${builtins.toFile "note-${id}" "hello"} \${builtins.path { path = ${nixString(sourceDir)}; name = "src-${id}"; }}" ]; }`;

  it('derives the CA Nix records for a .drv, a toFile text, a source and a flat fixed-output path', async () => {
    const drv = lines(await nix('nix-instantiate', ['-E', expression]))[0]!;
    const references = lines(await nix('nix-store', ['--query', '--references', drv]));
    const text = references.find((path) => path.endsWith(`note-${id}`))!;
    const source = references.find((path) => path.endsWith(`src-${id}`))!;
    const flat = lines(await nix('nix-store', ['--add-fixed', 'sha256', join(tmp.dir, 'flat')]))[0]!;
    // What each CA must be, from nix-hash; where Nix records a CA itself (2.8 does for some), that too.
    const flatHash = async (path: string) => (await nix('nix-hash', ['--type', 'sha256', '--flat', '--base32', path])).trim();
    const narHash = async (path: string) => (await nix('nix-hash', ['--type', 'sha256', '--base32', path])).trim();
    const expected: Array<[string, string]> = [
      [drv, `text:sha256:${await flatHash(drv)}`],
      [text, `text:sha256:${await flatHash(text)}`],
      [source, `fixed:r:sha256:${await narHash(source)}`],
      [flat, `fixed:sha256:${await flatHash(flat)}`],
    ];
    for (const [path, ca] of expected) {
      const derived = await check(path);
      assert.equal(derived, ca, path);
      const recorded = await nixCa(path);
      if (recorded) assert.equal(derived, recorded, `${path}: Nix records ${recorded}`);
    }
  });

  it('refuses contents claimed under another path, and other references', async () => {
    const drv = lines(await nix('nix-instantiate', ['-E', expression]))[0]!;
    const references = lines(await nix('nix-store', ['--query', '--references', drv]));
    const address = await readNarAddress(once(await narOf(drv)));
    const other = lines(await nix('nix-instantiate', ['-E', expression.replace(`ca-${id}`, `cb-${id}`)]))[0]!;
    assert.throws(() => contentAddressOf(other, address, references), /is not what its contents address/);
    assert.throws(() => contentAddressOf(drv, address, references.slice(1)), /is not what its contents address/);
  });
});
