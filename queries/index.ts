/**
 * The read model: the only place the API, the dashboard and the command line read PostgreSQL
 * state from. Workflows and activities write that state; everything that shows it to people
 * (JSON routes, HTML pages, live updates, `status`, `logs`, `nodes`, `run`) reads it through the
 * modules here, so each thing has one row type and one query:
 *
 * - evals: `EvalRow`, which every eval view extends: `EvalSummary`/`EvalDetail` for operators
 *   (evals.ts), `EvalOverview` for the dashboard (eval-overviews.ts); build progress is counted
 *   for a whole page of evals in one statement (progress.ts);
 * - builds: `BuildRow`, the state of a build, which `BuildSummary`, `BuildDetail`, the jobs'
 *   `JobBuild` and the build page's `BuildRecordView` extend (builds.ts, build-page.ts);
 * - jobs: `EvalJob`, an eval's attributes with their builds, of which `JobSummary` is the
 *   operator's projection (jobs.ts);
 * - nodes: `NodeSummary` (nodes.ts);
 * - webhook deliveries the dispatcher gave up on: `ParkedDelivery` (deliveries.ts);
 * - the audit log of what people did over HTTP: `AuditRecord` (audit.ts);
 * - projects: `ProjectSummary` and `ProjectPage` (projects.ts); the repositories they are built
 *   from, `RepositoryListing` (repositories.ts).
 *
 * Modules return plain JSON-ready objects (ISO times, string ids); the SQL stays in each module.
 */
export * from './audit.ts';
export * from './build-page.ts';
export * from './builds.ts';
export * from './deliveries.ts';
export * from './eval-overviews.ts';
export * from './evals.ts';
export * from './jobs.ts';
export * from './nodes.ts';
export * from './progress.ts';
export * from './projects.ts';
export * from './repositories.ts';
export * from './job-history.ts';
