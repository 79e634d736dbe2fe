/** `.ls` listings against the ones `nix copy --to 'file://…?write-nar-listing=true'` writes. */
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { test } from 'node:test';
import { formatNarListing, listNar } from '../../daemon/nar/listing.ts';
import { NarError } from '../../daemon/nar/errors.ts';
import type { TreeNode } from './helpers.ts';
import { AWKWARD_NAMES, inPieces, nixListing, randomTree, scratchDir } from './helpers.ts';
import { MAGIC, nar, regular } from './craft.ts';

const work = scratchDir();

const ESCAPES = ['a\bb\fc', 'tab\there', 'cr\rnl\n', 'ctl\x01\x1f', 'quote"back\\slash', '\x7f'].map((name) => Buffer.from(name));

test('listings are byte-identical to the .ls files Nix writes', async () => {
  const trees: Array<[string, TreeNode]> = [
    ['random-a', randomTree(7)],
    ['random-b', randomTree(8)],
    [
      'names',
      {
        type: 'directory',
        entries: [...AWKWARD_NAMES, ...ESCAPES].map((name, i): [Uint8Array, TreeNode] => [
          name,
          i % 4 === 0 ? { type: 'symlink', target: Buffer.concat([name, Buffer.from('\n\xff')]) } : { type: 'regular', contents: Buffer.alloc(i), executable: i % 3 === 0 },
        ]),
      },
    ],
    ['single-file', { type: 'regular', contents: Buffer.from('just me\n'), executable: true }],
    ['single-link', { type: 'symlink', target: Buffer.from('/nix/store/elsewhere') }],
  ];
  for (const [name, node] of trees) {
    const { narFile, listing } = nixListing(work, name, node);
    const ours = formatNarListing(await listNar(createReadStream(narFile)));
    assert.equal(ours.toString('latin1'), listing.toString('latin1'), `listing of ${name}`);
  }
});

test('listing validates the archive it reads', async () => {
  const trailing = nar(MAGIC, regular('x'), Buffer.from('!'));
  await assert.rejects(listNar(inPieces(trailing, 8)), NarError);
});
