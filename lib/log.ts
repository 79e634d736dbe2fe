/**
 * Process-wide logging: pino, human-readable on a terminal and JSON lines
 * otherwise, on stderr so command output on stdout stays clean.
 */
import { pino } from 'pino';
import type { DestinationStream, Level, Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';

export type { Logger } from 'pino';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevelName = (typeof LEVELS)[number];

export interface LoggerOptions {
  /** Minimum level; defaults to `$HARMONIA_CI_LOG_LEVEL`, then `info`. */
  level?: string;
  /** Human-readable output; defaults to whether stderr is a terminal. */
  pretty?: boolean;
  /** Bound as `name` on every line (the role, e.g. `builder`). */
  name?: string;
  /** Where lines go; defaults to stderr. */
  destination?: DestinationStream & NodeJS.WritableStream;
  /** Environment read for the level; defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** A pino logger writing pretty lines on a terminal and JSON otherwise. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = resolveLevel(options.level, options.env ?? process.env);
  const pretty = options.pretty ?? (options.destination === undefined && process.stderr.isTTY === true);
  const destination = pretty
    ? PinoPretty({
        destination: options.destination ?? 2,
        sync: true,
        colorize: options.destination === undefined,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
      })
    : (options.destination ?? pino.destination({ dest: 2, sync: true }));
  return pino({ level, ...(options.name === undefined ? {} : { name: options.name }) }, destination);
}

function resolveLevel(explicit: string | undefined, env: Readonly<Record<string, string | undefined>>): LogLevelName {
  const fromEnv = env.HARMONIA_CI_LOG_LEVEL?.trim();
  const [level, source] = explicit !== undefined ? [explicit, 'log level'] : fromEnv ? [fromEnv, 'HARMONIA_CI_LOG_LEVEL'] : ['info', ''];
  const normalized = level.toLowerCase();
  if ((LEVELS as readonly string[]).includes(normalized)) return normalized as LogLevelName;
  throw new Error(`${source}: expected one of ${LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
}

type TemporalLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

const TO_PINO: Record<TemporalLevel, Level> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/** The Temporal level that lets through what `logger` would print. */
export function temporalLevelFor(level: string): TemporalLevel {
  switch (level) {
    case 'trace':
      return 'TRACE';
    case 'debug':
      return 'DEBUG';
    case 'info':
      return 'INFO';
    case 'warn':
      return 'WARN';
    default:
      return 'ERROR';
  }
}

/**
 * Installs the Temporal Runtime with a logger that writes into `logger`: SDK,
 * workflow and activity logs, plus the Rust core's own logs (forwarded).
 * Call once per process, before creating any Temporal worker or connection.
 */
export async function routeTemporalLogs(
  logger: Logger,
  /** Signals on which Temporal shuts every worker down itself; `[]` leaves them to the caller (a draining builder). */
  options: {
    shutdownSignals?: NodeJS.Signals[];
    /** Where the SDK's own Prometheus exporter listens (`host:port`); none when absent. */
    prometheusBindAddress?: string;
  } = {},
): Promise<void> {
  // Loaded on demand: the worker package brings the native core, which processes
  // that only log (the CLI, the API) should not pay for.
  const { DefaultLogger, Runtime, makeTelemetryFilterString } = await import('@temporalio/worker');
  const level = temporalLevelFor(logger.level);
  const temporal = logger.child({ component: 'temporal' });
  Runtime.install({
    logger: new DefaultLogger(level, (entry) => {
      temporal[TO_PINO[entry.level]]({ ...entry.meta }, entry.message);
    }),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: level, other: 'ERROR' }), forward: {} },
      ...(options.prometheusBindAddress === undefined
        ? {}
        : { metrics: { prometheus: { bindAddress: options.prometheusBindAddress, countersTotalSuffix: true, useSecondsForDurations: true } } }),
    },
    ...(options.shutdownSignals === undefined ? {} : { shutdownSignals: options.shutdownSignals }),
  });
}
