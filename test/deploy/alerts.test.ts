/**
 * The shipped alert rules: `promtool check rules` accepts them, their unit tests
 * (alerts.rules-test.yml) pass under `promtool test rules`, the README explains each, and every
 * metric they read is one the API or a worker exports.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../lib/tools.ts';
import { exportedMetricNames, metricNamesIn } from '../helpers/metric-names.ts';
import { runPromtool } from '../helpers/promtool.ts';

const RULES = join(PROJECT_ROOT, 'deploy', 'prometheus', 'alerts.yml');
const RULE_TESTS = join(PROJECT_ROOT, 'test', 'deploy', 'alerts.rules-test.yml');

interface Rule {
  alert: string;
  expr: string;
}

describe('the alert rules', () => {
  it('pass promtool check rules', async () => {
    const checked = await runPromtool(['check', 'rules', RULES]);
    assert.equal(checked.exitCode, 0, checked.output);
  });

  it('load in the shipped Prometheus configuration (promtool check config)', async () => {
    const checked = await runPromtool(['check', 'config', join(PROJECT_ROOT, 'deploy', 'prometheus', 'prometheus.yml')]);
    assert.equal(checked.exitCode, 0, checked.output);
    assert.match(checked.output, /SUCCESS: \d+ rules found/);
  });

  it('pass their promtool unit tests, which cover every alert', async () => {
    const tested = await runPromtool(['test', 'rules', RULE_TESTS]);
    assert.equal(tested.exitCode, 0, tested.output);
    const rules = parse(await readFile(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> };
    const tests = parse(await readFile(RULE_TESTS, 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
    const firing = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const quiet = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname)));
    for (const { alert } of rules.groups.flatMap((group) => group.rules)) {
      assert.ok(firing.has(alert), `${alert} has a unit test in which it fires`);
      assert.ok(quiet.has(alert), `${alert} has a unit test in which it stays quiet`);
    }
  });

  it('each have a runbook line in the README', async () => {
    const readme = await readFile(join(PROJECT_ROOT, 'README.md'), 'utf8');
    const rules = parse(await readFile(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> };
    for (const { alert } of rules.groups.flatMap((group) => group.rules)) {
      assert.match(readme, new RegExp(`^\\| \`${alert}\` \\| .+ \\| .+ \\|$`, 'm'), `README's Observability table explains ${alert}`);
    }
  });

  it('read only metrics the API or a worker exports', async () => {
    const exported = await exportedMetricNames();
    const rules = parse(await readFile(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> };
    for (const rule of rules.groups.flatMap((group) => group.rules)) {
      const names = metricNamesIn(rule.expr);
      assert.ok(names.length > 0 || rule.expr.includes('up{'), `${rule.alert} reads a harmonia-ci metric`);
      for (const name of names) assert.ok(exported.has(name), `${rule.alert} reads ${name}, which no /metrics exports`);
    }
  });
});
