/**
 * `harmonia-ci nodes`: the builders that registered (through their heartbeats), what they build,
 * how many builds run on each, when each was last heard from, and which are draining.
 */
import type { Command } from 'commander';
import type { NodeSummary } from '../../queries/index.ts';
import { HEARTBEAT_INTERVAL_MS } from '../../workers/node-agent.ts';
import { formatDuration, formatTable } from '../format.ts';
import { print, SERVER_OPTION, withOperator, type OperatorOptions } from '../operator.ts';

interface NodesOptions extends OperatorOptions {
  json: boolean;
}

/** A node missing this many heartbeats is shown as silent (it may be down). */
const MISSED_HEARTBEATS = 3;

/** `draining`, `silent` or `up`. */
export function nodeState(node: NodeSummary): string {
  if (node.draining) return node.running > 0 ? 'draining' : 'drained';
  return node.secondsSinceSeen * 1000 > MISSED_HEARTBEATS * HEARTBEAT_INTERVAL_MS ? 'silent' : 'up';
}

/** Registers `harmonia-ci nodes`. */
export function registerNodes(program: Command): void {
  program
    .command('nodes')
    .description('list the builders: systems, features, max jobs, running builds, last heartbeat, draining')
    .option('--json', 'print JSON instead of a table', false)
    .option('--config <file>', 'server configuration file (default: $HARMONIA_CI_CONFIG)')
    .option(...SERVER_OPTION)
    .action((options: NodesOptions) =>
      withOperator(options, async ({ reads }) => {
        const nodes = await reads.listNodes();
        if (options.json) {
          print(JSON.stringify(nodes));
          return;
        }
        if (nodes.length === 0) {
          print('no builders have registered; start one with `harmonia-ci worker builder`');
          return;
        }
        const rows = [['NODE', 'STATE', 'SYSTEMS', 'FEATURES', 'MAX JOBS', 'RUNNING', 'LAST SEEN', 'VERSION']];
        for (const node of nodes) {
          rows.push([
            node.name,
            nodeState(node),
            node.systems.join(','),
            node.features.join(',') || '-',
            String(node.maxJobs),
            String(node.running),
            `${formatDuration(node.secondsSinceSeen)} ago`,
            node.version ?? '-',
          ]);
        }
        print(formatTable(rows));
      }),
    );
}
