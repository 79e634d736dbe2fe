/** Prometheus' own checker (`promtool`, Debian's prometheus package) run over text the project produces. */
import { execa } from 'execa';
import { locateTool } from '../../lib/tools.ts';

function promtool(): string {
  return locateTool({ name: 'promtool', envVar: 'HARMONIA_CI_PROMTOOL', installHint: "`npm run bootstrap -- test` installs Debian's prometheus package, which has it" });
}

/** Runs `promtool <args>` with `input` on stdin; returns its exit code and output. */
export async function runPromtool(args: readonly string[], input?: string): Promise<{ exitCode: number; output: string }> {
  const result = await execa(promtool(), args, { input: input ?? '', reject: false, all: true });
  return { exitCode: result.exitCode ?? -1, output: result.all ?? '' };
}
