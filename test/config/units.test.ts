/** Durations and sizes as written in configuration files. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDuration, parseSize } from '../../config/units.ts';

describe('parseDuration', () => {
  it('reads units, combinations and plain seconds into milliseconds', () => {
    const cases: Array<[string | number, number]> = [
      ['4h', 4 * 3_600_000],
      ['30m', 1_800_000],
      ['90s', 90_000],
      ['1h30m', 5_400_000],
      ['90d', 90 * 86_400_000],
      ['2w', 14 * 86_400_000],
      ['250ms', 250],
      ['1.5h', 5_400_000],
      ['45', 45_000],
      [45, 45_000],
      [0.5, 500],
      [' 10M ', 600_000],
    ];
    for (const [input, expected] of cases) assert.equal(parseDuration(input), expected, String(input));
  });

  it('rejects what it cannot read', () => {
    for (const input of ['', '4 hours', 'h', '4x', '-5s', '1h foo', -1, Number.NaN]) {
      assert.equal(parseDuration(input), undefined, String(input));
    }
  });
});

describe('parseSize', () => {
  it('reads binary suffixes, IEC and SI units, and plain bytes', () => {
    const cases: Array<[string | number, number]> = [
      ['4G', 4 * 1024 ** 3],
      ['64M', 64 * 1024 ** 2],
      ['64K', 65_536],
      ['64MiB', 64 * 1024 ** 2],
      ['1TiB', 1024 ** 4],
      ['500MB', 500_000_000],
      ['1kb', 1000],
      ['1024', 1024],
      ['10B', 10],
      [4096, 4096],
      ['1.5K', 1536],
    ];
    for (const [input, expected] of cases) assert.equal(parseSize(input), expected, String(input));
  });

  it('rejects what it cannot read', () => {
    for (const input of ['', 'lots', '4 GBytes', '-1', '1e3', 1.5, -1, '99999999999T']) {
      assert.equal(parseSize(input), undefined, String(input));
    }
  });
});
