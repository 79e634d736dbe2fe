/**
 * The test suite uses an existing PostgreSQL server (a local one with trust auth by
 * default) rather than starting its own; this checks that it answers before any test runs.
 */
import pg from 'pg';

export const DEFAULT_TEST_DATABASE_URL = 'postgresql://127.0.0.1:5432/postgres';

/** The URL with any password replaced, fit for messages and logs. */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

/** Connects to `url` and runs a query; returns the server version or throws saying how to fix it. */
export async function checkPostgres(url: string, timeoutMs = 5000): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
    const result = await client.query<{ server_version: string }>('show server_version');
    return result.rows[0]?.server_version ?? 'unknown';
  } catch (error) {
    const cause = error instanceof Error ? error.message : String(error);
    throw new Error(
      `PostgreSQL at ${redactDatabaseUrl(url)} does not answer (${cause}). Start the local server ` +
        '(`npm run bootstrap -- test` starts the Debian cluster with pg_ctlcluster) or set DATABASE_URL to a reachable server.',
      { cause: error },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
