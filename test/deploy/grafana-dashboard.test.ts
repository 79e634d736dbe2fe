/**
 * The shipped Grafana board: a dashboard Grafana imports (uid, schema version, a Prometheus
 * datasource variable that every panel and query uses), panels laid out on the 24-column grid
 * without overlapping, and every query valid PromQL (promtool checks it as a recording rule)
 * over metrics the API exports.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { exportedMetricNames, metricNamesIn } from '../helpers/metric-names.ts';
import { runPromtool } from '../helpers/promtool.ts';

const BOARD = join(PROJECT_ROOT, 'deploy', 'grafana', 'harmonia-ci.json');
const PANEL_TYPES = new Set(['row', 'stat', 'timeseries', 'table']);
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: Array<{ refId: string; expr: string; datasource?: { type: string; uid: string } }>;
}
interface Board {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: Array<{ name: string; type: string; query: string }> };
  panels: Panel[];
}

const board = async (): Promise<Board> => JSON.parse(await readFile(BOARD, 'utf8')) as Board;
const queries = (panels: Panel[]) => panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel, target })));

describe('the Grafana board', () => {
  it('is an importable dashboard whose panels use its Prometheus datasource variable', async () => {
    const { uid, title, schemaVersion, templating, panels } = await board();
    assert.match(uid, /^[a-z0-9-]{1,40}$/);
    assert.ok(title);
    assert.ok(Number.isInteger(schemaVersion) && schemaVersion >= 36, 'a schema version current Grafana reads');
    assert.deepEqual(templating.list.map((v) => [v.name, v.type, v.query]), [['datasource', 'datasource', 'prometheus']]);
    assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'panel ids are unique');
    for (const panel of panels) {
      assert.ok(PANEL_TYPES.has(panel.type), `panel "${panel.title}" has a known type, not ${panel.type}`);
      assert.ok(panel.title, `panel ${panel.id} has a title`);
      if (panel.type === 'row') continue;
      assert.deepEqual(panel.datasource, DATASOURCE, `panel "${panel.title}" uses the datasource variable`);
      assert.ok((panel.targets ?? []).length > 0, `panel "${panel.title}" has a query`);
      for (const target of panel.targets!) assert.deepEqual(target.datasource, DATASOURCE);
      assert.equal(new Set(panel.targets!.map((t) => t.refId)).size, panel.targets!.length, `panel "${panel.title}" has distinct refIds`);
    }
  });

  it('lays its panels out on the grid without overlaps', async () => {
    const { panels } = await board();
    const cells = new Map<string, string>();
    for (const { title, gridPos: { x, y, w, h } } of panels) {
      assert.ok(x >= 0 && w > 0 && x + w <= 24 && y >= 0 && h > 0, `"${title}" fits the 24-column grid`);
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          const other = cells.get(`${row}:${column}`);
          assert.equal(other, undefined, `"${title}" overlaps "${other}"`);
          cells.set(`${row}:${column}`, title);
        }
      }
    }
  });

  it('queries only metrics the API or a worker exports, in valid PromQL', async () => {
    const { panels } = await board();
    const exported = await exportedMetricNames();
    const all = queries(panels);
    assert.ok(all.length > 0);
    for (const { panel, target } of all) {
      const names = metricNamesIn(target.expr);
      assert.ok(names.length > 0, `"${panel.title}" ${target.refId} reads a harmonia-ci metric`);
      for (const name of names) assert.ok(exported.has(name), `"${panel.title}" reads ${name}, which no /metrics exports`);
    }
    // promtool parses each query as the expression of a recording rule.
    const dir = await mkdtemp(join(tmpdir(), 'grafana-board-'));
    try {
      const rules = all.map(({ target }, index) => ({ record: `board:query_${index}`, expr: target.expr }));
      const file = join(dir, 'board-queries.yml');
      await writeFile(file, stringify({ groups: [{ name: 'board', rules }] }));
      const checked = await runPromtool(['check', 'rules', file]);
      assert.equal(checked.exitCode, 0, checked.output);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
