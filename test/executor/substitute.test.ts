import assert from 'node:assert/strict';
import { chmodSync, createReadStream, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseHash } from '../../daemon/core/hash.ts';
import { openBinaryCache } from '../../daemon/executor/cache-client.ts';
import { SubstitutionError, UnsupportedCompressionError } from '../../daemon/executor/errors.ts';
import { instantiate, nixCli, nixCliResult, nonce, realise } from '../protocol/helpers.ts';
import { generateKey, nixCopyToCache, requestFor, testExecutor } from './helpers.ts';

function hashOf(path: string): string {
  return nixCli('nix-store', ['--query', '--hash', path]).toString().trim();
}

function isValid(path: string): boolean {
  return nixCliResult('nix-store', ['--check-validity', path]).status === 0;
}

function deleteLocally(...paths: string[]): void {
  nixCli('nix-store', ['--delete', ...paths]);
  for (const path of paths) assert.equal(isValid(path), false, `${path} deleted`);
}

/** dep ← mid ← top: mid's output references dep's; top reads mid. */
function chain() {
  const n = nonce();
  const drvs = instantiate(
    `rec {
      dep = sh "sub-dep-${n}" "echo dep-${n} > $out";
      mid = sh "sub-mid-${n}" "echo \${dep} > $out";
      top = sh "sub-top-${n}" "read x < \${mid}; echo $x > $out";
    }`,
    ['dep', 'mid', 'top'],
  );
  const [dep] = realise(drvs.dep!);
  const [mid] = realise(drvs.mid!);
  return { drvs, dep: dep!, mid: mid! };
}

test('missing inputs and their missing references are substituted from a nix copy cache, references first', async () => {
  const key = generateKey();
  const { drvs, dep, mid } = chain();
  const cache = nixCopyToCache([mid], { secretKeyFile: key.secretKeyFile });
  const depHash = hashOf(dep);
  deleteLocally(mid, dep);
  const { executor, close } = await testExecutor({ cache: openBinaryCache(cache.url), trustedKeys: [key.publicKey] });
  try {
    const outcome = await executor.build(requestFor(drvs.top!));
    assert.equal(outcome.kind, 'succeeded');
    assert.deepEqual(outcome.inputs.substituted, [dep, mid]);
    assert.equal(nixCliResult('nix-store', ['--verify-path', dep, mid]).status, 0);
    assert.equal(hashOf(dep), depHash);
    assert.equal(nixCli('nix-store', ['--query', '--references', mid]).toString().trim(), dep);
  } finally {
    await close();
  }
});

test('what our cache lacks is substituted from the upstream caches in order, each narinfo checked with that cache\'s own keys', async () => {
  const ours = generateKey();
  const upstreamKey = generateKey();
  const { drvs, dep, mid } = chain();
  const depHash = hashOf(dep);
  // Our cache holds dep only; mid is upstream. A first upstream signs with our key, which is not its own.
  const ourCache = nixCopyToCache([dep], { secretKeyFile: ours.secretKeyFile });
  const misSigned = nixCopyToCache([mid], { secretKeyFile: ours.secretKeyFile });
  const upstream = nixCopyToCache([mid], { secretKeyFile: upstreamKey.secretKeyFile });
  // Were dep taken from the upstream cache, its import would fail: our cache has priority.
  const depInfo = readFileSync(join(upstream.dir, `${dep.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`), 'utf8');
  const depNar = join(upstream.dir, /^URL: (.*)$/m.exec(depInfo)![1]!);
  const nar = readFileSync(depNar);
  nar[nar.indexOf('dep-')] = 'D'.charCodeAt(0);
  writeFileSync(depNar, nar);
  deleteLocally(mid, dep);
  const { executor, close } = await testExecutor({
    cache: openBinaryCache(ourCache.url),
    trustedKeys: [ours.publicKey],
    upstream: [
      { cache: openBinaryCache(misSigned.url), trustedKeys: [upstreamKey.publicKey] },
      { cache: openBinaryCache(upstream.url), trustedKeys: [upstreamKey.publicKey] },
    ],
  });
  try {
    const outcome = await executor.build(requestFor(drvs.top!));
    assert.equal(outcome.kind, 'succeeded');
    assert.deepEqual(outcome.inputs.substituted, [dep, mid]);
    assert.equal(nixCliResult('nix-store', ['--verify-path', dep, mid]).status, 0);
    assert.equal(hashOf(dep), depHash);
  } finally {
    await close();
  }
});

