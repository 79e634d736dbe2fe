/**
 * The deploy agent: the listener on a target host. It accepts a signed request (deploy/protocol.ts),
 * realises the store path from the cache named in it trusting only the key named in it, points its
 * profile at the path, runs the activation and the health check, and rolls the profile back (and
 * re-activates the previous path) when either fails. One deployment runs at a time; the journal in
 * the state file lets a restarted agent roll back what it interrupted.
 */
import { realpath } from 'node:fs/promises';
import { execa } from 'execa';
import { isStorePath } from '../daemon/core/store-path.ts';
import { parsePublicKey } from '../daemon/core/signing.ts';
import { AgentStateFile, type AgentState } from './agent-state.ts';
import { MessageRefused, newNonce, NonceLedger, openMessage, type DeployReport, type DeployRequest, type StatusRequest } from './protocol.ts';

/** How the agent makes a path active. */
export type Activation = { kind: 'nixos' } | { kind: 'command'; command: string };

export interface AgentOptions {
  environment: string;
  secret: Uint8Array;
  stateDir: string;
  /** The profile the agent switches (for NixOS /nix/var/nix/profiles/system). */
  profile: string;
  activation: Activation;
  /** A shell command run with the path as $1; non-zero or past the deadline fails the deployment. */
  healthCheck?: string;
  healthTimeoutMs: number;
  /** Bounds realising, activation and rollback each. */
  stepTimeoutMs: number;
  windowMs?: number;
  /** Environment of the nix commands (NIX_REMOTE and the like). */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

/** An HTTP answer: status and the message to send back signed (or a plain refusal). */
export type AgentAnswer = { status: number; report: DeployReport } | { status: number; refusal: string };

/** Lines of log kept in a report. */
const LOG_TAIL_BYTES = 16 * 1024;

/** A failed step of a deployment, with what it printed. */
class StepFailed extends Error {}

/** The agent's state machine; the HTTP side is cli/commands/deploy-agent.ts. */
export class DeployAgent {
  private state!: AgentState;
  private readonly file: AgentStateFile;
  private readonly nonces: NonceLedger;
  private running: Promise<void> | undefined;

  private constructor(private readonly options: AgentOptions) {
    this.file = new AgentStateFile(options.stateDir);
    this.nonces = new NonceLedger(options.windowMs);
  }

  /** Loads the state and finishes what a previous run interrupted (by rolling it back). */
  static async start(options: AgentOptions): Promise<DeployAgent> {
    const agent = new DeployAgent(options);
    agent.state = await agent.file.load();
    agent.nonces.restore(agent.state.nonces);
    const interrupted = agent.state.inProgress;
    if (interrupted) {
      const log: string[] = [`the agent restarted during deployment ${interrupted.deploymentId}: rolling back`];
      await agent.rollBack(interrupted, log).catch((error: unknown) => log.push(`rollback failed: ${String(error)}`));
      await agent.finish(interrupted.deploymentId, interrupted.storePath, 'rolled-back', 'the agent restarted during the deployment', log);
    }
    return agent;
  }

  /** Waits for the deployment in progress, if any. */
  async idle(): Promise<void> {
    await this.running;
  }

  /** A report signed by the caller; `time` and `nonce` are fresh. */
  private report(fields: Omit<DeployReport, 'kind' | 'time' | 'nonce'>): DeployReport {
    return { kind: 'report', ...fields, time: Date.now(), nonce: newNonce() };
  }

