/**
 * CPU time by program, from /proc (Linux only): shows where a benchmark's cores went — this
 * process (workers, embedded database), the Temporal server, nix-daemon and its builders. Only
 * this process and what descends from it count, so other work on the machine does not.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';

/** Seconds of CPU per program name, children that exited included (they are added to their parent). */
export type CpuSnapshot = Map<string, number>;

const TICKS_PER_SECOND = 100;

interface ProcessCpu {
  name: string;
  parent: number;
  seconds: number;
}

/** This process and its descendants, by pid, from /proc/<pid>/stat; empty where /proc is missing. */
async function ourProcesses(): Promise<Map<number, ProcessCpu>> {
  const processes = new Map<number, ProcessCpu>();
  const pids = (await readdir('/proc').catch(() => [])).filter((name) => /^\d+$/.test(name));
  await Promise.all(
    pids.map(async (pid) => {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
      if (!stat) return;
      // comm is in parentheses and may hold spaces; the fields after it are space-separated.
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      // ppid is field 4 (1-based); utime, stime, cutime, cstime are 14 to 17: 1 and 11 to 14 after comm.
      const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
      processes.set(Number(pid), { name: stat.slice(stat.indexOf('(') + 1, close), parent: Number(fields[1]), seconds: ticks / TICKS_PER_SECOND });
    }),
  );
  const ours = (pid: number): boolean => {
    for (let at = pid, hops = 0; at > 1 && hops < 64; hops++) {
      if (at === process.pid) return true;
      at = processes.get(at)?.parent ?? 0;
    }
    return false;
  };
  for (const pid of [...processes.keys()]) if (!ours(pid)) processes.delete(pid);
  return processes;
}

/** CPU seconds used so far by this process and its descendants, summed per program name. */
export async function snapshotCpu(): Promise<CpuSnapshot> {
  const totals: CpuSnapshot = new Map();
  for (const { name, seconds } of (await ourProcesses()).values()) totals.set(name, (totals.get(name) ?? 0) + seconds);
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

/** Peak resident memory (VmHWM) in MiB of this process and its descendants, per program name (the largest process of each). */
export function peakMemory(): Promise<Map<string, number>> {
  return memory('VmHWM');
}

/** Resident memory now (VmRSS) in MiB of this process and its descendants, per program name (the largest process of each). */
export function currentMemory(): Promise<Map<string, number>> {
  return memory('VmRSS');
}

async function memory(field: 'VmHWM' | 'VmRSS'): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  const pattern = new RegExp(`^${field}:\\s*(\\d+)`, 'm');
  await Promise.all(
    [...(await ourProcesses())].map(async ([pid, { name }]) => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
      const kib = Number.parseInt(pattern.exec(status ?? '')?.[1] ?? '0', 10);
      sizes.set(name, Math.max(sizes.get(name) ?? 0, kib / 1024));
    }),
  );
  return sizes;
}

/** `node 900 MiB, temporal 400 MiB`: the largest peaks. */
export function describeMemory(peaks: Map<string, number>, most = 3): string {
  return [...peaks]
    .sort((a, b) => b[1] - a[1])
    .slice(0, most)
    .map(([name, mib]) => `${name} ${mib.toFixed(0)} MiB`)
    .join(', ');
}

/** CPU per unit of work between two snapshots, for the busiest programs: `node 58 ms, temporal 35 ms`. */
export function describeCpuPer(before: CpuSnapshot, after: CpuSnapshot, count: number, most = 3): string {
  return [...after]
    .map(([name, seconds]) => [name, seconds - (before.get(name) ?? 0)] as const)
    .filter(([, seconds]) => seconds >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .slice(0, most)
    .map(([name, seconds]) => `${name} ${((seconds * 1000) / count).toFixed(1)} ms`)
    .join(', ');
}

/**
 * Starts the peak-memory count (VmHWM) afresh for this process and its descendants, so a later
 * `peakMemory()` shows the peak of what ran since (Linux: `5` in /proc/<pid>/clear_refs).
 */
export async function resetPeakMemory(): Promise<void> {
  await Promise.all([...(await ourProcesses()).keys()].map((pid) => writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined)));
}
