/**
 * `cache serve --store`: the test daemon's store served as a signed binary cache on a real
 * listener. Real Nix is the oracle: it substitutes from it into a fresh store with the public key
 * trusted and refuses without; `.ls` listings are compared with those `nix copy` writes; hostile
 * names answer 404 without reaching anything outside the store.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { startCacheServer, type CacheServer } from '../../api/cache-server.ts';
import { StoreCacheSource } from '../../cache/store-source.ts';
import { formatHash } from '../../daemon/core/hash.ts';
import { narInfoFingerprint, parseNarInfo } from '../../daemon/core/narinfo.ts';
import { parseSecretKey, signFingerprint, verifyFingerprint } from '../../daemon/core/signing.ts';
import { formatNarListing, listNar } from '../../daemon/nar/listing.ts';
import { DaemonPool } from '../../daemon/protocol/pool.ts';
import { generateKey } from '../executor/helpers.ts';
import { daemonSocket, dump, instantiate, nixCli, nonce, realise, scratchDir } from '../protocol/helpers.ts';

const hashPart = (path: string): string => path.slice('/nix/store/'.length, '/nix/store/'.length + 32);

/**
 * Runs a nix CLI against a fresh store under `root` (not the test daemon's) and reports the outcome;
 * asynchronously, since the server it fetches from runs in this process.
 */
async function inFreshStore(root: string, command: string, args: readonly string[]): Promise<{ status: number | undefined; stderr: string }> {
  const env = { ...process.env };
  delete env.NIX_REMOTE;
  const result = await execa(command, ['--store', root, ...args], { env, extendEnv: false, reject: false, timeout: 120_000 });
  return { status: result.exitCode, stderr: String(result.stderr) };
}

function substituteArgs(url: string, trustedKey: string): string[] {
  return ['--option', 'substituters', url, '--option', 'trusted-public-keys', trustedKey, '--option', 'require-sigs', 'true'];
}

