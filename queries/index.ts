/**
 * The read model: the only place the API, the dashboard and the command line read PostgreSQL
 * state from. Workflows and activities write that state; everything that shows it to people
 * (JSON routes, HTML pages, live updates, `status`, `logs`, `nodes`, `run`) reads it through the
 * modules here, so each thing has one row type and one query:
 *
 * - evals: `EvalSummary`/`EvalDetail` for operators (evals.ts), `EvalOverview` for the
 *   dashboard (eval-overviews.ts), and their build progress counted for a whole page at once
 *   (progress.ts);
 * - builds: `BuildRow`, the state of a build that every view shares, with `BuildSummary`,
 *   `BuildDetail` and `BuildLog` (builds.ts), and the dashboard's build page (build-page.ts);
 * - jobs: `EvalJob`, an eval's attributes with their builds (jobs.ts);
 * - nodes: `NodeSummary` (nodes.ts);
 * - projects: `ProjectPage` (projects.ts).
 *
 * Modules return plain JSON-ready objects (ISO times, string ids); the SQL stays in each module.
 */
export * from './build-page.ts';
export * from './builds.ts';
export * from './eval-overviews.ts';
export * from './evals.ts';
export * from './jobs.ts';
export * from './nodes.ts';
export * from './progress.ts';
export * from './projects.ts';
