-- Evaluations of a commit of a project, and the attributes they produced.

CREATE TABLE evaluations (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id  bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
  commit_sha  text NOT NULL CHECK (commit_sha ~ '^[0-9a-f]{40}([0-9a-f]{24})?$'),
  -- Full git ref: refs/heads/main, refs/pull/12/head, refs/heads/gh-readonly-queue/...
  ref         text NOT NULL CHECK (ref LIKE 'refs/%'),
  tree_hash   text CHECK (tree_hash ~ '^[0-9a-f]{40}([0-9a-f]{24})?$'),
  event       text NOT NULL DEFAULT 'push'
              CHECK (event IN ('push', 'pull_request', 'merge_group', 'poll', 'manual')),
  pull_request integer CHECK (pull_request > 0),
  status      text NOT NULL DEFAULT 'queued'
              CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'skipped')),
  error       text,
  -- For a skipped eval: the succeeded eval with the same tree whose results were copied.
  copied_from bigint REFERENCES evaluations ON DELETE SET NULL,
  workflow_id text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  started_at  timestamptz,
  finished_at timestamptz,
  -- A redelivered webhook finds the row and starts nothing (INSERT ... ON CONFLICT DO NOTHING).
  UNIQUE (project_id, commit_sha, ref),
  CHECK (copied_from IS NULL OR status = 'skipped'),
  CHECK (error IS NULL OR status IN ('failed', 'cancelled'))
);
CREATE INDEX evaluations_project_created ON evaluations (project_id, created_at DESC);
CREATE INDEX evaluations_project_ref_created ON evaluations (project_id, ref, created_at DESC);
CREATE INDEX evaluations_created ON evaluations (created_at DESC);
CREATE INDEX evaluations_active ON evaluations (status) WHERE status IN ('queued', 'running');
-- Tree-hash skip: a succeeded eval of the same project with the same tree.
CREATE INDEX evaluations_tree ON evaluations (project_id, tree_hash) WHERE status = 'succeeded';

CREATE TABLE eval_attrs (
  eval_id  bigint NOT NULL REFERENCES evaluations ON DELETE CASCADE,
  attr     text NOT NULL,
  drv_path text REFERENCES derivations DEFERRABLE INITIALLY DEFERRED,
  error    text,
  PRIMARY KEY (eval_id, attr),
  -- An attribute either evaluated to a derivation or failed with an error.
  CHECK ((drv_path IS NULL) <> (error IS NULL))
);
CREATE INDEX eval_attrs_drv_path ON eval_attrs (drv_path);