describe('a Nix store served as a binary cache', () => {
  const key = generateKey(`store-serve-${nonce()}`);
  const other = generateKey(`other-${nonce()}`);
  const secretKey = parseSecretKey(readFileSync(key.secretKeyFile, 'utf8'));
  const n = nonce();
  let dep: string;
  let top: string;
  let topDrv: string;
  let pool: DaemonPool;
  const servers: CacheServer[] = [];
  let plain: string;
  let zstd: string;

  before(async () => {
    const drvs = instantiate(
      `rec {
        dep = sh "store-serve-dep-${n}" "echo dep-${n} > $out";
        top = sh "store-serve-top-${n}" ''
          PATH=/usr/bin:/bin
          echo building-top-${n} >&2
          mkdir -p $out/bin $out/share
          echo \${dep} > $out/share/dep
          printf '#!/bin/sh\\necho hi\\n' > $out/bin/hello
          chmod +x $out/bin/hello
          ln -s share/dep $out/link
        '';
      }`,
      ['dep', 'top'],
    );
    topDrv = drvs.top!;
    [dep] = realise(drvs.dep!) as [string];
    [top] = realise(topDrv) as [string];
    pool = new DaemonPool({ socketPath: daemonSocket() });
    for (const compression of ['none', 'zstd'] as const) {
      const store = new StoreCacheSource({ pool, secretKey, compression });
      await store.check(2);
      servers.push(await startCacheServer({ store, host: '127.0.0.1', port: 0 }));
    }
    plain = `http://127.0.0.1:${servers[0]!.port}`;
    zstd = `http://127.0.0.1:${servers[1]!.port}`;
  });

  after(async () => {
    for (const server of servers) await server.close();
    await pool.close();
  });

  it('answers nix-cache-info and a narinfo signed with its key, matching the store', async () => {
    const info = await fetch(`${plain}/nix-cache-info`);
    assert.equal(info.status, 200);
    assert.match(await info.text(), /^StoreDir: \/nix\/store\nWantMassQuery: 1\nPriority: \d+\n$/);
    const response = await fetch(`${plain}/${hashPart(top)}.narinfo`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/x-nix-narinfo');
    const narInfo = parseNarInfo(await response.text());
    assert.equal(narInfo.storePath, top);
    assert.deepEqual(narInfo.references, [dep]);
    assert.equal(formatHash(narInfo.narHash, 'base32'), nixCli('nix-store', ['--query', '--hash', top]).toString().trim());
    assert.equal(narInfo.deriver, topDrv);
    assert.ok(narInfo.sigs.some((sig) => verifyFingerprint(narInfoFingerprint(narInfo), sig, [key.publicKey])));
    // The native signer gives the very signature of the reference one (Ed25519 is deterministic).
    assert.ok(narInfo.sigs.includes(signFingerprint(secretKey, narInfoFingerprint(narInfo))));
    const nar = Buffer.from(await (await fetch(`${plain}/${narInfo.url}`)).arrayBuffer());
    assert.deepEqual(nar, dump(top));
  });

  for (const [label, url] of [
    ['uncompressed', () => plain],
    ['zstd', () => zstd],
  ] as const) {
    it(`nix-store --realise substitutes a closure from it (${label}) with the key trusted`, async () => {
      const root = join(scratchDir('harmonia-store-serve-'), 'root');
      const result = await inFreshStore(root, 'nix-store', ['--realise', top, ...substituteArgs(url(), key.publicKeyText)]);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(readFileSync(join(root, top, 'share', 'dep'), 'utf8'), `${dep}\n`);
      assert.equal(readFileSync(join(root, dep), 'utf8'), `dep-${n}\n`);
      const verify = await inFreshStore(root, 'nix-store', ['--verify-path', top, dep]);
      assert.equal(verify.status, 0, verify.stderr);
    });
  }

  it('is refused by Nix when its key is not trusted', async () => {
    const root = join(scratchDir('harmonia-store-serve-'), 'root');
    const copied = await inFreshStore(root, 'nix', ['--extra-experimental-features', 'nix-command', 'copy', '--from', plain, top, ...substituteArgs(plain, other.publicKeyText)]);
    assert.notEqual(copied.status, 0);
    assert.match(copied.stderr, /lacks a valid signature|lacks a signature by a trusted key/);
    const realised = await inFreshStore(root, 'nix-store', ['--realise', top, ...substituteArgs(plain, other.publicKeyText)]);
    assert.notEqual(realised.status, 0);
  });

  it('serves .ls listings identical to those nix copy writes and to our NAR listing', async () => {
    const dir = join(scratchDir('harmonia-ls-'), 'cache');
    nixCli('nix', ['--extra-experimental-features', 'nix-command', 'copy', '--to', `file://${dir}?compression=none&write-nar-listing=true`, top]);
    const expected = readFileSync(join(dir, `${hashPart(top)}.ls`));
    const response = await fetch(`${plain}/${hashPart(top)}.ls`);
    assert.equal(response.status, 200);
    const served = Buffer.from(await response.arrayBuffer());
    assert.deepEqual(JSON.parse(served.toString()), JSON.parse(expected.toString()));
    assert.deepEqual(served, formatNarListing(await listNar(Readable.from([dump(top)]))));
  });

  it('serves the build log of a derivation it built', async () => {
    const response = await fetch(`${plain}/log/${topDrv.slice('/nix/store/'.length)}`);
    assert.equal(response.status, 200);
    assert.match(await response.text(), new RegExp(`building-top-${n}`));
  });

  it('answers hostile and unknown names with 404, and HEAD of a NAR without sending it', async () => {
    const narUrl = /^URL: (.*)$/m.exec(await (await fetch(`${plain}/${hashPart(top)}.narinfo`)).text())![1]!;
    const head = await fetch(`${plain}/${narUrl}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(dump(top).length));
    const wrongHash = narUrl.replace(/-[0-9a-z]{52}\.nar$/, `-${'1'.repeat(52)}.nar`);
    const unknown = '0'.repeat(32);
    for (const path of [
      `/${unknown}.narinfo`,
      `/${unknown}.ls`,
      '/..%2F..%2Fetc%2Fpasswd.narinfo',
      `/${hashPart(top).toUpperCase()}.narinfo`,
      `/${hashPart(top)}e.narinfo`,
      `/${wrongHash}`,
      `/${narUrl}.zst`,
      '/nar/..%2F..%2Fetc%2Fpasswd',
      `/nar/${unknown}-${'1'.repeat(52)}.nar`,
      '/log/..%2F..%2F..%2Fetc%2Fpasswd',
      `/log/${unknown}-x.drv`,
      `/log/${hashPart(top)}-not-a-drv`,
    ]) {
      const response = await fetch(`${plain}${path}`);
      assert.equal(response.status, 404, `${path} answered ${response.status}`);
      await response.arrayBuffer();
    }
  });

  it('a client that hangs up mid-NAR leaves the server answering', async () => {
    const narUrl = /^URL: (.*)$/m.exec(await (await fetch(`${plain}/${hashPart(top)}.narinfo`)).text())![1]!;
    for (let i = 0; i < 20; i++) {
      const controller = new AbortController();
      const response = await fetch(`${plain}/${narUrl}`, { signal: controller.signal });
      controller.abort();
      await response.arrayBuffer().catch(() => undefined);
    }
    assert.equal((await fetch(`${plain}/${hashPart(dep)}.narinfo`)).status, 200);
  });
});
