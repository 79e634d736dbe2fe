/** The goals the dag benchmark checks (issue "dispatch cost and reaction time"), each printed with its figure and pass mark. */

export interface Goal {
  name: string;
  measured: number;
  /** The most the figure may be; NaN where this shape has no goal. */
  goal: number;
  /** Appended to both numbers: ' ms', ' MiB', '×'. */
  unit: string;
}

const figure = (value: number, unit: string): string => `${unit === '×' ? value.toFixed(2) : value.toFixed(0)}${unit}`;

/** `✔ name: 612 ms (goal ≤ 800 ms, 0.77 of it)`; a goal this shape has none for is shown as measured only. */
export function describeGoal({ name, measured, goal, unit }: Goal): string {
  if (Number.isNaN(goal)) return `· ${name}: ${figure(measured, unit)} (measured; no goal set for it)`;
  const mark = measured <= goal ? '✔' : '✘';
  return `${mark} ${name}: ${figure(measured, unit)} (goal ≤ ${figure(goal, unit)}, ${(measured / goal).toFixed(2)} of it)`;
}
