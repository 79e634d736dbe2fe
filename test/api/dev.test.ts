/**
 * `harmonia-ci dev` as a subprocess, the way a person runs it: with nothing
 * configured it starts its own Temporal dev server and embedded PostgreSQL under a
 * temporary state directory, and on exit (or Ctrl-C) leaves no process behind.
 * With Temporal and PostgreSQL configured it starts neither and stops neither.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ENV_ALIASES, envNameForKey, SERVER_KEYS } from '../../config/keys.ts';
import { isPortOpen } from '../../lib/ports.ts';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { connectTemporal } from '../../temporal/connection.ts';
import { requireEnv } from '../helpers/env.ts';
import { createEmptyDatabase } from '../helpers/database.ts';

const BIN = join(PROJECT_ROOT, 'bin', 'harmonia-ci.mjs');

/** The environment without any harmonia-ci configuration: dev must start everything itself. */
function unconfiguredEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  const names = [...SERVER_KEYS.map(([key]) => envNameForKey(key)), ...Object.values(ENV_ALIASES).flat(), 'HARMONIA_CI_CONFIG'];
  for (const name of names) delete env[name];
  return env;
}

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts dev in a process group of its own, like a shell job, so Ctrl-C can be sent to the whole group. */
function startDev(args: string[], env: NodeJS.ProcessEnv): Run {
  const child = spawn(process.execPath, [BIN, 'dev', ...args], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

async function waitForOutput(run: Run, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const match = pattern.exec(run.output());
    if (match) return match;
    if (run.child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`dev never printed ${pattern}; output:\n${run.output()}`);
}

/** Processes whose command line mentions `text` (the state directory names the SQLite file of the dev server). */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.replaceAll('\0', ' ')}`);
  }
  return found;
}

function temporalAddressIn(output: string): { host: string; port: number } {
  const match = /dev server at ([\d.]+):(\d+)/.exec(output);
  assert.ok(match, `no dev server address printed:\n${output}`);
  return { host: match[1] as string, port: Number(match[2]) };
}

describe('harmonia-ci dev', () => {
  let stateDir: string;

  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'harmonia-ci-dev-'));
  });

  after(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('--once starts Temporal and PGlite, reports healthy, exits 0 and leaves no process', { timeout: 120_000 }, async () => {
    const run = startDev(['--once', '--state-dir', stateDir, '--port', '0', '--temporal-port', '0'], unconfiguredEnv());
    const code = await run.exited;
    const output = run.output();
    assert.equal(code, 0, output);
    assert.match(output, /^health: ok$/m);
    assert.match(output, /^ {2}dashboard +http:\/\/127\.0\.0\.1:\d+\/ci\/$/m);
    assert.match(output, /^ {2}Temporal Web UI +http:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(output, /^ {2}database +ok +schema version \d+ \(embedded PGlite/m);
    assert.match(output, /^stopped Temporal dev server$/m);
    assert.ok(existsSync(join(stateDir, 'temporal.sqlite')), 'Temporal state persists in the state directory');

    const { host, port } = temporalAddressIn(output);
    assert.equal(await isPortOpen(host, port), false, 'the dev server port is closed');
    assert.deepEqual(await processesMentioning(stateDir), []);
  });

  it('runs until SIGINT, then stops what it started, newest first', { timeout: 120_000 }, async () => {
    const run = startDev(['--state-dir', stateDir, '--port', '0', '--temporal-port', '0', '--no-ui'], unconfiguredEnv());
    try {
      await waitForOutput(run, /^running; press Ctrl-C to stop$/m, 90_000);
      const [, dashboard] = await waitForOutput(run, /^ {2}dashboard +(\S+)$/m, 1000);
      const health = await fetch(new URL('/healthz', dashboard));
      assert.equal(health.status, 200, await health.text());
      const page = await fetch(dashboard as string);
      assert.match(await page.text(), /harmonia-ci/);
      assert.match(run.output(), /Temporal Web UI +off \(--no-ui\)/);
      assert.match(run.output(), /schema version \d+/, 'the second start found the migrated embedded database');

      // A terminal's Ctrl-C signals every process of the foreground group, children included.
      process.kill(-(run.child.pid as number), 'SIGINT');
      assert.equal(await run.exited, 0, run.output());
    } finally {
      run.child.kill('SIGKILL');
    }
    const stops = [...run.output().matchAll(/^stopped (.+)$/gm)].map((m) => m[1]);
    assert.deepEqual(stops, ['API', 'binary cache', 'workers', 'database', 'Temporal worker connection', 'Temporal client', 'Temporal dev server']);
    assert.deepEqual(await processesMentioning(stateDir), []);
  });

  it('uses configured Temporal and PostgreSQL, migrates, and leaves both running', { timeout: 60_000 }, async () => {
    const address = requireEnv('TEMPORAL_ADDRESS');
    const database = await createEmptyDatabase();
    try {
      const env = { ...unconfiguredEnv(), TEMPORAL_ADDRESS: address, DATABASE_URL: database.url };
      const run = startDev(['--once', '--state-dir', stateDir, '--port', '0'], env);
      const code = await run.exited;
      const output = run.output();
      assert.equal(code, 0, output);
      assert.match(output, new RegExp(`temporal +ok .*\\(configured: ${address.replaceAll('.', '\\.')}\\)`));
      assert.match(output, /database +ok +schema version \d+ \(configured\)/);
      assert.doesNotMatch(output, /stopped Temporal dev server/);

      const temporal = await connectTemporal({ address, namespace: 'default' });
      await temporal.connection.close();
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ count: number }>('SELECT count(*)::int AS count FROM schema_migrations');
        assert.ok((rows[0]?.count ?? 0) > 0, 'dev migrated the configured database');
      } finally {
        await client.end();
      }
    } finally {
      await database.drop();
    }
  });
});
