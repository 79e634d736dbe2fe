/**
 * The CI's side of the conversation with a deploy agent: sends a signed request and checks the
 * signature, time and nonce of the report that comes back. Transport failures (no connection, 5xx,
 * a timeout) are AgentUnreachable, worth retrying; a refusal is final.
 */
import { DEFAULT_WINDOW_MS, newNonce, NonceLedger, openMessage, sealMessage, SIGNATURE_HEADER, type DeployReport, type DeployRequest, type StatusRequest } from './protocol.ts';

/** The agent could not be reached or failed to answer: try again later. */
export class AgentUnreachable extends Error {
  override readonly name = 'AgentUnreachable';
}

/** The agent answered, but not with a message signed by the shared secret, or refused ours. */
export class AgentRefused extends Error {
  override readonly name = 'AgentRefused';
}

/** Talks to one agent. */
export class DeployAgentClient {
  private readonly nonces = new NonceLedger(DEFAULT_WINDOW_MS);

  constructor(
    private readonly url: string,
    private readonly secret: Uint8Array,
    private readonly timeoutMs = 30_000,
  ) {}

  /** Asks the agent to deploy; answers its report (`running` once accepted, or `refused`). */
  deploy(fields: Omit<DeployRequest, 'kind' | 'time' | 'nonce'>): Promise<DeployReport | undefined> {
    return this.send('/deploy', { kind: 'deploy', ...fields, time: Date.now(), nonce: newNonce() });
  }

  /** The agent's report of a deployment; undefined when it does not know it. */
  status(deploymentId: string): Promise<DeployReport | undefined> {
    const request: StatusRequest = { kind: 'status', deploymentId, time: Date.now(), nonce: newNonce() };
    return this.send('/status', request);
  }

  private async send(path: string, message: DeployRequest | StatusRequest): Promise<DeployReport | undefined> {
    const { body, signature } = sealMessage(this.secret, message);
    let response: Response;
    try {
      response = await fetch(new URL(path, this.url), {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new AgentUnreachable(`the deploy agent at ${this.url} is unreachable: ${(error as Error).message}`, { cause: error });
    }
    const text = await response.text().catch(() => '');
    if (response.status === 404 && path === '/status') return undefined;
    if (response.status === 401) throw new AgentRefused(`the deploy agent at ${this.url} refused the request: ${text.trim()}`);
    if (response.status >= 500 && response.status !== 503) throw new AgentUnreachable(`the deploy agent at ${this.url} answered ${response.status}: ${text.trim().slice(0, 200)}`);
    let report: DeployReport;
    try {
      report = openMessage(this.secret, text, response.headers.get(SIGNATURE_HEADER) ?? undefined, { now: Date.now(), nonces: this.nonces, expect: 'report' }) as DeployReport;
    } catch (error) {
      throw new AgentRefused(`the answer of the deploy agent at ${this.url} (${response.status}) is not to be trusted: ${(error as Error).message}`);
    }
    if (report.deploymentId !== message.deploymentId) throw new AgentRefused(`the deploy agent at ${this.url} answered about another deployment`);
    // Busy with another deployment: the same as unreachable for now.
    if (response.status === 503) throw new AgentUnreachable(`the deploy agent at ${this.url} is busy: ${report.reason ?? ''}`);
    return report;
  }
}
