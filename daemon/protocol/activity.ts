/**
 * Turns the daemon's structured log stream into state a caller can show: the tree of running
 * activities with their phase and progress, and the builder's log lines in order.
 */
import { ActivityType, ResultType } from './constants.ts';
import type { ActivityResult, ActivityStart, LogField, StderrHandlers } from './stderr.ts';

/** Progress counters as Nix reports them (resProgress: done, expected, running, failed). */
export interface ActivityProgress {
  done: number;
  expected: number;
  running: number;
  failed: number;
}

/** One running activity. */
export interface ActivityState {
  id: bigint;
  type: number;
  typeName: string;
  text: string;
  fields: LogField[];
  parent: bigint;
  /** Build phase (resSetPhase), e.g. "buildPhase". */
  phase: string | undefined;
  progress: ActivityProgress | undefined;
  /** Expected totals by activity type (resSetExpected). */
  expected: Map<number, number>;
}

/** Where log output goes. */
export interface ActivitySinks {
  /** One line of builder output (resBuildLogLine / resPostBuildLogLine), without its newline. */
  onLogLine?(line: string, activity: ActivityState | undefined): void;
  /** A message of the daemon itself (STDERR_NEXT). */
  onMessage?(text: string): void;
  /** Called after any change to the activity tree. */
  onChange?(tracker: ActivityTracker): void;
}

const TYPE_NAMES = new Map<number, string>(Object.entries(ActivityType).map(([name, value]) => [value, name]));

function asNumber(field: LogField | undefined): number {
  return typeof field === 'number' ? field : typeof field === 'bigint' ? Number(field) : 0;
}

/** Keeps the activity tree of one operation. */
export class ActivityTracker {
  readonly activities = new Map<bigint, ActivityState>();
  /** Activities seen in total, including stopped ones. */
  started = 0;

  constructor(private readonly sinks: ActivitySinks = {}) {}

  /** Handlers to pass to a client operation. */
  handlers(): StderrHandlers {
    return {
      onMessage: (text) => this.sinks.onMessage?.(text),
      onStartActivity: (activity) => this.start(activity),
      onStopActivity: (id) => this.stop(id),
      onResult: (result) => this.result(result),
    };
  }

  /** Running activities of one type, e.g. ActivityType.Build. */
  ofType(type: number): ActivityState[] {
    return [...this.activities.values()].filter((a) => a.type === type);
  }

  private start(activity: ActivityStart): void {
    this.started++;
    this.activities.set(activity.id, {
      ...activity,
      typeName: TYPE_NAMES.get(activity.type) ?? `type ${activity.type}`,
      phase: undefined,
      progress: undefined,
      expected: new Map(),
    });
    this.sinks.onChange?.(this);
  }

  private stop(id: bigint): void {
    this.activities.delete(id);
    this.sinks.onChange?.(this);
  }

  private result(result: ActivityResult): void {
    const activity = this.activities.get(result.id);
    const [first, second, third, fourth] = result.fields;
    switch (result.type) {
      case ResultType.BuildLogLine:
      case ResultType.PostBuildLogLine:
        this.sinks.onLogLine?.(String(first ?? ''), activity);
        return;
      case ResultType.SetPhase:
        if (activity) activity.phase = String(first ?? '');
        break;
      case ResultType.Progress:
        if (activity) activity.progress = { done: asNumber(first), expected: asNumber(second), running: asNumber(third), failed: asNumber(fourth) };
        break;
      case ResultType.SetExpected:
        if (activity) activity.expected.set(asNumber(first), asNumber(second));
        break;
      default:
        return;
    }
    this.sinks.onChange?.(this);
  }
}
