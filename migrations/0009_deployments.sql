-- Deployments: a job's output on a configured ref, sent to the deploy agent of an environment.
-- The configuration (where the agent is, its secret) stays in the server configuration; a row
-- records what happened, for the dashboard and for people asking "what runs in production?".

CREATE TABLE deployments (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id   bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
  environment  text NOT NULL CHECK (environment ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$'),
  eval_id      bigint REFERENCES evaluations ON DELETE SET NULL,
  attr         text NOT NULL,
  store_path   text NOT NULL CHECK (store_path LIKE '/%'),
  status       text NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'awaiting-approval', 'sent', 'running', 'succeeded',
                                 'failed', 'rolled-back', 'refused', 'superseded', 'timed-out')),
  approved_by  text,
  reason       text,
  -- The tail of what the agent printed: realising, activation, health check, rollback.
  log          text,
  workflow_id  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  -- One deployment per eval and environment, so a retried trigger inserts nothing twice.
  UNIQUE (eval_id, environment)
);
CREATE INDEX deployments_project_env_created ON deployments (project_id, environment, created_at DESC);
