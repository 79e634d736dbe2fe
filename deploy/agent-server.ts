/**
 * The deploy agent's HTTP side: `POST /deploy` and `POST /status`, each a signed JSON body, each
 * answered with a signed report; a refusal of the signature itself is a plain 401.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyReply } from 'fastify';
import type { AgentAnswer, DeployAgent } from './agent.ts';
import { sealMessage, SIGNATURE_HEADER } from './protocol.ts';

export interface AgentServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `agent` on `host:port` (0 picks a free port). */
export async function startAgentServer(agent: DeployAgent, secret: Uint8Array, host: string, port: number): Promise<AgentServer> {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  const send = (reply: FastifyReply, answer: AgentAnswer): FastifyReply => {
    if ('refusal' in answer) return reply.code(answer.status).type('text/plain; charset=utf-8').send(`${answer.refusal}\n`);
    const { body, signature } = sealMessage(secret, answer.report);
    return reply.code(answer.status).header(SIGNATURE_HEADER, signature).type('application/json').send(body);
  };
  const signatureOf = (headers: Record<string, string | string[] | undefined>): string | undefined => {
    const value = headers[SIGNATURE_HEADER];
    return typeof value === 'string' ? value : undefined;
  };
  app.post<{ Body: string }>('/deploy', async (request, reply) => send(reply, await agent.deploy(String(request.body ?? ''), signatureOf(request.headers))));
  app.post<{ Body: string }>('/status', async (request, reply) => send(reply, await agent.status(String(request.body ?? ''), signatureOf(request.headers))));
  await app.listen({ host, port });
  const bound = (app.server.address() as AddressInfo).port;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`, close: () => app.close() };
}
