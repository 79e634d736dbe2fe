/**
 * What a deploy agent keeps on disk (`<state-dir>/state.json`, replaced atomically): the deployment
 * in progress (a journal, so a restart can roll back what it interrupted), the time of the newest
 * request it accepted (older ones are refused), recent reports (the CI asks for them) and recent
 * nonces (a replay across a restart is refused too).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeployReport } from './protocol.ts';

/** Reports kept for the CI to fetch. */
const REPORTS_KEPT = 50;

export interface InProgress {
  deploymentId: string;
  storePath: string;
  /** What the profile pointed to before (undefined: the profile did not exist). */
  previousPath?: string;
  /** True once the profile was switched: a restart must roll it back. */
  switched: boolean;
}

export interface AgentState {
  inProgress?: InProgress;
  newestRequestTime: number;
  reports: DeployReport[];
  nonces: Array<[string, number]>;
}

/** Reads and writes the agent's state file. */
export class AgentStateFile {
  private readonly file: string;

  constructor(private readonly dir: string) {
    this.file = join(dir, 'state.json');
  }

  async load(): Promise<AgentState> {
    try {
      return JSON.parse(await readFile(this.file, 'utf8')) as AgentState;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return { newestRequestTime: 0, reports: [], nonces: [] };
    }
  }

  /** The write under way, if any: writes go one after the other through one temporary file. */
  private writing: Promise<void> = Promise.resolve();

  /**
   * Writes `state` so that a crash leaves either the old or the new file, never half of one.
   * Saves that overlap (a status request's nonce while a deployment finishes) are written in
   * turn: two at once would rename one temporary file twice.
   */
  save(state: AgentState): Promise<void> {
    const written = this.writing.then(() => this.write(state));
    this.writing = written.catch(() => undefined);
    return written;
  }

  private async write(state: AgentState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const trimmed = { ...state, reports: state.reports.slice(-REPORTS_KEPT) };
    const temporary = `${this.file}.tmp`;
    await writeFile(temporary, JSON.stringify(trimmed), { mode: 0o600 });
    await rename(temporary, this.file);
  }
}