test('an upstream narinfo signed only by a key trusted for our cache is refused: keys count for their own cache', async () => {
  const ours = generateKey();
  const upstreamKey = generateKey();
  const { drvs, dep, mid } = chain();
  const ourCache = nixCopyToCache([dep], { secretKeyFile: ours.secretKeyFile });
  const misSigned = nixCopyToCache([mid], { secretKeyFile: ours.secretKeyFile });
  deleteLocally(mid, dep);
  const { executor, close } = await testExecutor({
    cache: openBinaryCache(ourCache.url),
    trustedKeys: [ours.publicKey],
    upstream: [{ cache: openBinaryCache(misSigned.url), trustedKeys: [upstreamKey.publicKey] }],
  });
  try {
    await assert.rejects(executor.build(requestFor(drvs.top!)), (error: unknown) => {
      assert.ok(error instanceof SubstitutionError);
      assert.ok(error.message.includes(mid) && error.message.includes(misSigned.url) && error.message.includes(ours.publicKey.name), error.message);
      return true;
    });
    assert.equal(isValid(mid), false);
  } finally {
    await close();
  }
});

test('a narinfo signed by an untrusted key is refused and nothing is imported', async () => {
  const signer = generateKey();
  const other = generateKey();
  const { drvs, dep, mid } = chain();
  const cache = nixCopyToCache([mid], { secretKeyFile: signer.secretKeyFile });
  deleteLocally(mid, dep);
  const { executor, close } = await testExecutor({ cache: openBinaryCache(cache.url), trustedKeys: [other.publicKey] });
  try {
    await assert.rejects(executor.build(requestFor(drvs.top!)), (error: unknown) => {
      assert.ok(error instanceof SubstitutionError);
      assert.ok(error.message.includes(signer.publicKey.name) && error.message.includes(other.publicKey.name), error.message);
      return true;
    });
    assert.equal(isValid(mid), false);
    assert.equal(isValid(dep), false);
  } finally {
    await close();
  }
});

test('a tampered NAR is detected by its hash and never becomes valid', async () => {
  const key = generateKey();
  const { drvs, dep, mid } = chain();
  const cache = nixCopyToCache([dep], { secretKeyFile: key.secretKeyFile });
  const narDir = join(cache.dir, 'nar');
  const [narFile] = readdirSync(narDir);
  const nar = readFileSync(join(narDir, narFile!));
  const at = nar.indexOf(`dep-`);
  nar[at] = 'D'.charCodeAt(0);
  writeFileSync(join(narDir, narFile!), nar);
  deleteLocally(mid, dep);
  const { executor, close } = await testExecutor({ cache: openBinaryCache(cache.url), trustedKeys: [key.publicKey] });
  try {
    await assert.rejects(executor.build(requestFor(drvs.mid!)), (error: unknown) => {
      assert.ok(error instanceof SubstitutionError);
      assert.match(error.message, /tampered/);
      return true;
    });
    assert.equal(isValid(dep), false);
  } finally {
    await close();
  }
});

test('Frankenbuild: a local input whose hash differs from the canonical one is deleted and substituted again', async () => {
  const key = generateKey();
  const n = nonce();
  // `$$` differs between builds: the output is not reproducible, as a real Frankenbuild input would not be.
  const drvs = instantiate(
    `rec { flaky = sh "franken-${n}" "echo $$ > $out"; user = sh "franken-user-${n}" "read x < \${flaky}; echo $x > $out"; }`,
    ['flaky', 'user'],
  );
  const [flaky] = realise(drvs.flaky!);
  const canonical = hashOf(flaky!);
  const canonicalContents = readFileSync(flaky!, 'utf8');
  const cache = nixCopyToCache([flaky!], { secretKeyFile: key.secretKeyFile });
  for (let attempt = 0; hashOf(flaky!) === canonical && attempt < 5; attempt++) {
    deleteLocally(flaky!);
    realise(drvs.flaky!);
  }
  assert.notEqual(hashOf(flaky!), canonical, 'the local rebuild differs');

  const { executor, close } = await testExecutor({ cache: openBinaryCache(cache.url), trustedKeys: [key.publicKey] });
  try {
    const outcome = await executor.build(requestFor(drvs.user!, { canonicalNarHashes: new Map([[flaky!, parseHash(canonical)]]) }));
    assert.equal(outcome.kind, 'succeeded');
    assert.deepEqual(outcome.inputs.replaced, [flaky]);
    assert.deepEqual(outcome.inputs.substituted, [flaky]);
    assert.equal(hashOf(flaky!), canonical);
    assert.equal(readFileSync(outcome.kind === 'succeeded' ? outcome.outputs[0]!.path : '', 'utf8'), canonicalContents);
  } finally {
    await close();
  }
});

