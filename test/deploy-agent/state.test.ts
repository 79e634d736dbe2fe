/** The deploy agent's state file (deploy/agent-state.ts): replaced whole, also when saves overlap. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AgentStateFile } from '../../deploy/agent-state.ts';

describe('deploy agent state file', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('takes saves that overlap (a status request while a deployment finishes) one after the other, the last one kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'harmonia-agent-state-'));
    dirs.push(dir);
    const file = new AgentStateFile(join(dir, 'state'));
    const saves = Array.from({ length: 25 }, (_, i) => file.save({ newestRequestTime: i, reports: [], nonces: [[`nonce-${i}`, i]] }));
    const outcomes = await Promise.allSettled(saves);
    const failed = outcomes.filter((outcome) => outcome.status === 'rejected');
    assert.equal(failed.length, 0, `every save is written: ${failed.map((f) => String((f as PromiseRejectedResult).reason)).join('; ')}`);
    const saved = JSON.parse(await readFile(join(dir, 'state', 'state.json'), 'utf8')) as { newestRequestTime: number };
    assert.equal(saved.newestRequestTime, 24, 'the last save is what the file holds');
    assert.deepEqual(await readdir(join(dir, 'state')), ['state.json'], 'no temporary file is left');
    assert.deepEqual(await file.load(), { newestRequestTime: 24, reports: [], nonces: [['nonce-24', 24]] });
  });
});
