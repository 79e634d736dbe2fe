/**
 * CPU time by program, from /proc (Linux only): shows where a benchmark's cores went — this
 * process (workers, embedded database), the Temporal server, nix-daemon and its builders.
 */
import { readdir, readFile } from 'node:fs/promises';

/** Seconds of CPU per program name, children that exited included (they are added to their parent). */
export type CpuSnapshot = Map<string, number>;

const TICKS_PER_SECOND = 100;

/** CPU seconds used so far by every process, summed per program name; empty where /proc is missing. */
export async function snapshotCpu(): Promise<CpuSnapshot> {
  const totals: CpuSnapshot = new Map();
  const pids = (await readdir('/proc').catch(() => [])).filter((name) => /^\d+$/.test(name));
  await Promise.all(
    pids.map(async (pid) => {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
      if (!stat) return;
      // comm is in parentheses and may hold spaces; the fields after it are space-separated.
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // utime, stime, cutime, cstime are fields 14 to 17 (1-based), i.e. 11 to 14 after comm.
      const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
      totals.set(name, (totals.get(name) ?? 0) + ticks / TICKS_PER_SECOND);
    }),
  );
  return totals;
}

/** The programs that used the most CPU between two snapshots, as `name 1.2 s` parts. */
export function describeCpu(before: CpuSnapshot, after: CpuSnapshot, most = 4): string {
  const used = [...after]
    .map(([name, seconds]) => [name, seconds - (before.get(name) ?? 0)] as const)
    .filter(([, seconds]) => seconds >= 0.05)
    .sort((a, b) => b[1] - a[1]);
  const total = used.reduce((sum, [, seconds]) => sum + seconds, 0);
  const parts = used.slice(0, most).map(([name, seconds]) => `${name} ${seconds.toFixed(1)} s`);
  return `${total.toFixed(1)} s in all: ${parts.join(', ')}`;
}
