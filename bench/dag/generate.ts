/**
 * A layered DAG of trivial derivations for build benchmarks: `layers` × `width` derivations, each
 * outside the first layer reading two outputs of the layer before. Builders use /bin/sh built-ins
 * only. The nonce makes every generation a set of fresh store paths.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDerivation, type Derivation } from '../../daemon/core/derivation.ts';

/** Shape of the DAG. */
export interface DagShape {
  layers: number;
  width: number;
}

/** One instantiated derivation of the DAG. */
export interface DagNode {
  drvPath: string;
  drv: Derivation;
  /** `.drv` paths of the derivations this one reads. */
  dependencies: string[];
  /** Output paths it reads from them. */
  inputPaths: string[];
}

/** An instantiated DAG, nodes in topological order (layer by layer). */
export interface Dag {
  nodes: DagNode[];
  /** The Nix file that defines it (attribute per derivation), for nix-build. */
  nixFile: string;
  dispose(): void;
}

function attrName(layer: number, index: number): string {
  return `d${String(layer).padStart(3, '0')}_${String(index).padStart(4, '0')}`;
}

/** The Nix expression: an attribute set of all derivations. */
export function dagExpression(shape: DagShape, nonce: string): string {
  const lines = ['let mk = name: script: derivation { inherit name; builder = "/bin/sh"; args = [ "-c" script ]; system = builtins.currentSystem; };', 'in rec {'];
  for (let layer = 0; layer < shape.layers; layer++) {
    for (let i = 0; i < shape.width; i++) {
      const name = attrName(layer, i);
      if (layer === 0) {
        lines.push(`  ${name} = mk "${nonce}-${name}" "echo ${name} > $out";`);
      } else {
        // Two inputs from the previous layer: the same column and a pseudo-random other one.
        const other = (i * 37 + 11) % shape.width;
        const a = attrName(layer - 1, i);
        const b = attrName(layer - 1, other === i ? (i + 1) % shape.width : other);
        // Only the first word of each input is carried on, so outputs stay one short line however deep the DAG.
        lines.push(`  ${name} = mk "${nonce}-${name}" "read a rest < \${${a}}; read b rest < \${${b}}; echo ${name} $a $b > $out";`);
      }
    }
  }
  lines.push('}');
  return lines.join('\n');
}

/** Writes and instantiates a fresh DAG through the daemon at `socketPath`. */
export function instantiateDag(shape: DagShape, nonce: string, socketPath: string): Dag {
  const dir = mkdtempSync(join(tmpdir(), 'harmonia-dag-'));
  const nixFile = join(dir, 'dag.nix');
  writeFileSync(nixFile, dagExpression(shape, nonce));
  const env = { ...process.env, NIX_REMOTE: `unix://${socketPath}` };
  const options = ['--option', 'build-users-group', '', '--option', 'substituters', ''];
  // Attribute sets instantiate in attribute-name order, which is layer order here.
  const drvPaths = execFileSync('nix-instantiate', [...options, nixFile], { env, maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'ignore'] })
    .toString()
    .trim()
    .split('\n');
  const byPath = new Map<string, Derivation>();
  for (const drvPath of drvPaths) byPath.set(drvPath, parseDerivation(readFileSync(drvPath, 'utf8')));
  const nodes = drvPaths.map((drvPath) => {
    const drv = byPath.get(drvPath)!;
    const dependencies = [...drv.inputDrvs.keys()];
    const inputPaths = dependencies.flatMap((dep) => drv.inputDrvs.get(dep)!.map((output) => byPath.get(dep)!.outputs.get(output)!.path));
    return { drvPath, drv, dependencies, inputPaths };
  });
  return { nodes, nixFile, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Runs `work` for every node once all its dependencies are done, at most `parallel` at a time,
 * starting ready nodes in topological order. Rejects on the first failure.
 */
export async function runInTopologicalOrder(nodes: readonly DagNode[], parallel: number, work: (node: DagNode) => Promise<void>): Promise<void> {
  const remaining = new Map(nodes.map((node) => [node.drvPath, new Set(node.dependencies)]));
  const dependents = new Map<string, DagNode[]>();
  for (const node of nodes) for (const dep of node.dependencies) dependents.set(dep, [...(dependents.get(dep) ?? []), node]);
  const ready: DagNode[] = nodes.filter((node) => node.dependencies.length === 0);
  let running = 0;
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      if (done === nodes.length) return resolve();
      while (running < parallel && ready.length > 0) {
        const node = ready.shift()!;
        running++;
        work(node).then(() => {
          running--;
          done++;
          for (const dependent of dependents.get(node.drvPath) ?? []) {
            const waiting = remaining.get(dependent.drvPath)!;
            waiting.delete(node.drvPath);
            if (waiting.size === 0) ready.push(dependent);
          }
          pump();
        }, reject);
      }
    };
    pump();
  });
}
