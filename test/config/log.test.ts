/**
 * Logging: pino output, level selection, and the Temporal Runtime (SDK and Rust
 * core) routed into it — against the test suite's real Temporal dev server.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, routeTemporalLogs, temporalLevelFor } from '../../lib/log.ts';

function capture(): { stream: PassThrough; lines: () => string[] } {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  return { stream, lines: () => chunks.join('').split('\n').filter((l) => l !== '') };
}

describe('createLogger', () => {
  it('writes JSON lines at the level from HARMONIA_CI_LOG_LEVEL', () => {
    const out = capture();
    const log = createLogger({ destination: out.stream, env: { HARMONIA_CI_LOG_LEVEL: 'warn' }, name: 'builder' });
    log.info('hidden');
    log.warn({ drv: 'hello.drv' }, 'shown');
    const lines = out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.msg, 'shown');
    assert.equal(lines[0]?.drv, 'hello.drv');
    assert.equal(lines[0]?.name, 'builder');
    assert.equal(createLogger({ destination: out.stream, env: {}, level: 'debug' }).level, 'debug', 'an explicit level wins');
    assert.equal(createLogger({ destination: out.stream, env: {} }).level, 'info');
  });

  it('writes readable lines when pretty', () => {
    const out = capture();
    createLogger({ destination: out.stream, pretty: true, env: {} }).info({ attempt: 2 }, 'building hello');
    const [line, detail] = out.lines();
    assert.match(line ?? '', /INFO.*building hello/);
    assert.doesNotMatch(line ?? '', /^\{/);
    assert.match(detail ?? '', /attempt: 2/);
  });

  it('names the variable when the level is not one pino knows', () => {
    assert.throws(() => createLogger({ env: { HARMONIA_CI_LOG_LEVEL: 'verbose' } }), {
      message: 'HARMONIA_CI_LOG_LEVEL: expected one of trace, debug, info, warn, error, fatal, silent, got "verbose"',
    });
  });

  it('maps pino levels onto Temporal levels', () => {
    assert.deepEqual(
      ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].map(temporalLevelFor),
      ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'ERROR', 'ERROR'],
    );
  });
});

describe('routeTemporalLogs', () => {
  it('sends SDK and Rust core log lines into the pino logger', async () => {
    const address = process.env.TEMPORAL_ADDRESS;
    assert.ok(address, 'TEMPORAL_ADDRESS is not set: run through npm test');
    const out = capture();
    await routeTemporalLogs(createLogger({ destination: out.stream, level: 'info' }));
    const { NativeConnection, Worker } = await import('@temporalio/worker');
    const connection = await NativeConnection.connect({ address });
    try {
      const taskQueue = `log-test-${process.pid}`;
      const worker = await Worker.create({ connection, taskQueue, activities: { noop: async () => undefined } });
      const running = worker.run();
      worker.shutdown();
      await running;
    } finally {
      await connection.close();
    }
    // Core lines are forwarded through a 100 ms sorting buffer.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const lines = out.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.every((l) => l.component === 'temporal'));
    assert.ok(
      lines.some((l) => l.sdkComponent === 'core' && l.msg === 'Initializing worker' && l.level === 30),
      'a line from the Rust core arrives at info level',
    );
    assert.ok(lines.some((l) => l.sdkComponent === 'worker' && l.state === 'STOPPED'), 'a line from the TypeScript SDK arrives');
  });
});
