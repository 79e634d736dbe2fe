/**
 * Narinfo and signatures against real Nix: caches written by `nix copy` with Nix's and our
 * keys, narinfo tolerance as `nix path-info` sees it, and substitution by `nix-store -r` of
 * narinfos we signed.
 */
import { cpSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import fc from 'fast-check';
import { NarInfoError } from '../../daemon/core/errors.ts';
import { hashBytes, parseHash } from '../../daemon/core/hash.ts';
import { narInfoFingerprint, parseNarInfo, printNarInfo } from '../../daemon/core/narinfo.ts';
import type { NarInfo } from '../../daemon/core/narinfo.ts';
import { formatKey, generateKeyPair, parsePublicKey, publicKeyOf, parseSecretKey, signFingerprint, verifyFingerprint } from '../../daemon/core/signing.ts';
import { NIX_COMMAND, lines, nix, nixAccepts, nonce, tempDir } from './nix-oracle.ts';

const CLI = fileURLToPath(new URL('../../bin/harmonia-ci.mjs', import.meta.url));

function readNarInfos(cache: string): Map<string, string> {
  return new Map(readdirSync(cache).filter((f) => f.endsWith('.narinfo')).map((f) => [f, readFileSync(join(cache, f), 'utf8')]));
}

describe('narinfo and signatures against nix copy', () => {
  const tmp = tempDir('narinfo');
  const token = nonce();
  const nixSecret = join(tmp.dir, 'nix.sec');
  const nixPublic = join(tmp.dir, 'nix.pub');
  const nixCache = join(tmp.dir, 'nix-cache');
  let top: string;
  let closure: string[];

  before(async () => {
    await nix('nix-store', ['--generate-binary-cache-key', `nixkey-${token}`, nixSecret, nixPublic]);
    const expr = `let a = builtins.toFile "a-${token}" "a"; b = builtins.toFile "b-${token}" "b refers to \${a}"; in
      derivation { name = "top-${token}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo \${b} > $out" ]; }`;
    top = (await nix('nix-build', ['--no-out-link', '-E', expr])).trim();
    closure = lines(await nix('nix-store', ['--query', '--requisites', top]));
    await nix('nix', [...NIX_COMMAND, 'copy', '--to', `file://${nixCache}?secret-key=${nixSecret}`, top]);
  });
  after(() => tmp.cleanup());

  test('every narinfo Nix wrote parses, prints back byte-exact and matches nix path-info', async () => {
    const infos = readNarInfos(nixCache);
    assert.equal(infos.size, closure.length);
    const pathInfo = JSON.parse(await nix('nix', [...NIX_COMMAND, 'path-info', '--json', '--recursive', top])) as Record<string, unknown>[];
    for (const text of infos.values()) {
      const info = parseNarInfo(text);
      assert.equal(printNarInfo(info), text);
      const local = pathInfo.find((p) => p.path === info.storePath)!;
      assert.ok(local, `${info.storePath} is in the closure`);
      assert.deepEqual(info.narHash, parseHash(local.narHash as string));
      assert.equal(info.narSize, local.narSize);
      assert.deepEqual(info.references, local.references);
      assert.equal(info.deriver, local.deriver);
      assert.equal(info.ca, local.ca);
      assert.deepEqual(hashBytes('sha256', readFileSync(join(nixCache, info.url))), info.fileHash);
    }
  });

  test("Nix's signatures verify with our code, and we sign identically with Nix's key", () => {
    const publicKey = parsePublicKey(readFileSync(nixPublic, 'utf8'));
    const secretKey = parseSecretKey(readFileSync(nixSecret, 'utf8'));
    assert.deepEqual(publicKeyOf(secretKey), publicKey);
    assert.equal(formatKey(secretKey), readFileSync(nixSecret, 'utf8'));
    for (const text of readNarInfos(nixCache).values()) {
      const info = parseNarInfo(text);
      const fingerprint = narInfoFingerprint(info);
      assert.equal(info.sigs.length, 1);
      assert.equal(verifyFingerprint(fingerprint, info.sigs[0]!, [publicKey]), true);
      assert.equal(signFingerprint(secretKey, fingerprint), info.sigs[0]);
      const tampered = narInfoFingerprint({ ...info, narSize: info.narSize + 1 });
      assert.equal(verifyFingerprint(tampered, info.sigs[0]!, [publicKey]), false);
      assert.equal(verifyFingerprint(fingerprint, info.sigs[0]!, [{ ...publicKey, name: 'other' }]), false);
    }
  });

  test('keys generate writes files Nix signs with, and we verify what Nix signed with them', async () => {
    const secret = join(tmp.dir, 'ours.sec');
    const publicFile = join(tmp.dir, 'ours.pub');
    const run = await execa('node', [CLI, 'keys', 'generate', `ours-${token}`, '--secret', secret, '--public', publicFile]);
    assert.equal(run.stdout.trim(), readFileSync(publicFile, 'utf8'));
    assert.equal(statSync(secret).mode & 0o777, 0o600);
    const again = await execa('node', [CLI, 'keys', 'generate', `ours-${token}`, '--secret', secret, '--public', join(tmp.dir, 'x.pub')], { reject: false });
    assert.equal(again.exitCode, 1);
    assert.match(again.stderr, /already exists: refusing to overwrite/);

    const cache = join(tmp.dir, 'our-key-cache');
    await nix('nix', [...NIX_COMMAND, 'copy', '--to', `file://${cache}?secret-key=${secret}`, top]);
    const publicKey = parsePublicKey(readFileSync(publicFile, 'utf8'));
    for (const text of readNarInfos(cache).values()) {
      const info = parseNarInfo(text);
      assert.equal(verifyFingerprint(narInfoFingerprint(info), info.sigs[0]!, [publicKey]), true, info.storePath);
    }
  });

  test('a real Nix substitutes from narinfos we signed, and refuses them under another key', async () => {
    const cache = join(tmp.dir, 'resigned-cache');
    cpSync(nixCache, cache, { recursive: true });
    const { secretKey, publicKey } = generateKeyPair(`resigner-${token}`);
    for (const [file, text] of readNarInfos(cache)) {
      const info = parseNarInfo(text);
      writeFileSync(join(cache, file), printNarInfo({ ...info, sigs: [signFingerprint(secretKey, narInfoFingerprint(info))] }));
    }
    const substitute = (store: string, trusted: string) =>
      nixAccepts('nix-store', ['--store', join(tmp.dir, store), '--realise', top, '--option', 'substituters', `file://${cache}`, '--option', 'trusted-public-keys', trusted]);
    const accepted = await substitute('fresh-ours', formatKey(publicKey));
    assert.equal(accepted.ok, true, accepted.stderr);
    assert.equal(readFileSync(join(tmp.dir, 'fresh-ours', top), 'utf8'), readFileSync(top, 'utf8'));
    const refused = await substitute('fresh-nix', readFileSync(nixPublic, 'utf8'));
    assert.equal(refused.ok, false);
    assert.match(refused.stderr, /not signed by any of the keys/);
  });

  test('tolerance: unknown keys and missing optional fields are fine for Nix and us; a missing NarHash is not', async () => {
    const [file, text] = [...readNarInfos(nixCache)].find(([, t]) => t.includes(`StorePath: ${top}\n`))!;
    const trimmed = `Unknown-Key: whatever\n${text.replace(/^(FileHash|FileSize|Compression|Deriver|System): .*\n/gm, '')}X-Extra: 1\n`;
    const expectations: [string, string, boolean][] = [
      ['tolerant-cache', trimmed, true],
      ['corrupt-cache', trimmed.replace(/^NarHash: .*\n/m, ''), false],
    ];
    for (const [dir, body, ok] of expectations) {
      const cache = join(tmp.dir, dir);
      cpSync(nixCache, cache, { recursive: true });
      writeFileSync(join(cache, file), body);
      const verdict = await nixAccepts('nix', [...NIX_COMMAND, 'path-info', '--json', '--store', `file://${cache}`, top]);
      assert.equal(verdict.ok, ok, verdict.stderr);
      if (!ok) {
        assert.throws(() => parseNarInfo(body), NarInfoError);
        continue;
      }
      const info = parseNarInfo(body);
      const seen = (JSON.parse(verdict.stdout) as Record<string, unknown>[])[0]!;
      assert.equal(info.compression, 'bzip2');
      assert.equal(info.fileHash, undefined);
      assert.equal(info.deriver, undefined);
      assert.deepEqual(info.narHash, parseHash(seen.narHash as string));
      assert.deepEqual(info.references, seen.references);
      assert.deepEqual(info.sigs, seen.signatures);
    }
  });
});

describe('narinfo print → parse', () => {
  const storePath = fc.stringMatching(/^[0-9a-df-np-sv-z]{32}-[a-zA-Z0-9+._?=-]{1,20}$/).map((b) => `/nix/store/${b}`);
  const sha256 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((digest) => ({ algorithm: 'sha256' as const, digest }));
  const narInfo: fc.Arbitrary<NarInfo> = fc
    .record(
      {
        storePath,
        url: fc.stringMatching(/^nar\/[a-z0-9]{1,52}\.nar(\.xz)?$/),
        compression: fc.constantFrom('xz', 'none', 'zstd', 'bzip2'),
        fileHash: sha256,
        fileSize: fc.nat(),
        narHash: sha256,
        narSize: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        references: fc.uniqueArray(storePath, { maxLength: 4 }).map((refs) => refs.sort((a, b) => (a.slice(11) < b.slice(11) ? -1 : 1))),
        deriver: storePath.map((p) => `${p}.drv`),
        system: fc.constantFrom('x86_64-linux', 'aarch64-linux'),
        sigs: fc.uniqueArray(fc.stringMatching(/^[a-z.-]{1,10}-1:[A-Za-z0-9+/]{86}==$/), { maxLength: 3 }).map((s) => s.sort()),
        ca: fc.constantFrom('text:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s', 'fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s'),
      },
      { requiredKeys: ['storePath', 'url', 'compression', 'narHash', 'narSize', 'references', 'sigs'] },
    )
    .map((r) => ({ ...r }));
  test('parse(print(info)) equals info', () => {
    fc.assert(fc.property(narInfo, (info) => assert.deepEqual(parseNarInfo(printNarInfo(info)), info)), { numRuns: 300 });
  });
});
