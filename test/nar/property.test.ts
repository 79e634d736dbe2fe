/** Property: for any tree, pack equals nix-store --dump, and pack → unpack → pack is the identity. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { packNar } from '../../daemon/nar/pack.ts';
import { unpackNar } from '../../daemon/nar/unpack.ts';
import type { TreeNode } from './helpers.ts';
import { AWKWARD_NAMES, collect, inPieces, nixDump, scratchDir, writeTree } from './helpers.ts';

const isValidName = (name: Uint8Array): boolean =>
  name.length > 0 && !name.includes(0x2f) && !name.includes(0) && !(name.length <= 2 && name.every((byte) => byte === 0x2e));

const nameArbitrary = fc.oneof(
  fc.constantFrom(...AWKWARD_NAMES),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }).map((text) => Buffer.from(text, 'utf8')),
  fc.uint8Array({ minLength: 1, maxLength: 6 }).map((bytes) => Buffer.from(bytes)),
).filter(isValidName);

const { tree } = fc.letrec<{ tree: TreeNode; leaf: TreeNode; directory: TreeNode }>((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('directory')),
  leaf: fc.oneof(
    fc.record({ type: fc.constant('regular' as const), contents: fc.uint8Array({ maxLength: 300 }), executable: fc.boolean() }),
    fc.record({ type: fc.constant('symlink' as const), target: fc.uint8Array({ minLength: 1, maxLength: 40 }).filter((bytes) => !bytes.includes(0)) }),
  ),
  directory: fc.record({
    type: fc.constant('directory' as const),
    entries: fc.uniqueArray(fc.tuple(nameArbitrary, tie('tree')), { maxLength: 6, selector: ([name]) => Buffer.from(name).toString('hex') }),
  }),
}));

test('pack matches nix-store --dump and survives pack → unpack → pack', async () => {
  const work = scratchDir();
  let counter = 0;
  await fc.assert(
    fc.asyncProperty(tree, fc.integer({ min: 1, max: 64 }), async (node, pieceSize) => {
      const source = join(work, `source-${counter}`);
      const copy = join(work, `copy-${counter++}`);
      writeTree(Buffer.from(source), node);
      const packed = await collect(packNar(source));
      assert.ok(packed.equals(nixDump(source)), 'pack equals nix-store --dump');
      await unpackNar(inPieces(packed, pieceSize), copy);
      assert.ok((await collect(packNar(copy))).equals(packed), 'pack → unpack → pack is the identity');
    }),
    { numRuns: 60 },
  );
});
