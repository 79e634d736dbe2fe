/**
 * zstd through the `zstd` command: streaming both ways, clear errors for corrupt input and a
 * missing program, and the builder's reading of zstd NARs — ones the real `nix copy` wrote with
 * `compression=zstd`, and ones our signer published — hashing to the NarHash their narinfo states.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { createUploadActivities, prepareStaging } from '../../activities/builder/upload.ts';
import { backendBinaryCache } from '../../cache/backend-reader.ts';
import { LocalDirectoryBackend } from '../../cache/local.ts';
import { hashEquals } from '../../daemon/core/hash.ts';
import { formatKey, generateKeyPair } from '../../daemon/core/signing.ts';
import { narStream, openBinaryCache, type BinaryCache } from '../../daemon/executor/cache-client.ts';
import { ZstdError } from '../../daemon/executor/errors.ts';
import { declaredContentSize, IN_PROCESS_LIMIT, zstdCompress, zstdDecompress } from '../../daemon/executor/zstd.ts';
import { hashStream } from '../../daemon/nar/index.ts';
import { buildOutputs, NIX_COMMAND, NIX_OPTIONS, runNix, signerOnTestStore, tempDir } from './helpers.ts';

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function* chunked(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

/** The NAR of `path` as read from `cache` hashes to what its narinfo says. */
async function assertReadsBack(cache: BinaryCache, path: string): Promise<void> {
  const info = (await cache.narInfo(path))!;
  assert.equal(info.compression, 'zstd');
  const digest = await hashStream(narStream(cache, info));
  assert.equal(digest.narSize, info.narSize);
  assert.ok(hashEquals(digest.hash, info.narHash), `the NAR of ${path} read back hashes differently`);
}

