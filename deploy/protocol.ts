/**
 * What the CI and a deploy agent say to each other, and how each side knows the other said it.
 *
 * Glossary: a *deployment* makes one store path active in one *environment* (a host running the
 * agent); the *request* asks the agent to do it, the *report* is the agent's answer with the
 * outcome and its log. Every message is a JSON body signed with HMAC-SHA256 under the secret both
 * sides share (header `x-harmonia-signature: sha256=<hex>`); it carries its own time and a random
 * nonce, so a captured message is refused once its time window has passed or its nonce was seen.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-harmonia-signature';
/** How far a message's time may be from the receiver's clock. */
export const DEFAULT_WINDOW_MS = 5 * 60_000;

/** The CI asks the agent to activate a store path, realised from the cache with the key given. */
export interface DeployRequest {
  kind: 'deploy';
  deploymentId: string;
  project: string;
  environment: string;
  storePath: string;
  cacheUrl: string;
  publicKey: string;
  /** Milliseconds since the epoch when the message was made. */
  time: number;
  nonce: string;
}

/** The CI asks for the report of a deployment it requested. */
export interface StatusRequest {
  kind: 'status';
  deploymentId: string;
  time: number;
  nonce: string;
}

/** Where a deployment stands on the agent. */
export type AgentOutcome = 'running' | 'succeeded' | 'failed' | 'rolled-back' | 'refused';

/** The agent's answer to a request: accepted (running), refused, or the final outcome. */
export interface DeployReport {
  kind: 'report';
  deploymentId: string;
  outcome: AgentOutcome;
  storePath: string;
  /** Why, in one line, for refused, failed and rolled-back. */
  reason?: string;
  /** What realising, activation and the health check printed (the tail). */
  log: string;
  time: number;
  nonce: string;
}

export type SignedMessage = DeployRequest | StatusRequest | DeployReport;

/** Why a message was refused; the receiver answers 401 with this text. */
export class MessageRefused extends Error {
  override readonly name = 'MessageRefused';
}

/** A fresh nonce. */
export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

/** `sha256=<hex>` of `body` under `secret`. */
export function signBody(secret: Uint8Array | string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** The body and signature header of `message`. */
export function sealMessage(secret: Uint8Array | string, message: SignedMessage): { body: string; signature: string } {
  const body = JSON.stringify(message);
  return { body, signature: signBody(secret, body) };
}

/** Remembers nonces for as long as their messages could still be accepted. */
export class NonceLedger {
  private readonly seen = new Map<string, number>();

  constructor(private readonly windowMs = DEFAULT_WINDOW_MS) {}

  /** True the first time `nonce` is offered (within the window); false for a replay. */
  accept(nonce: string, now: number): boolean {
    for (const [old, at] of this.seen) {
      if (now - at <= 2 * this.windowMs) break;
      this.seen.delete(old);
    }
    if (this.seen.has(nonce)) return false;
    this.seen.set(nonce, now);
    return true;
  }

  /** Nonces seen within the window, to persist across restarts. */
  entries(): Array<[string, number]> {
    return [...this.seen];
  }

  restore(entries: ReadonlyArray<[string, number]>): void {
    for (const [nonce, at] of entries) this.seen.set(nonce, at);
  }
}

/**
 * Checks signature, time window and nonce of a received body and returns the message; throws
 * MessageRefused naming what is wrong. The nonce is recorded only when everything else holds.
 */
export function openMessage(
  secret: Uint8Array | string,
  body: string,
  signature: string | undefined,
  options: { now: number; windowMs?: number; nonces: NonceLedger; expect: SignedMessage['kind'] },
): SignedMessage {
  const expected = Buffer.from(signBody(secret, body));
  const given = Buffer.from(signature ?? '');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new MessageRefused(`the ${SIGNATURE_HEADER} header does not match the body: check that both sides use the same secret`);
  }
  let message: SignedMessage;
  try {
    message = JSON.parse(body) as SignedMessage;
  } catch {
    throw new MessageRefused('the body is not JSON');
  }
  if (message === null || typeof message !== 'object' || message.kind !== options.expect) {
    throw new MessageRefused(`expected a ${options.expect} message`);
  }
  if (typeof message.time !== 'number' || typeof message.nonce !== 'string' || message.nonce.length < 16) {
    throw new MessageRefused('the message lacks its time or nonce');
  }
  const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
  if (Math.abs(options.now - message.time) > windowMs) {
    throw new MessageRefused(`the message is ${Math.round((options.now - message.time) / 1000)} s old, outside the ${windowMs / 1000} s window: check both clocks`);
  }
  if (!options.nonces.accept(message.nonce, options.now)) throw new MessageRefused('the nonce was already used: a replayed message');
  return message;
}
