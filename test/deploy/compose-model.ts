/**
 * docker-compose.yml as the real compose CLI normalizes it (merge keys and anchors resolved by
 * compose itself), for the tests that check its structure.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../lib/tools.ts';

export const composeFile = join(PROJECT_ROOT, 'docker-compose.yml');

export interface Service {
  image?: string;
  user?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | null>;
  secrets?: Array<string | { source: string }>;
  volumes?: Array<string | { source?: string; target: string; read_only?: boolean }>;
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string };
  stop_grace_period?: string;
  restart?: string;
}
export interface ComposeModel {
  services: Record<string, Service>;
  secrets?: Record<string, { file?: string }>;
  volumes?: Record<string, unknown>;
}

/** `docker compose` (v2 plugin) when present, else docker-compose (v1 or v2 standalone). */
async function findComposeCli(): Promise<string[]> {
  for (const cli of [['docker', 'compose'], ['docker-compose']]) {
    const [file, ...args] = cli as [string, ...string[]];
    const probe = await execa(file, [...args, 'version'], { reject: false });
    if (probe.exitCode === 0) return cli;
  }
  assert.fail('neither `docker compose` nor `docker-compose` is installed: run through npm test (its bootstrap installs docker-compose)');
}

/** The compose CLI found, and the file as `<cli> config` prints it (which fails on an invalid file). */
export async function loadComposeModel(): Promise<{ cli: string[]; model: ComposeModel }> {
  const cli = await findComposeCli();
  const [file, ...args] = cli as [string, ...string[]];
  const result = await execa(file, [...args, '-f', composeFile, 'config'], { cwd: PROJECT_ROOT, reject: false });
  assert.equal(result.exitCode, 0, `${cli.join(' ')} config failed:\n${result.stderr}`);
  return { cli, model: parse(result.stdout) as ComposeModel };
}

export function secretsOf(service: Service): string[] {
  return (service.secrets ?? []).map((s) => (typeof s === 'string' ? s : s.source));
}

export function argv(value: string[] | string | undefined): string {
  return Array.isArray(value) ? value.join(' ') : (value ?? '');
}

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** Named volumes and bind mounts: v1 prints `source:target:mode`, v2 prints objects. */
export function mountsOf(service: Service): Mount[] {
  return (service.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source ?? '', target: v.target, readOnly: v.read_only === true };
    const [source = '', target = '', mode = 'rw'] = v.split(':');
    return { source, target, readOnly: mode.split(',').includes('ro') };
  });
}

/** The condition `service` waits for on `dependency`, if it depends on it. */
export function conditionOf(model: ComposeModel, service: string, dependency: string): string | undefined {
  const deps = model.services[service]?.depends_on;
  return deps && !Array.isArray(deps) ? deps[dependency]?.condition : undefined;
}
