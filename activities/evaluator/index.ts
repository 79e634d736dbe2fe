/**
 * The evaluator's activity: run the evaluation, stream its jobs into PostgreSQL in batches, then
 * plan the builds. A broken expression is a failed eval (not an activity failure to retry); a
 * cancelled eval kills the evaluator's subprocesses before the activity returns.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { execa } from 'execa';
import { CancelledFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import type { Derivation } from '../../daemon/core/derivation.ts';
import { applyRepoConfig, parseRepoConfig, REPO_CONFIG_FILE } from '../../config/repo.ts';
import { ConfigError } from '../../config/errors.ts';
import { evaluateJobs, isEvalJobError, sourceFromArgument } from '../../daemon/eval/index.ts';
import type { EvalJob, EvalJobLine, EvalSource } from '../../daemon/eval/index.ts';
import { EvaluationAbortedError, EvaluationError } from '../../daemon/eval/errors.ts';
import { projectGitEnvironment } from '../../daemon/eval/git-credentials.ts';
import { nixOptionArgs } from '../../daemon/eval/nix.ts';
import { minimalEnvironment, restrictedEnvironment } from '../../daemon/eval/process.ts';
import type { EvalSettings, JobsetSource } from '../../workflows/types.ts';
import type { EvaluateOutcome, EvaluatorActivities } from '../types.ts';
import { publishDerivationClosure, type ClosureDeps } from './closure.ts';
import { planMissingBuilds, recordPlan, type ValidityCheck } from './plan.ts';

const BATCH = 1000;
/** Fetching a commit to read its `.harmonia-ci.toml` (a large repository over the network). */
const FETCH_TIMEOUT_MS = 10 * 60_000;

export interface EvaluatorDeps {
  pool: Pool;
  /** Which outputs are already valid (local store, binary cache). */
  isValid: ValidityCheck;
  /** Nix settings for the evaluation subprocesses (`substituters`, …). */
  nixOptions?: Record<string, string>;
  workers?: number;
  /** Address-space limit of each process of a restricted (untrusted) evaluation (`limits.eval-memory`). */
  restrictedMemoryBytes?: number;
  /** `projects.git-credentials-dir`: git-credential-store files `<owner>/<repo>`, each for that project's trusted evaluations. */
  gitCredentialsDir?: string;
  /**
   * Set when builders may not share this host's store: the closure of the `.drv` files to build
   * goes to our cache before any build starts (closure.ts). Unset where every builder uses this
   * store (`run`, and `dev` with its own builder).
   */
  closure?: ClosureDeps;
}

