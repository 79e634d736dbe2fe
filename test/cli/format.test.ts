/** The pure parts of the operator commands: following a sliding log tail, naming builds, tables. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildHashPart } from '../../queries/index.ts';
import { newLogText } from '../../cli/commands/logs.ts';
import { describeCounts } from '../../cli/commands/status.ts';
import { fullRef } from '../../cli/operator.ts';
import { formatDuration, formatTable } from '../../cli/format.ts';

describe('newLogText', () => {
  it('prints what a growing tail adds, also after old lines fell out of the window', () => {
    assert.equal(newLogText('', 'a\nb\n'), 'a\nb\n');
    assert.equal(newLogText('a\nb\n', 'a\nb\nc\n'), 'c\n');
    assert.equal(newLogText('a\nb\n', 'a\nb\n'), '');
    // The window dropped "a" and gained "c" and "d".
    assert.equal(newLogText('a\nb\n', 'b\nc\nd\n'), 'c\nd\n');
  });

  it('prints the whole tail when more was written between polls than the window holds', () => {
    assert.equal(newLogText('a\nb\n', 'x\ny\n'), 'x\ny\n');
  });
});

describe('naming builds', () => {
  const hash = '0123456789abcdfghijklmnpqrsvwxyz';
  it('takes a .drv path, its hash part or build/<hash>', () => {
    assert.equal(buildHashPart(`/nix/store/${hash}-hello.drv`), hash);
    assert.equal(buildHashPart(hash), hash);
    assert.equal(buildHashPart(`build/${hash}`), hash);
  });
  it('refuses what is not one', () => {
    for (const text of ['hello', `${hash}x`, '/nix/store/short-hello.drv', `/nix/store/${hash.replace('0', 'e')}-x.drv`]) {
      assert.equal(buildHashPart(text), undefined, text);
    }
  });
});

describe('output', () => {
  it('aligns tables and shortens durations', () => {
    assert.equal(formatTable([['A', 'BB', 'C'], ['long', 'x', 'y']]), 'A     BB  C\nlong  x   y');
    assert.deepEqual([0.84, 42, 185, 7800].map(formatDuration), ['0.8 s', '42 s', '3 min 5 s', '2 h 10 min']);
  });
  it('summarises an eval in a few words and completes refs', () => {
    const counts = { total: 6, pending: 1, building: 1, uploading: 0, succeeded: 1, failed: 1, 'dep-failed': 1, cancelled: 0, 'timed-out': 0, 'failed-with-output': 1 };
    assert.equal(describeCounts(counts), '1/6 built, 2 failed, 1 dep-failed, 1 building, 1 pending');
    assert.equal(fullRef('main'), 'refs/heads/main');
    assert.equal(fullRef('refs/pull/3/head'), 'refs/pull/3/head');
  });
});