test('an input changed in place (its registration intact) is caught only by hashing its contents, and replaced', async () => {
  const key = generateKey();
  const n = nonce();
  const drvs = instantiate(
    `rec { dep = sh "inplace-${n}" "echo original > $out"; trusting = sh "inplace-a-${n}" "read x < \${dep}; echo $x > $out"; verifying = sh "inplace-b-${n}" "read x < \${dep}; echo $x > $out"; }`,
    ['dep', 'trusting', 'verifying'],
  );
  const [dep] = realise(drvs.dep!);
  const registered = hashOf(dep!);
  const cache = nixCopyToCache([dep!], { secretKeyFile: key.secretKeyFile });
  // What a build running as root could do to the store: change a path's bytes, not its registration.
  chmodSync(dep!, 0o644);
  writeFileSync(dep!, 'tampered\n');
  chmodSync(dep!, 0o444);
  assert.equal(hashOf(dep!), registered, 'the store still registers the original hash');

  const canonical = new Map([[dep!, parseHash(registered)]]);
  const trusting = await testExecutor({ cache: openBinaryCache(cache.url), trustedKeys: [key.publicKey] });
  try {
    const outcome = await trusting.executor.build(requestFor(drvs.trusting!, { canonicalNarHashes: canonical }));
    assert.deepEqual(outcome.kind === 'succeeded' ? outcome.inputs.replaced : undefined, [], 'the registered hash matches: nothing is replaced');
    assert.equal(readFileSync(outcome.kind === 'succeeded' ? outcome.outputs[0]!.path : '', 'utf8'), 'tampered\n');
  } finally {
    await trusting.close();
  }

  const verifying = await testExecutor({ cache: openBinaryCache(cache.url), trustedKeys: [key.publicKey], verifyInputContents: true });
  try {
    const outcome = await verifying.executor.build(requestFor(drvs.verifying!, { canonicalNarHashes: canonical }));
    assert.equal(outcome.kind, 'succeeded');
    assert.deepEqual(outcome.kind === 'succeeded' ? outcome.inputs.replaced : undefined, [dep]);
    assert.equal(readFileSync(dep!, 'utf8'), 'original\n', 'the cache\'s contents are back');
    assert.equal(readFileSync(outcome.kind === 'succeeded' ? outcome.outputs[0]!.path : '', 'utf8'), 'original\n');
  } finally {
    await verifying.close();
  }
});

test('compression: br from nix copy is read, xz is refused with a clear error', async () => {
  const key = generateKey();
  const { drvs, dep, mid } = chain();
  const brotli = nixCopyToCache([dep], { compression: 'br', secretKeyFile: key.secretKeyFile });
  const xz = nixCopyToCache([dep], { compression: 'xz', secretKeyFile: key.secretKeyFile });
  const depHash = hashOf(dep);
  deleteLocally(mid, dep);
  const viaXz = await testExecutor({ cache: openBinaryCache(xz.url), trustedKeys: [key.publicKey] });
  try {
    await assert.rejects(viaXz.executor.build(requestFor(drvs.mid!)), (error: unknown) => {
      assert.ok(error instanceof UnsupportedCompressionError);
      assert.match(error.message, /'xz'/);
      assert.match(error.message, /compression=none/);
      return true;
    });
  } finally {
    await viaXz.close();
  }
  const viaBr = await testExecutor({ cache: openBinaryCache(brotli.url), trustedKeys: [key.publicKey] });
  try {
    const outcome = await viaBr.executor.build(requestFor(drvs.mid!));
    assert.equal(outcome.kind, 'succeeded');
    assert.equal(hashOf(dep), depHash);
  } finally {
    await viaBr.close();
  }
});

test('an HTTP cache serves the same substitution; a path it lacks is a clear error', async () => {
  const key = generateKey();
  const { drvs, dep, mid } = chain();
  const cache = nixCopyToCache([dep], { secretKeyFile: key.secretKeyFile });
  const server = createServer((request, response) => {
    const file = join(cache.dir, decodeURIComponent(request.url ?? '/'));
    createReadStream(file)
      .on('error', () => response.writeHead(404).end())
      .once('open', () => response.writeHead(200))
      .pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const depHash = hashOf(dep);
  deleteLocally(mid, dep);
  const { executor, close } = await testExecutor({ cache: openBinaryCache(url), trustedKeys: [key.publicKey] });
  try {
    const outcome = await executor.build(requestFor(drvs.mid!));
    assert.equal(outcome.kind, 'succeeded');
    assert.deepEqual(outcome.inputs.substituted, [dep]);
    assert.equal(hashOf(dep), depHash);

    const absent = `/nix/store/${'1'.repeat(32)}-absent-${nonce()}`;
    const request = { ...requestFor(drvs.mid!), inputPaths: [absent] };
    await assert.rejects(executor.build(request), (error: unknown) => {
      assert.ok(error instanceof SubstitutionError);
      assert.ok(error.message.includes(absent) && error.message.includes(url), error.message);
      return true;
    });
  } finally {
    await close();
    server.close();
  }
});
