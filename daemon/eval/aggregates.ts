/**
 * Hydra's aggregate jobs: an aggregate stands for its constituents, given as derivations or as
 * names of other jobs (`"tests.x86_64-linux.unit"`). Names are resolved once every job is known,
 * relative to each evaluated attribute (as Hydra and nix-eval-jobs resolve them from the jobset's
 * root) or as full paths. A missing name, a constituent that did not evaluate, and a cycle of
 * aggregates are errors of the aggregate alone: the rest of the eval stands.
 */
import { formatAttrPath, parseAttrPath } from './attr-path.ts';
import type { Constituent, EvalJob, EvalJobLine } from './types.ts';
import { isEvalJobError } from './types.ts';

/** Collects the job stream, holds the aggregates back, and resolves them at the end. */
export class AggregateResolver {
  private readonly drvOfAttr = new Map<string, string>();
  private readonly attrOfDrv = new Map<string, string>();
  private readonly errors = new Map<string, string>();
  private readonly held = new Map<string, EvalJob>();

  /** `selections`: the evaluated attribute paths, against which names are also resolved. */
  constructor(private readonly selections: string[][]) {}

  /** Records a line; true when it is an aggregate, held until `resolve`. */
  observe(line: EvalJobLine): boolean {
    if (isEvalJobError(line)) {
      this.errors.set(line.attr, line.error);
      return false;
    }
    this.drvOfAttr.set(line.attr, line.drvPath);
    if (!this.attrOfDrv.has(line.drvPath)) this.attrOfDrv.set(line.drvPath, line.attr);
    if (line.aggregate === undefined) return false;
    this.held.set(line.attr, line);
    return true;
  }

  /** The held aggregates, each with its constituents resolved or as an error line. */
  resolve(): EvalJobLine[] {
    const done = new Map<string, EvalJobLine>();
    const visiting: string[] = [];

    const visit = (attr: string): EvalJobLine => {
      const finished = done.get(attr);
      if (finished) return finished;
      const job = this.held.get(attr)!;
      const fail = (error: string): EvalJobLine => ({ attr: job.attr, attrPath: job.attrPath, error });
      visiting.push(attr);
      let line: EvalJobLine;
      try {
        line = this.resolveOne(job, (constituent) => {
          const at = visiting.indexOf(constituent);
          if (at >= 0) return `aggregate constituents form a cycle: ${[...visiting.slice(at), constituent].join(' → ')}; remove one of these names`;
          const result = visit(constituent);
          return isEvalJobError(result) ? `constituent '${constituent}' did not evaluate: ${firstLine(result.error)}` : undefined;
        });
      } catch (error) {
        line = fail((error as Error).message);
      }
      visiting.pop();
      done.set(attr, line);
      return line;
    };

    return [...this.held.keys()].sort().map(visit);
  }

  private resolveOne(job: EvalJob, checkAggregate: (attr: string) => string | undefined): EvalJobLine {
    const spec = job.aggregate!;
    const constituents: Constituent[] = [];
    const problems: string[] = [];
    const seen = new Set<string>();
    const add = (attr: string | null, drvPath: string): void => {
      if (seen.has(drvPath)) return;
      seen.add(drvPath);
      constituents.push({ attr, drvPath });
    };
    for (const name of spec.names) {
      const attr = this.lookup(name);
      if (attr === undefined) {
        problems.push(`constituent '${name}' names no job of this evaluation; use the attribute path of a job, e.g. '${formatAttrPath(job.attrPath)}'`);
        continue;
      }
      const error = this.errors.get(attr);
      if (error !== undefined) {
        problems.push(`constituent '${attr}' did not evaluate: ${firstLine(error)}`);
        continue;
      }
      if (attr === job.attr) {
        problems.push(`aggregate '${attr}' names itself as a constituent; remove that name`);
        continue;
      }
      if (this.held.has(attr)) {
        const problem = checkAggregate(attr);
        if (problem !== undefined) {
          problems.push(problem);
          continue;
        }
      }
      add(attr, this.drvOfAttr.get(attr)!);
    }
    for (const drvPath of spec.drvs) {
      if (drvPath === job.drvPath) continue;
      add(this.attrOfDrv.get(drvPath) ?? null, drvPath);
    }
    if (problems.length > 0) return { attr: job.attr, attrPath: job.attrPath, error: `aggregate job '${job.attr}': ${problems.join('; ')}` };
    const { aggregate: _spec, ...rest } = job;
    return { ...rest, constituents };
  }

  /** The job a name refers to: relative to an evaluated attribute, else as a full path. */
  private lookup(name: string): string | undefined {
    let path: string[];
    try {
      path = parseAttrPath(name);
    } catch {
      return this.known(name) ? name : undefined;
    }
    for (const selection of this.selections) {
      const attr = formatAttrPath([...selection, ...path]);
      if (this.known(attr)) return attr;
    }
    const attr = formatAttrPath(path);
    return this.known(attr) ? attr : undefined;
  }

  private known(attr: string): boolean {
    return this.drvOfAttr.has(attr) || this.errors.has(attr);
  }
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}
