/**
 * The load generator of `npm run bench -- cache`: CONCURRENCY keep-alive clients request the
 * given paths round-robin for SECONDS (after a one-second warm-up) and print one JSON line:
 * requests per second, latency percentiles, status counts.
 *
 *   node --import tsx bench/cache/load.ts <base-url> <paths-file> <seconds> <concurrency>
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';

const [base, pathsFile, secondsText, concurrencyText] = process.argv.slice(2);
if (!base || !pathsFile) throw new Error('usage: load.ts <base-url> <paths-file> <seconds> <concurrency>');
const paths = readFileSync(pathsFile, 'utf8').split('\n').filter(Boolean);
const seconds = Number(secondsText ?? 10);
const concurrency = Number(concurrencyText ?? 64);
const url = new URL(base);
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });

function get(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, agent, method: 'GET' }, (response) => {
      response.on('data', () => undefined);
      response.on('end', () => resolve(response.statusCode ?? 0));
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const latencies: number[] = [];
const statuses: Record<string, number> = {};
let next = 0;
let measuring = false;
let stop = false;

async function client(): Promise<void> {
  while (!stop) {
    const path = paths[next++ % paths.length]!;
    const started = performance.now();
    let status: string;
    try {
      status = String(await get(path));
    } catch (error) {
      status = (error as NodeJS.ErrnoException).code ?? 'error';
    }
    if (measuring) {
      latencies.push(performance.now() - started);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  }
}

const clients = Array.from({ length: concurrency }, () => client());
await new Promise((resolve) => setTimeout(resolve, 1000));
measuring = true;
const began = performance.now();
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
measuring = false;
const elapsed = (performance.now() - began) / 1000;
stop = true;
await Promise.all(clients);
agent.destroy();
latencies.sort((a, b) => a - b);
const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
process.stdout.write(`${JSON.stringify({ requests: latencies.length, perSecond: latencies.length / elapsed, p50: at(0.5), p99: at(0.99), statuses })}\n`);
