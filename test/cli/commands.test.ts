/**
 * The operator commands on a real run: `harmonia-ci run` of a small flake (one success, three
 * failures, one dep-failed) against the runner's Temporal, PostgreSQL and nix-daemon, then
 * `status` and `logs` (from PostgreSQL, and through the API as in dev mode), `rebuild`,
 * `rebuild-failed`, `cancel`, `re-evaluate` and `eval` as subprocesses, and one signal sent with
 * the plain `temporal workflow signal` tool.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import type { EvalDetail, EvalSummary } from '../../queries/index.ts';
import { startApiServer, type ApiServer } from '../../api/server.ts';
import type { RunSummary } from '../../cli/run-progress.ts';
import { loadServerConfig } from '../../config/server.ts';
import { createLogger } from '../../lib/log.ts';
import { locateTemporalCli } from '../../lib/tools.ts';
import { refWorkflowId } from '../../workflows/definitions.ts';
import { startCliHarness, waitUntil, writeJobs, type CliHarness } from './harness.ts';

/** A flake whose `brokenN` jobs fail until the file `fixedN` exists next to it. */
function flake(dir: string, nonce: string): string {
  const broken = (n: number): string =>
    `broken${n} = mk "broken${n}" "echo broken${n} runs; if [ -e ${dir}/fixed${n} ]; then echo fixed > $out; else echo 'broken${n} fails on purpose' >&2; exit 1; fi" {};`;
  return `{
  outputs = { self }:
    let mk = name: script: extra: builtins.derivation ({ inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" script ]; nonce = "${nonce}"; } // extra);
    in {
      checks.x86_64-linux = rec {
        ok = mk "ok" "echo ok runs; echo ok > $out" {};
        ${broken(1)}
        ${broken(2)}
        ${broken(3)}
        after = mk "after" "echo $broken1 > $out" { inherit broken1; };
      };
    };
}
`;
}