describe('zstd', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    tmp = await tempDir('zstd');
  });
  after(async () => tmp?.remove());

  it('streams data both ways, interoperating with the zstd tool', async () => {
    const data = Buffer.concat([randomBytes(3 << 20), Buffer.from('text '.repeat(200_000))]);
    const compressed = await collect(zstdCompress(chunked(data, 65_536)));
    assert.ok(compressed.length < data.length);
    await writeFile(join(tmp.dir, 'data.zst'), compressed);
    const viaTool = await execa('zstd', ['-d', '-c', join(tmp.dir, 'data.zst')], { encoding: 'buffer' });
    assert.deepEqual(Buffer.from(viaTool.stdout as Uint8Array), data);
    assert.deepEqual(await collect(zstdDecompress(chunked(compressed, 1000))), data);
  });

  it('compresses small inputs in-process into frames the zstd tool reads back', async () => {
    const saved = process.env.HARMONIA_CI_ZSTD;
    // No zstd command at all: small inputs must not need one.
    process.env.HARMONIA_CI_ZSTD = join(tmp.dir, 'no-such-zstd');
    const cases = [Buffer.alloc(0), Buffer.from('x'), Buffer.from('line\n'.repeat(5000)), randomBytes(IN_PROCESS_LIMIT)];
    const outputs: Buffer[] = [];
    try {
      for (const data of cases) outputs.push(await collect(zstdCompress(chunked(data, 4096))));
    } finally {
      if (saved === undefined) delete process.env.HARMONIA_CI_ZSTD;
      else process.env.HARMONIA_CI_ZSTD = saved;
    }
    for (const [i, data] of cases.entries()) {
      await writeFile(join(tmp.dir, `small-${i}.zst`), outputs[i]!);
      const viaTool = await execa('zstd', ['-d', '-c', join(tmp.dir, `small-${i}.zst`)], { encoding: 'buffer', stripFinalNewline: false });
      assert.deepEqual(Buffer.from(viaTool.stdout as Uint8Array), data, `case ${i} (${data.length} bytes) reads back`);
    }
  });

  it('decompresses small frames that declare their size in-process, and leaves the rest to the zstd tool', async () => {
    const cases = [Buffer.alloc(0), Buffer.from('x'), Buffer.from('line\n'.repeat(5000)), randomBytes(IN_PROCESS_LIMIT)];
    const compressed = await Promise.all(cases.map((data) => collect(zstdCompress(chunked(data, 4096)))));
    await writeFile(join(tmp.dir, 'by-tool'), cases[2]!);
    const byTool = Buffer.from((await execa('zstd', ['-c', '-q', join(tmp.dir, 'by-tool')], { encoding: 'buffer' })).stdout as Uint8Array);
    assert.equal(declaredContentSize(byTool), cases[2]!.length, 'the zstd tool declares the size of a file it compresses');
    // Two frames: the first declares only its own size, so the in-process decoder refuses and the tool decides.
    const twoFrames = Buffer.concat([compressed[1]!, compressed[2]!]);
    const saved = process.env.HARMONIA_CI_ZSTD;
    process.env.HARMONIA_CI_ZSTD = join(tmp.dir, 'no-such-zstd');
    try {
      for (const [i, data] of cases.entries()) {
        assert.deepEqual(await collect(zstdDecompress(chunked(compressed[i]!, 1000))), data, `case ${i} (${data.length} bytes) without the zstd command`);
      }
      assert.deepEqual(await collect(zstdDecompress(chunked(byTool, 1000))), cases[2]);
      await assert.rejects(collect(zstdDecompress(chunked(twoFrames, 1000))), /not installed/);
    } finally {
      if (saved === undefined) delete process.env.HARMONIA_CI_ZSTD;
      else process.env.HARMONIA_CI_ZSTD = saved;
    }
    assert.deepEqual(await collect(zstdDecompress(chunked(twoFrames, 1000))), Buffer.concat([cases[1]!, cases[2]!]));
  });

  it('fails clearly on corrupt input and on a missing zstd, and stops the process when the reader stops', async () => {
    const compressed = await collect(zstdCompress(chunked(randomBytes(100_000), 10_000)));
    await assert.rejects(collect(zstdDecompress(chunked(compressed.subarray(0, compressed.length - 20), 4096))), ZstdError);
    await assert.rejects(collect(zstdDecompress(chunked(Buffer.from('not zstd at all'), 100))), ZstdError);
    const saved = process.env.HARMONIA_CI_ZSTD;
    process.env.HARMONIA_CI_ZSTD = join(tmp.dir, 'no-such-zstd');
    try {
      await assert.rejects(collect(zstdCompress(chunked(randomBytes(IN_PROCESS_LIMIT + 1), 65_536))), /not installed; install the Debian package zstd/);
    } finally {
      if (saved === undefined) delete process.env.HARMONIA_CI_ZSTD;
      else process.env.HARMONIA_CI_ZSTD = saved;
    }
    // A reader that stops early: the generator's cleanup kills zstd and returns.
    for await (const chunk of zstdDecompress(chunked(compressed, 1000))) {
      assert.ok(chunk.length > 0);
      break;
    }
  });

  it('lets a builder read NARs that `nix copy --to …?compression=zstd` wrote and that our signer published', async () => {
    const built = await buildOutputs(tmp.dir);
    const key = generateKeyPair('zstd-test-1');
    await writeFile(join(tmp.dir, 'secret'), formatKey(key.secretKey));
    const nixCache = join(tmp.dir, 'nix-cache');
    const copied = await runNix('nix', [...NIX_COMMAND, 'copy', ...NIX_OPTIONS, '--to', `file://${nixCache}?compression=zstd&secret-key=${join(tmp.dir, 'secret')}`, built.top.path]);
    assert.ok(copied.ok, copied.stderr);
    await assertReadsBack(openBinaryCache(pathToFileURL(nixCache).href), built.top.path);

    const ours = new LocalDirectoryBackend(join(tmp.dir, 'our-cache'));
    const signer = signerOnTestStore(ours, key.secretKey);
    const stagingDir = join(tmp.dir, 'staging');
    await prepareStaging(stagingDir);
    const host = createUploadActivities({ stagingDir });
    const staged = await host.stageOutputs({ drvPath: built.topDrv, system: 'x86_64-linux', outputs: [built.top] });
    await host.uploadOutputs({ drvPath: built.topDrv, plan: await signer.prepareUpload(staged) });
    await signer.publish(staged);
    await signer.pool.close();
    await assertReadsBack(backendBinaryCache(ours), built.top.path);
  });
});
