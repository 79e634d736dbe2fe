/**
 * A fleet assembled by hand and checked from outside: `harmonia-ci dev --roles
 * api,coordinator,evaluator,signer` runs no builder and prints the command that adds one; `eval`
 * of a local file against it (reads through its API, no forge) creates the project and prints the
 * eval id; its `.drv` closure is in dev's cache before any build; a `harmonia-ci worker builder`
 * process started with the printed `--substituter` and `--trusted-public-key` builds it; and
 * `status --json` shows the jobs with their outputs. Temporal and PostgreSQL are the runner's (dev
 * uses them as configured); the builder shares the machine's nix-daemon.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readSigningKey } from '../../activities/signer/keys.ts';
import type { EvalDetail } from '../../queries/index.ts';
import { startCliHarness, waitUntil, writeJobs, type CliHarness, type CliProcess } from './harness.ts';

describe('dev --roles without a builder, and a builder started from its line', { timeout: 240_000 }, () => {
  let h: CliHarness;
  let dev: CliProcess;
  let apiUrl: string;
  let builderLine: { substituter: string; publicKey: string; temporal: string };

  before(async () => {
    h = await startCliHarness();
  });
  after(async () => {
    await h?.close();
  });

  it('an unknown role fails before anything starts, naming the valid ones', async () => {
    const result = await h.cli(['dev', '--roles', 'api,coordinator,buildr', '--port', '0', '--no-ui']);
    assert.equal(result.code, 1, result.stdout);
    assert.match(result.stderr, /unknown role "buildr" in --roles; the roles are api, coordinator, evaluator, signer, builder/);
    assert.doesNotMatch(result.stdout, /state in|workers/);
    const empty = await h.cli(['dev', '--roles', 'api,,signer']);
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /--roles expects a comma-separated list of api, coordinator, evaluator, signer, builder; got "api,,signer"/);
  });

  it('runs the listed roles, no builder, and prints the builder command with the cache URL and key', async () => {
    dev = h.start(['dev', '--roles', 'api,coordinator,evaluator,signer', '--port', '0', '--no-ui']);
    await dev.waitFor(/^running; press Ctrl-C to stop$/m, 90_000);
    const output = dev.output();
    apiUrl = /^ {2}api +ok +listening on (\S+)$/m.exec(output)![1]!;
    assert.match(output, /^ {2}workers +ok +coordinator, evaluator, signer; the evaluator publishes \.drv closures for builders elsewhere$/m);
    const line = /^ {6}TEMPORAL_ADDRESS=(\S+) TEMPORAL_NAMESPACE=(\S+) harmonia-ci worker builder --host <name> --substituter (\S+) --trusted-public-key (\S+)$/m.exec(output);
    assert.ok(line, `no builder command printed:\n${output}`);
    const [, temporal, namespace, substituter, publicKey] = line;
    assert.equal(temporal, h.address);
    assert.equal(namespace, h.namespace);
    assert.equal(substituter, apiUrl, 'builders substitute from the API, whose cache routes serve the cache');
    const key = await readSigningKey(join(h.env.HARMONIA_CI_STATE_DIR!, 'signing-key'));
    assert.equal(publicKey, key.publicKey, 'the key is the one the in-process signer signs with');
    assert.match(output, /^ {19}public key \S+/m);
    builderLine = { substituter: substituter!, publicKey: publicKey!, temporal: temporal! };

    // No builder registered itself or took work: the nodes list is empty.
    const nodes = await h.cli(['nodes', '--json'], { DATABASE_URL: '', HARMONIA_CI_API_PUBLIC_URL: apiUrl });
    assert.equal(nodes.code, 0, nodes.stderr);
    assert.deepEqual(JSON.parse(nodes.stdout), []);
  });

  it('`eval <file> --project` creates the project, publishes the .drv closure, and a builder from the printed line builds it', async () => {
    // Reads through dev's API, as on a machine where dev owns the database.
    const viaDev = { DATABASE_URL: '', HARMONIA_CI_API_PUBLIC_URL: apiUrl };
    const file = await writeJobs(h.dir, { base: {}, top: { deps: ['base'] } });
    const evalResult = await h.cli(['eval', file, '--project', 'by-hand'], viaDev);
    assert.equal(evalResult.code, 0, evalResult.stderr);
    const evalId = evalResult.stdout.trim();
    assert.match(evalId, /^\d+$/);

    const status = async (): Promise<EvalDetail> => {
      const result = await h.cli(['status', evalId, '--json'], viaDev);
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout) as EvalDetail;
    };
    const pending = await waitUntil(async () => {
      const detail = await status();
      return detail.jobs.length === 2 && detail.builds.length === 2 ? detail : undefined;
    }, 'the eval plans its builds', 60_000);
    assert.equal(pending.project, 'by-hand');
    for (const job of pending.jobs) {
      assert.equal(job.status, 'pending', `${job.attr} waits for a builder`);
      assert.match(job.drvPath!, /^\/nix\/store\/[a-z0-9]{32}-\w+\.drv$/);
    }
    // Before any build: the .drv files are in dev's cache, signed, for builders with stores of their own.
    for (const job of pending.jobs) {
      const hash = job.drvPath!.slice('/nix/store/'.length, '/nix/store/'.length + 32);
      const narinfo = await fetch(`${apiUrl}/${hash}.narinfo`);
      assert.equal(narinfo.status, 200, `${job.drvPath} is in the cache`);
      const text = await narinfo.text();
      assert.match(text, new RegExp(`^StorePath: ${job.drvPath!.replaceAll('.', '\\.')}$`, 'm'));
      assert.match(text, new RegExp(`^Sig: ${builderLine.publicKey.split(':')[0]}:`, 'm'));
    }

    // The builder is configured only by what dev printed: no database, no cache of its own.
    const builder = h.start(
      ['worker', 'builder', '--host', 'by-hand-builder', '--substituter', builderLine.substituter, '--trusted-public-key', builderLine.publicKey],
      { TEMPORAL_ADDRESS: builderLine.temporal, DATABASE_URL: '', HARMONIA_CI_CACHE_URL: '', HARMONIA_CI_STATE_DIR: join(h.dir, 'builder-state') },
    );
    await builder.waitFor(/builder worker running/, 60_000);
    const done = await waitUntil(async () => {
      const detail = await status();
      return detail.jobs.every((job) => job.status === 'succeeded') ? detail : undefined;
    }, 'the builder builds both jobs', 120_000);
    for (const job of done.jobs) {
      assert.match(job.outputs.out ?? '', /^\/nix\/store\/[a-z0-9]{32}-\w+$/, `${job.attr} has its output`);
    }
    assert.deepEqual(done.builds.map((b) => b.node).sort(), ['by-hand-builder', 'by-hand-builder']);
    const outputNarinfo = await fetch(`${apiUrl}/${done.jobs[0]!.outputs.out!.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`);
    assert.equal(outputNarinfo.status, 200, 'the builder published its output through dev\'s signer');

    // The project exists now: the next eval of it uses it.
    const again = await h.cli(['eval', file, '--project', 'by-hand'], viaDev);
    assert.equal(again.code, 0, again.stderr);
    assert.notEqual(again.stdout.trim(), evalId);

    builder.child.kill('SIGTERM');
    assert.equal(await builder.exited, 0, builder.output());
    dev.child.kill('SIGINT');
    assert.equal(await dev.exited, 0, dev.output());
    // What it started in this process stops newest first; the configured services are not its to stop.
    assert.deepEqual([...dev.output().matchAll(/^stopped (.+)$/gm)].map((m) => m[1]).slice(0, 3), ['API', 'binary cache', 'workers']);
  });

  it('with the signer in a process of its own, the evaluator hands the closure over through its upload queue', async () => {
    // The fleet's signer signs with a configured key; dev reads the same one to print it.
    const keyFile = join(h.env.HARMONIA_CI_STATE_DIR!, 'signing-key');
    const withKey = { HARMONIA_CI_CACHE_SIGNING_KEY_FILE: keyFile };
    const signer = h.start(['worker', 'signer'], { ...withKey, DATABASE_URL: '' });
    await signer.waitFor(/signer worker running/, 60_000);
    const apart = h.start(['dev', '--roles', 'api,coordinator,evaluator', '--port', '0', '--no-ui'], withKey);
    await apart.waitFor(/^running; press Ctrl-C to stop$/m, 90_000);
    const output = apart.output();
    assert.match(output, /^ {2}workers +ok +coordinator, evaluator; the evaluator publishes \.drv closures for builders elsewhere$/m);
    const url = /^ {2}api +ok +listening on (\S+)$/m.exec(output)![1]!;
    const key = (await readSigningKey(keyFile)).publicKey;
    assert.ok(output.includes(`--substituter ${url} --trusted-public-key ${key}`), output);

    const viaDev = { DATABASE_URL: '', HARMONIA_CI_API_PUBLIC_URL: url };
    const file = await writeJobs(h.dir, { apart: {} });
    const evalResult = await h.cli(['eval', file, '--project', 'signer-apart'], viaDev);
    assert.equal(evalResult.code, 0, evalResult.stderr);
    const evalId = evalResult.stdout.trim();
    const planned = await waitUntil(async () => {
      const result = await h.cli(['status', evalId, '--json'], viaDev);
      assert.equal(result.code, 0, result.stderr);
      const detail = JSON.parse(result.stdout) as EvalDetail;
      return detail.jobs[0]?.status === 'pending' ? detail : undefined;
    }, 'the eval plans its build', 60_000);
    const drvPath = planned.jobs[0]!.drvPath!;
    // The eval workflow uploads the staged closure after the evaluate activity has planned the build.
    const narinfo = await waitUntil(async () => {
      const response = await fetch(`${url}/${drvPath.slice('/nix/store/'.length, '/nix/store/'.length + 32)}.narinfo`);
      return response.status === 200 ? response.text() : undefined;
    }, `${drvPath} goes to the cache through the signer process`);
    assert.match(narinfo, new RegExp(`^Sig: ${key.split(':')[0]}:`, 'm'));
    assert.match(narinfo, /^CA: text:sha256:/m, 'the signer checked the .drv against its contents');

    apart.child.kill('SIGINT');
    assert.equal(await apart.exited, 0, apart.output());
    signer.child.kill('SIGTERM');
    assert.equal(await signer.exited, 0, signer.output());
  });
});