  /** Handles `POST /deploy`. */
  async deploy(body: string, signature: string | undefined): Promise<AgentAnswer> {
    let request: DeployRequest;
    try {
      request = openMessage(this.options.secret, body, signature, { now: Date.now(), windowMs: this.options.windowMs, nonces: this.nonces, expect: 'deploy' }) as DeployRequest;
    } catch (error) {
      if (error instanceof MessageRefused) return { status: 401, refusal: error.message };
      throw error;
    }
    await this.saveNonces();
    const refuse = (reason: string, status = 409): AgentAnswer => ({
      status,
      report: this.report({ deploymentId: String(request.deploymentId), outcome: 'refused', storePath: String(request.storePath), reason, log: '' }),
    });
    if (request.environment !== this.options.environment) return refuse(`this agent deploys ${this.options.environment}, not ${request.environment}`, 400);
    if (typeof request.storePath !== 'string' || !isStorePath(request.storePath)) return refuse(`'${request.storePath}' is not a store path`, 400);
    if (!/^(https?|file):\/\//.test(String(request.cacheUrl))) return refuse(`the cache URL '${request.cacheUrl}' is not http(s):// or file://`, 400);
    try {
      parsePublicKey(String(request.publicKey));
    } catch (error) {
      return refuse(`the public key is unusable: ${(error as Error).message}`, 400);
    }
    const known = this.state.reports.find((report) => report.deploymentId === request.deploymentId);
    if (known) return { status: 200, report: this.report({ ...known }) };
    // The same request again (its answer was lost): it is running.
    if (this.state.inProgress?.deploymentId === request.deploymentId) {
      return { status: 202, report: this.report({ deploymentId: request.deploymentId, outcome: 'running', storePath: this.state.inProgress.storePath, log: '' }) };
    }
    if (this.running || this.state.inProgress) return refuse(`deployment ${this.state.inProgress?.deploymentId ?? ''} is still running on this host`, 503);
    if (request.time <= this.state.newestRequestTime) return refuse('a newer deployment was already accepted: this request is stale');
    if ((await this.currentPath()) === request.storePath) return refuse(`${request.storePath} is already the active path`);
    this.state.newestRequestTime = request.time;
    this.state.inProgress = { deploymentId: request.deploymentId, storePath: request.storePath, previousPath: await this.currentPath(), switched: false };
    await this.file.save(this.state);
    this.running = this.run(request).finally(() => {
      this.running = undefined;
    });
    return { status: 202, report: this.report({ deploymentId: request.deploymentId, outcome: 'running', storePath: request.storePath, log: '' }) };
  }

  /** Handles `POST /status`: the report of a deployment this agent accepted. */
  async status(body: string, signature: string | undefined): Promise<AgentAnswer> {
    let request: StatusRequest;
    try {
      request = openMessage(this.options.secret, body, signature, { now: Date.now(), windowMs: this.options.windowMs, nonces: this.nonces, expect: 'status' }) as StatusRequest;
    } catch (error) {
      if (error instanceof MessageRefused) return { status: 401, refusal: error.message };
      throw error;
    }
    const done = this.state.reports.find((report) => report.deploymentId === request.deploymentId);
    if (done) return { status: 200, report: this.report({ ...done }) };
    const current = this.state.inProgress;
    if (current?.deploymentId === request.deploymentId) {
      return { status: 200, report: this.report({ deploymentId: current.deploymentId, outcome: 'running', storePath: current.storePath, log: '' }) };
    }
    return { status: 404, refusal: `deployment ${request.deploymentId} is unknown to this agent` };
  }

  private async saveNonces(): Promise<void> {
    this.state.nonces = this.nonces.entries();
    await this.file.save(this.state);
  }

  /** The store path the profile points to, if it exists. */
  private async currentPath(): Promise<string | undefined> {
    return realpath(this.options.profile).catch(() => undefined);
  }

  private async run(request: DeployRequest): Promise<void> {
    const log: string[] = [];
    const progress = this.state.inProgress!;
    try {
      await this.step(log, 'nix-store', [
        '--realise', request.storePath,
        '--option', 'substituters', request.cacheUrl,
        '--option', 'trusted-public-keys', request.publicKey,
        '--option', 'require-sigs', 'true',
      ], this.options.stepTimeoutMs);
    } catch (error) {
      await this.finish(request.deploymentId, request.storePath, 'failed', `realising ${request.storePath} from ${request.cacheUrl} failed: ${(error as Error).message}`, log);
      return;
    }
    try {
      // Journalled before the switch: a crash right after it must still roll back.
      progress.switched = true;
      await this.file.save(this.state);
      await this.step(log, 'nix-env', ['--profile', this.options.profile, '--set', request.storePath], this.options.stepTimeoutMs);
      await this.activate(request.storePath, log);
      if (this.options.healthCheck) {
        await this.step(log, '/bin/sh', ['-c', this.options.healthCheck, 'health-check', request.storePath], this.options.healthTimeoutMs);
      }
    } catch (error) {
      const reason = (error as Error).message;
      log.push(`rolling back: ${reason}`);
      await this.rollBack(progress, log).catch((rollbackError: unknown) => log.push(`rollback failed: ${(rollbackError as Error).message}`));
      await this.finish(request.deploymentId, request.storePath, 'rolled-back', reason, log);
      return;
    }
    await this.finish(request.deploymentId, request.storePath, 'succeeded', undefined, log);
  }

  private async activate(path: string, log: string[]): Promise<void> {
    const activation = this.options.activation;
    if (activation.kind === 'nixos') await this.step(log, `${path}/bin/switch-to-configuration`, ['switch'], this.options.stepTimeoutMs);
    else await this.step(log, '/bin/sh', ['-c', `${activation.command} "$1"`, 'activate', path], this.options.stepTimeoutMs);
  }

  /** Points the profile back at the previous path (if it was switched) and activates that path again. */
  private async rollBack(progress: { switched: boolean; previousPath?: string }, log: string[]): Promise<void> {
    if (!progress.switched) return;
    if (progress.previousPath === undefined) {
      log.push('no previous path to return to: the profile stays, nothing is re-activated');
      return;
    }
    await this.step(log, 'nix-env', ['--profile', this.options.profile, '--set', progress.previousPath], this.options.stepTimeoutMs);
    await this.activate(progress.previousPath, log);
  }

  private async finish(deploymentId: string, storePath: string, outcome: DeployReport['outcome'], reason: string | undefined, log: string[]): Promise<void> {
    const text = log.join('\n');
    const tail = text.length > LOG_TAIL_BYTES ? text.slice(-LOG_TAIL_BYTES) : text;
    this.state.reports.push(this.report({ deploymentId, outcome, storePath, log: tail, ...(reason ? { reason } : {}) }));
    delete this.state.inProgress;
    await this.file.save(this.state);
    this.options.log?.(`deployment ${deploymentId} of ${storePath}: ${outcome}${reason ? ` (${reason})` : ''}`);
  }

  /** Runs one command, appending its output to `log`; throws StepFailed naming it when it fails. */
  private async step(log: string[], file: string, args: string[], timeoutMs: number): Promise<void> {
    log.push(`$ ${[file, ...args].join(' ')}`);
    const result = await execa(file, args, { all: true, reject: false, timeout: timeoutMs, env: this.options.env });
    if (result.all) log.push(String(result.all));
    if (result.timedOut) throw new StepFailed(`${file} did not finish within ${Math.round(timeoutMs / 1000)} s`);
    if (result.exitCode !== 0) throw new StepFailed(`${file} ${args[0] ?? ''} exited with ${result.exitCode ?? result.signal}`);
  }
}