describe('operator commands', { timeout: 300_000 }, () => {
  let h: CliHarness;
  let api: ApiServer | undefined;
  let flakeDir: string;
  let evalId: string;
  let project: string;
  const drv: Record<string, string> = {};

  const buildStatus = async (name: string): Promise<{ status: string; finished_at: Date | null }> => {
    const { rows } = await h.db.pool.query<{ status: string; finished_at: Date | null }>(
      'SELECT b.status, b.finished_at FROM build_jobs b WHERE b.drv_path = $1',
      [drv[name]],
    );
    return rows[0]!;
  };
  const waitForBuild = (name: string, status: string, after?: Date): Promise<true> =>
    waitUntil(async () => {
      const row = await buildStatus(name);
      return row.status === status && (!after || row.finished_at! > after) ? true : undefined;
    }, `${name} is ${status}`, 60_000);
  const ok = async (args: string[], env?: Record<string, string>): Promise<string> => {
    const result = await h.cli(args, env);
    assert.equal(result.code, 0, `harmonia-ci ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };

  before(async () => {
    h = await startCliHarness();
    flakeDir = join(h.dir, 'flake');
    await mkdir(flakeDir);
    await writeFile(join(flakeDir, 'flake.nix'), flake(flakeDir, randomUUID()));
  });
  after(async () => {
    await api?.close();
    await h?.close();
  });

  it('`run` drives a real eval against the configured services', async () => {
    const result = await h.cli(['run', flakeDir, '--state-dir', join(h.dir, 'run-state'), '--no-ui', '--json']);
    assert.equal(result.code, 1, result.stderr);
    const summary = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as RunSummary;
    evalId = summary.eval.id;
    const jobs = Object.fromEntries(summary.jobs.map((j) => [j.attr.replace(/^.*\./, ''), j]));
    for (const [name, job] of Object.entries(jobs)) drv[name] = job.drvPath!;
    assert.deepEqual(
      Object.fromEntries(Object.entries(jobs).map(([name, job]) => [name, job.status])),
      { ok: 'succeeded', broken1: 'failed', broken2: 'failed', broken3: 'failed', after: 'dep-failed' },
    );
    const { rows } = await h.db.pool.query<{ name: string }>('SELECT p.name FROM evaluations e JOIN projects p ON p.id = e.project_id WHERE e.id = $1', [evalId]);
    project = rows[0]!.name;
  });

  it('`status` lists recent evals with counts, and shows one eval with dep-failed root causes', async () => {
    const list = JSON.parse(await ok(['status', '--json'])) as EvalSummary[];
    const listed = list.find((e) => e.id === evalId)!;
    assert.equal(listed.project, project);
    assert.deepEqual([listed.counts.total, listed.counts.succeeded, listed.counts.failed, listed.counts['dep-failed']], [5, 1, 3, 1]);
    assert.match(await ok(['status']), new RegExp(`^${evalId}\\s+${project.replace(/[.]/g, '\\.')}\\s+refs/heads/local\\s.*1/5 built, 3 failed, 1 dep-failed$`, 'm'));

    const detail = JSON.parse(await ok(['status', evalId, '--json'])) as EvalDetail;
    const afterBuild = detail.builds.find((b) => b.name === 'after')!;
    assert.deepEqual(afterBuild.rootCause, { drvPath: drv.broken1, name: 'broken1' });
    assert.ok(detail.builds.find((b) => b.name === 'ok')!.seconds! > 0);
    assert.deepEqual(detail.jobs.map((j) => j.build).sort(), ['dep-failed', 'failed', 'failed', 'failed', 'succeeded']);
    const text = await ok(['status', evalId]);
    assert.match(text, /^ {2}dep-failed\s+after\s+-\s+0\s+-\s+because broken1 failed/m);
    assert.match(text, /^ {2}failed\s+broken2\s+\S+\s+1\s+\d/m);
  });

  it('`logs` prints a build log tail by drv path, hash part or workflow id, and --follow ends with the build', async () => {
    const hash = drv.broken2!.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    assert.match(await ok(['logs', drv.broken2!]), /broken2 runs\n(.*\n)*broken2 fails on purpose\n/);
    assert.match(await ok(['logs', hash]), /broken2 fails on purpose/);
    const followed = await h.cli(['logs', `build/${hash}`, '--follow']);
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /broken2 fails on purpose/);
    assert.match(followed.stderr, /broken2 failed/);
    const unknown = await h.cli(['logs', 'not-a-build']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /names no build: give a \.drv store path/);
  });

  it('reads through the API when no database is configured, as against `harmonia-ci dev`', async () => {
    const config = await loadServerConfig({ env: h.env });
    api = await startApiServer({ config, log: createLogger({ level: 'warn' }), deps: { pool: h.db.pool, temporal: h.client, cacheStorage: null }, host: '127.0.0.1', port: 0 });
    const viaApi = { DATABASE_URL: '', HARMONIA_CI_API_PUBLIC_URL: api.url };
    const [fromApi, fromDb, log, nodes] = await Promise.all([
      ok(['status', evalId, '--json'], viaApi),
      ok(['status', evalId, '--json']),
      ok(['logs', drv.broken3!], viaApi),
      ok(['nodes', '--json'], viaApi),
    ]);
    assert.deepEqual(JSON.parse(fromApi), JSON.parse(fromDb));
    assert.match(log, /broken3 fails on purpose/);
    assert.deepEqual(JSON.parse(nodes), []);
    const unreachable = await h.cli(['status'], { DATABASE_URL: '', HARMONIA_CI_API_PUBLIC_URL: 'http://127.0.0.1:9' });
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach the harmonia-ci API at http:\/\/127\.0\.0\.1:9 .*start `harmonia-ci dev`/);
  });

  it('`rebuild` of a dep-failed build rebuilds its root cause; `rebuild-failed` and `temporal workflow signal` rebuild the rest', async () => {
    await h.startWorkers({ builder: true, host: `cli-commands-${randomUUID().slice(0, 6)}` });
    await writeFile(join(flakeDir, 'fixed1'), '');
    assert.match(await ok(['rebuild', drv.after!]), /after is dep-failed because broken1 failed: rebuilding broken1/);
    await waitForBuild('broken1', 'succeeded');
    await waitForBuild('after', 'succeeded');
    assert.equal((await buildStatus('broken2')).status, 'failed');

    // broken3 stays broken: rebuild-failed builds it again, and it fails again.
    await writeFile(join(flakeDir, 'fixed2'), '');
    const broken3Before = (await buildStatus('broken3')).finished_at!;
    assert.match(await ok(['rebuild-failed', evalId]), /rebuilding 2 failed build\(s\) of eval/);
    await waitForBuild('broken2', 'succeeded');
    await waitForBuild('broken3', 'failed', broken3Before);

    await writeFile(join(flakeDir, 'fixed3'), '');
    await execa(locateTemporalCli(), [
      'workflow', 'signal', '--address', h.address, '--namespace', h.namespace,
      '--workflow-id', refWorkflowId(project, 'refs/heads/local'), '--name', 'rebuild-failed',
    ]);
    await waitForBuild('broken3', 'succeeded');
  });

  it('`eval` starts an eval and prints its id; `cancel` cancels it while its build runs on', async () => {
    // The build runs until the test releases it: the cancel always arrives while it runs.
    const release = join(h.dir, `release-${Date.now()}`);
    const file = await writeJobs(h.dir, { slow: { script: `echo slow starts; while [ ! -e ${release} ]; do /bin/sleep 0.2; done` } });
    const id = (await ok(['eval', file, '--project', project, '--ref', 'cancel-me'])).trim();
    assert.match(id, /^\d+$/);
    const building = await waitUntil(async () => {
      const { rows } = await h.db.pool.query<{ drv_path: string }>(
        `SELECT b.drv_path FROM evaluation_builds e JOIN build_jobs b ON b.id = e.build_id WHERE e.eval_id = $1 AND b.status = 'building'`,
        [id],
      );
      return rows[0];
    }, 'the slow build runs');
    assert.match(await ok(['cancel', id]), new RegExp(`asked eval ${id} to cancel`));
    await waitUntil(async () => {
      const { rows } = await h.db.pool.query<{ status: string }>('SELECT status FROM evaluations WHERE id = $1', [id]);
      return rows[0]!.status === 'cancelled' ? true : undefined;
    }, 'the eval is cancelled');
    await writeFile(release, '');
    // A running build is not interrupted: its output is useful in the cache.
    await waitUntil(async () => {
      const { rows } = await h.db.pool.query<{ status: string }>('SELECT status FROM build_jobs WHERE drv_path = $1', [building.drv_path]);
      return rows[0]!.status === 'succeeded' ? true : undefined;
    }, 'the running build finishes');
    const again = await h.cli(['cancel', id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /has already ended \(cancelled\)/);
  });

  it('`re-evaluate` evaluates the ref again; `eval` of a git URL for an unknown project says so', async () => {
    const { rows } = await h.db.pool.query<{ started_at: Date }>('SELECT started_at FROM evaluations WHERE id = $1', [evalId]);
    const [reEvaluated, unknown] = await Promise.all([
      h.cli(['re-evaluate', project, 'local']),
      // A local path makes its project on first use; a git URL belongs to a forge's project.
      h.cli(['eval', `file://${flakeDir}`, '--rev', 'a'.repeat(40), '--project', `no-such-project-${randomUUID().slice(0, 6)}`]),
    ]);
    assert.equal(reEvaluated.code, 0, reEvaluated.stderr);
    await waitUntil(async () => {
      const now = await h.db.pool.query<{ started_at: Date | null; status: string }>('SELECT started_at, status FROM evaluations WHERE id = $1', [evalId]);
      return now.rows[0]!.started_at !== null && now.rows[0]!.started_at > rows[0]!.started_at ? true : undefined;
    }, 'the eval ran again');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /stopped without creating an eval: project no-such-project-\w+ does not exist/);
  });

  it('`run` of the same source again shows its eval instead of superseding it; --again evaluates anew', async () => {
    const dir = join(h.dir, 'resumed');
    await mkdir(dir, { recursive: true });
    const file = await writeJobs(dir, { resumed: {} });
    const state = join(h.dir, 'run-state');
    const run = async (...extra: string[]): Promise<{ summary: RunSummary; stderr: string }> => {
      const result = await h.cli(['run', file, '--state-dir', state, '--no-ui', '--json', ...extra]);
      assert.equal(result.code, 0, result.stderr);
      return { summary: JSON.parse(result.stdout.trim().split('\n').at(-1)!) as RunSummary, stderr: result.stderr };
    };
    const first = await run();
    const again = await run();
    assert.equal(again.summary.eval.id, first.summary.eval.id);
    assert.match(again.stderr, new RegExp(`eval +${first.summary.eval.id} \\(this source was already run as eval ${first.summary.eval.id}: its results follow`));
    const fresh = await run('--again');
    assert.notEqual(fresh.summary.eval.id, first.summary.eval.id);
  });
});
