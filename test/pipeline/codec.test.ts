/**
 * With `temporal.codec-key-file` set, a real pipeline run leaves only ciphertext in Temporal: every
 * payload of every history (inputs, results, signals, heartbeats, memos) read without the key is
 * `binary/encrypted` and holds none of the run's text. The Web UI's codec endpoint decodes them for
 * the UI's origin alone and refuses altered ones.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@temporalio/client';
import { startCodecServer, type CodecServer } from '../../api/codec-server.ts';
import { EncryptionCodec, ENCRYPTED_ENCODING, generateCodecKeyText, parseCodecKey } from '../../temporal/codec.ts';
import { startPipeline, writeJobset, type Pipeline } from './harness.ts';

interface RawPayload {
  metadata?: Record<string, Uint8Array> | null;
  data?: Uint8Array | null;
  /** Where in the history it was found, for the failure message. */
  at?: string;
}

/** Every payload in a history, except search attributes (indexed by the server, never encoded). */
function payloadsIn(value: unknown, found: RawPayload[] = [], at = ''): RawPayload[] {
  if (!value || typeof value !== 'object') return found;
  if (Array.isArray(value)) {
    value.forEach((item, i) => payloadsIn(item, found, `${at}[${i}]`));
    return found;
  }
  const record = value as Record<string, unknown>;
  if ('metadata' in record && 'data' in record && record.data instanceof Uint8Array) {
    found.push({ ...(record as RawPayload), at });
    return found;
  }
  for (const [key, child] of Object.entries(record)) if (key !== 'searchAttributes') payloadsIn(child, found, `${at}.${key}`);
  return found;
}

const encodingOf = (payload: RawPayload): string => Buffer.from(payload.metadata?.encoding ?? []).toString();

describe('payloads encrypted with the codec key', () => {
  let pipeline: Pipeline;
  let keyText: string;
  let server: CodecServer | undefined;
  const marker = `codec-marker-${Date.now()}`;
  const uiOrigin = 'http://127.0.0.1:8233';

  before(async () => {
    keyText = generateCodecKeyText();
    const dir = await mkdtemp(join(tmpdir(), 'hci-codec-'));
    await writeFile(join(dir, 'codec.key'), keyText, { mode: 0o600 });
    pipeline = await startPipeline({ env: { HARMONIA_CI_TEMPORAL_CODEC_KEY_FILE: join(dir, 'codec.key') } });
  });
  after(async () => {
    await server?.close();
    await pipeline?.close();
  });

  const histories = async (): Promise<RawPayload[]> => {
    // A client without the key reads what the server stores, as the Web UI and `temporal workflow show` do.
    const raw = new Client({ connection: pipeline.client.connection, namespace: pipeline.stack.namespace });
    const payloads: RawPayload[] = [];
    for await (const workflow of raw.workflow.list()) {
      const history = await raw.workflow.getHandle(workflow.workflowId, workflow.runId).fetchHistory();
      payloadsIn(history.events, payloads, workflow.workflowId);
    }
    return payloads;
  };

  it('runs a jobset through encrypted payloads, and no history holds its text', async () => {
    const summary = await pipeline.run(await writeJobset(pipeline.dir, { [`job${Date.now()}`]: { script: `echo ${marker}` } }));
    assert.deepEqual(summary.jobs.map((job) => job.status), ['succeeded']);
    const payloads = await histories();
    assert.ok(payloads.length >= 5, `histories hold payloads (${payloads.length})`);
    for (const payload of payloads) {
      // Markers keep the SDK's own bookkeeping in the clear (a local activity's type, attempt and times;
      // a patch's name); a local activity's result is encrypted.
      const bookkeeping = /markerRecordedEventAttributes\.details\.(data|patch-data)\./.test(payload.at ?? '');
      if (!bookkeeping) assert.equal(encodingOf(payload), ENCRYPTED_ENCODING, `${payload.at}: ${Buffer.from(payload.data ?? []).toString().slice(0, 200)}`);
      assert.ok(!Buffer.from(payload.data ?? []).includes(marker), 'no payload holds the log tail or the job in the clear');
      assert.ok(!Buffer.from(payload.data ?? []).includes('/nix/store/'), 'no payload names a store path in the clear');
    }
  });

  it("decodes for the Web UI's origin alone, and refuses an altered payload", async () => {
    const codec = new EncryptionCodec(parseCodecKey(keyText, 'codec.key'));
    server = await startCodecServer({ codec, host: '127.0.0.1', port: 0, uiOrigin });
    const url = `http://127.0.0.1:${server.port}`;
    const [payload] = await histories();
    const wire = { metadata: Object.fromEntries(Object.entries(payload!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])), data: Buffer.from(payload!.data!).toString('base64') };
    const post = (path: string, body: unknown, origin = uiOrigin) =>
      fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', origin, 'x-namespace': pipeline.stack.namespace }, body: JSON.stringify(body) });

    const preflight = await fetch(`${url}/decode`, { method: 'OPTIONS', headers: { origin: uiOrigin, 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), uiOrigin);

    const decoded = await post('/decode', { payloads: [wire] });
    assert.equal(decoded.status, 200);
    const [plain] = ((await decoded.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> }).payloads;
    assert.notEqual(Buffer.from(plain!.metadata.encoding!, 'base64').toString(), ENCRYPTED_ENCODING, 'the UI gets the plain payload');

    const elsewhere = await post('/decode', { payloads: [wire] }, 'https://evil.example');
    assert.equal(elsewhere.status, 403);

    const altered = Buffer.from(payload!.data!);
    altered[altered.length - 1] = altered[altered.length - 1]! ^ 1;
    const refused = await post('/decode', { payloads: [{ ...wire, data: altered.toString('base64') }] });
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as { error: string }).error, /integrity check/);

    const clear = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('"signal"').toString('base64') };
    const passed = await post('/decode', { payloads: [clear] });
    assert.deepEqual(((await passed.json()) as { payloads: unknown[] }).payloads, [clear], 'a payload sent unencrypted (the temporal CLI) passes as it is');
    const encoded = await post('/encode', { payloads: [clear] });
    const [sealed] = ((await encoded.json()) as { payloads: Array<{ metadata: Record<string, string> }> }).payloads;
    assert.equal(Buffer.from(sealed!.metadata.encoding!, 'base64').toString(), ENCRYPTED_ENCODING);
  });
});