export function createEvaluatorActivities(deps: EvaluatorDeps): EvaluatorActivities {
  return {
    async evaluate({ evalId, source, settings, projectName }): Promise<EvaluateOutcome> {
      const context = Context.current();
      const restricted = settings.restricted === true;
      // Untrusted code gets no credential; trusted code the project's own, and no host-wide one.
      const extraEnv = restricted ? {} : await projectGitEnvironment(deps.gitCredentialsDir, source.kind === 'git' ? projectName : undefined);
      const fetching: FetchSettings = { nixOptions: deps.nixOptions ?? {}, restricted, extraEnv };
      let effective: EvalSettings;
      try {
        effective = await withRepoConfig(source, settings, fetching);
      } catch (error) {
        if (error instanceof ConfigError) return failed(error.message);
        throw error;
      }
      const evalSource = await toEvalSource(source);
      await deps.pool.query('DELETE FROM eval_attrs WHERE eval_id = $1', [evalId]);
      // The commit statuses the reporter sends for this eval, as the project and the commit's file chose.
      await deps.pool.query('UPDATE evaluations SET statuses = $2 WHERE id = $1', [evalId, effective.statuses ?? 'summary']);

      const jobDrvs = new Set<string>();
      // The jobs' parsed .drv files, so planning does not read them again.
      const derivations = new Map<string, Derivation>();
      let batch: EvalJobLine[] = [];
      let seen = 0;
      let otherSystems = 0;
      // One batch is written while the next fills: the evaluator waits only when both are full.
      let writing: Promise<void> = Promise.resolve();
      const flush = async (): Promise<void> => {
        await writing;
        if (batch.length === 0) return;
        const lines = batch;
        batch = [];
        writing = insertAttrs(deps.pool, evalId, lines).then(() => context.heartbeat({ jobs: seen }));
        // Rejections are seen by the next flush, or the last one.
        writing.catch(() => undefined);
      };
      const heartbeat = setInterval(() => context.heartbeat({ jobs: seen }), 5_000);
      let result;
      try {
        result = await evaluateJobs({
          source: evalSource,
          // None given: `checks` of a flake, the whole value of a file.
          attrs: effective.attrs.length > 0 ? effective.attrs : undefined,
          allowIfd: effective.allowIfd,
          timeoutMs: effective.evalTimeoutMs > 0 ? effective.evalTimeoutMs : undefined,
          workers: deps.workers,
          nixOptions: deps.nixOptions,
          extraEnv,
          ...(restricted ? { restricted, memoryLimitBytes: deps.restrictedMemoryBytes } : {}),
          signal: context.cancellationSignal,
          derivations,
          onJob: async (line) => {
            if (!isEvalJobError(line) && !servesSystem(effective.systems, line.system)) {
              otherSystems++;
              return;
            }
            seen++;
            if (!isEvalJobError(line)) jobDrvs.add(line.drvPath);
            batch.push(line);
            if (batch.length >= BATCH) await flush();
          },
        });
        await flush();
      } catch (error) {
        await writing.catch(() => undefined);
        if (error instanceof EvaluationAbortedError) throw new CancelledFailure('evaluation cancelled');
        if (error instanceof EvaluationError) return failed(error.message);
        throw error;
      } finally {
        clearInterval(heartbeat);
      }

      // The last batch of attributes is written while the plan is made.
      const [plan] = await Promise.all([planMissingBuilds(jobDrvs, deps.isValid, derivations), writing]);
      const client = await deps.pool.connect();
      try {
        await client.query('BEGIN');
        await recordPlan(client, evalId, plan, jobDrvs);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
      let closure: Pick<EvaluateOutcome, 'closure' | 'closurePublished'> = {};
      if (deps.closure && plan.needed.size > 0) {
        const { batches, published } = await publishDerivationClosure(deps.closure, evalId, plan.needed, (what) => context.heartbeat({ closure: what }));
        closure = batches.length > 0 ? { closure: { host: deps.closure.host, batches } } : published > 0 ? { closurePublished: published } : {};
      }
      return {
        ...closure,
        ok: true,
        jobs: result.jobs - otherSystems,
        attrErrors: result.errors,
        otherSystems,
        toBuild: plan.needed.size,
        cached: jobDrvs.size - [...jobDrvs].filter((p) => plan.needed.has(p)).length,
      };
    },
  };
}

function failed(error: string): EvaluateOutcome {
  return { ok: false, error, jobs: 0, attrErrors: 0, otherSystems: 0, toBuild: 0, cached: 0 };
}

/** Jobs for systems no builder serves are left out; `builtin` derivations build anywhere. */
function servesSystem(systems: string[], system: string): boolean {
  return systems.length === 0 || system === 'builtin' || systems.includes(system);
}

async function toEvalSource(source: JobsetSource): Promise<EvalSource> {
  if (source.kind === 'git') {
    const rev = source.rev ? `${source.url.includes('?') ? '&' : '?'}rev=${source.rev}` : '';
    return { kind: 'flake', ref: `${source.url.startsWith('git+') ? '' : 'git+'}${source.url}${rev}` };
  }
  return sourceFromArgument(source.url);
}

/** How the commit is fetched to read its `.harmonia-ci.toml`: as its evaluation will fetch it. */
interface FetchSettings {
  nixOptions: Record<string, string>;
  restricted: boolean;
  extraEnv: Record<string, string>;
}

/** `.harmonia-ci.toml` at the root of the source (a local directory, or the fetched commit) tightens the project's settings. */
async function withRepoConfig(source: JobsetSource, settings: EvalSettings, fetching: FetchSettings): Promise<EvalSettings> {
  const dir =
    source.kind === 'git'
      ? await fetchedTree(source, fetching)
      : (await stat(source.url).then((s) => s.isDirectory(), () => false))
        ? source.url
        : undefined;
  if (!dir) return settings;
  const file = join(dir, REPO_CONFIG_FILE);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return settings;
  return applyRepoConfig(settings, parseRepoConfig(text, source.kind === 'git' ? `${source.url}@${source.rev ?? 'HEAD'}:${REPO_CONFIG_FILE}` : file));
}

/**
 * The store path of a git source's tree, fetched by Nix as the evaluation will fetch it (so the
 * fetch is done once). Undefined when Nix cannot fetch it: the evaluation then reports why.
 */
async function fetchedTree(source: JobsetSource, fetching: FetchSettings): Promise<string | undefined> {
  const evalSource = await toEvalSource(source);
  if (evalSource.kind !== 'flake') return undefined;
  const options = nixOptionArgs(fetching.nixOptions, true, fetching.restricted);
  const home = fetching.restricted ? await mkdtemp(join(tmpdir(), 'harmonia-eval-home-')) : undefined;
  try {
    const env = home === undefined ? minimalEnvironment(fetching.extraEnv) : restrictedEnvironment(home, fetching.extraEnv);
    const result = await execa(
      'nix',
      ['--extra-experimental-features', 'nix-command flakes', ...options, 'flake', 'metadata', '--json', '--no-write-lock-file', evalSource.ref],
      { reject: false, env, extendEnv: false, timeout: FETCH_TIMEOUT_MS },
    );
    if (result.exitCode !== 0) return undefined;
    const path = (JSON.parse(result.stdout) as { path?: unknown }).path;
    return typeof path === 'string' ? path : undefined;
  } finally {
    if (home !== undefined) await rm(home, { recursive: true, force: true });
  }
}

/**
 * One batch of attributes, with the minimal derivation rows their foreign keys need, in one
 * statement (on the embedded database every statement waits for its one connection, and a big
 * jobset is written while it is evaluated). Attributes that name the same derivation (aliases)
 * give it one row: a second row for the same key would fail the whole statement.
 */
async function insertAttrs(pool: Pool, evalId: string, lines: EvalJobLine[]): Promise<void> {
  // The last attribute naming a derivation gives its limits, as a later batch would.
  const jobs = [...new Map(lines.filter((l): l is EvalJob => !isEvalJobError(l)).map((j) => [j.drvPath, j])).values()];
  const job = (l: EvalJobLine): EvalJob | undefined => (isEvalJobError(l) ? undefined : l);
  // `meta.timeout` / `meta.maxSilent` go with the derivation: its build reads them (the newest eval's win).
  // The foreign keys of the attributes are checked at the statement's end, when the derivations are in.
  await pool.query(
    `WITH derivation_rows AS (
       INSERT INTO derivations (drv_path, name, system, required_system_features, timeout_seconds, max_silent_seconds)
       SELECT d.path, d.name, d.system,
              CASE WHEN d.features = '[]' THEN '{}'::text[] ELSE ARRAY(SELECT json_array_elements_text(d.features::json)) END,
              d.timeout, d.max_silent
         FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::int[]) AS d(path, name, system, features, timeout, max_silent)
       ON CONFLICT (drv_path) DO UPDATE
         SET timeout_seconds = excluded.timeout_seconds, max_silent_seconds = excluded.max_silent_seconds
         WHERE (derivations.timeout_seconds, derivations.max_silent_seconds) IS DISTINCT FROM (excluded.timeout_seconds, excluded.max_silent_seconds)
     )
     INSERT INTO eval_attrs (eval_id, attr, drv_path, error, constituents, meta)
     SELECT $1, a.attr, a.drv, a.error, a.constituents::jsonb, a.meta::jsonb
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS a(attr, drv, error, constituents, meta)
     ON CONFLICT (eval_id, attr) DO UPDATE
       SET drv_path = excluded.drv_path, error = excluded.error, constituents = excluded.constituents, meta = excluded.meta`,
    [
      evalId,
      lines.map((l) => l.attr),
      lines.map((l) => job(l)?.drvPath ?? null),
      lines.map((l) => (isEvalJobError(l) ? l.error : null)),
      lines.map((l) => {
        const constituents = job(l)?.constituents;
        return constituents ? JSON.stringify(constituents) : null;
      }),
      lines.map((l) => {
        const meta = job(l)?.meta;
        return meta ? JSON.stringify(meta) : null;
      }),
      jobs.map((j) => j.drvPath),
      jobs.map((j) => j.name),
      jobs.map((j) => j.system),
      jobs.map((j) => JSON.stringify(j.requiredSystemFeatures)),
      jobs.map((j) => j.meta?.timeout ?? null),
      jobs.map((j) => j.meta?.maxSilent ?? null),
    ],
  );
}
