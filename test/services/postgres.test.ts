/** Round trip through the PostgreSQL server at DATABASE_URL, which test/run.ts checked before the tests. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import pg from 'pg';
import { requireEnv } from '../helpers/env.ts';

describe('PostgreSQL', () => {
  it('runs parameterised queries and a transaction on a temporary table', async () => {
    const client = new pg.Client({ connectionString: requireEnv('DATABASE_URL') });
    await client.connect();
    try {
      const echo = await client.query<{ text: string; sum: number }>('select $1::text as text, $2::int + 1 as sum', ['round trip', 41]);
      assert.deepEqual(echo.rows, [{ text: 'round trip', sum: 42 }]);

      const value = randomUUID();
      await client.query('create temporary table harmonia_round_trip (id uuid primary key)');
      await client.query('begin');
      await client.query('insert into harmonia_round_trip values ($1)', [value]);
      await client.query('rollback');
      assert.equal((await client.query('select count(*)::int as n from harmonia_round_trip')).rows[0].n, 0);
      await client.query('insert into harmonia_round_trip values ($1)', [value]);
      const stored = await client.query<{ id: string }>('select id from harmonia_round_trip');
      assert.deepEqual(stored.rows, [{ id: value }]);
    } finally {
      await client.end();
    }
  });
});
