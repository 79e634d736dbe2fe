-- Builds (one row per derivation, shared by every eval that needs it), their
-- live log tails, and the builder hosts.

CREATE TABLE build_jobs (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  drv_path            text NOT NULL UNIQUE REFERENCES derivations,
  status              text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'building', 'uploading', 'succeeded',
                                        'failed', 'dep-failed', 'cancelled', 'timed-out')),
  -- For dep-failed: the failed derivation at the root of the failure, not the direct input.
  dep_failed_drv_path text REFERENCES derivations,
  -- Attempts so far, counting infrastructure retries.
  attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  -- Higher goes first; a manual rebuild raises it.
  priority            integer NOT NULL DEFAULT 0,
  -- Builder host of the latest attempt. Not a foreign key: history outlives removed nodes.
  node                text,
  workflow_id         text,
  error               text,
  exit_code           integer,
  -- Total NAR size of the outputs, and the size of the build log as stored.
  output_size         bigint CHECK (output_size >= 0),
  log_size            bigint CHECK (log_size >= 0),
  log_truncated       boolean NOT NULL DEFAULT false,
  created_at          timestamptz NOT NULL DEFAULT now(),
  started_at          timestamptz,
  upload_started_at   timestamptz,
  finished_at         timestamptz,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'dep-failed') = (dep_failed_drv_path IS NOT NULL)),
  CHECK (dep_failed_drv_path <> drv_path)
);
CREATE INDEX build_jobs_status_updated ON build_jobs (status, updated_at DESC);
CREATE INDEX build_jobs_active ON build_jobs (priority DESC, created_at)
  WHERE status IN ('pending', 'building', 'uploading');
CREATE INDEX build_jobs_finished ON build_jobs (finished_at DESC) WHERE finished_at IS NOT NULL;
CREATE INDEX build_jobs_node_active ON build_jobs (node) WHERE status IN ('building', 'uploading');
CREATE INDEX build_jobs_dep_failed ON build_jobs (dep_failed_drv_path) WHERE dep_failed_drv_path IS NOT NULL;

-- The builds an eval planned (derivations not already in a cache), for its progress counts.
CREATE TABLE evaluation_builds (
  eval_id  bigint NOT NULL REFERENCES evaluations ON DELETE CASCADE,
  build_id bigint NOT NULL REFERENCES build_jobs ON DELETE CASCADE,
  PRIMARY KEY (eval_id, build_id)
);
CREATE INDEX evaluation_builds_build ON evaluation_builds (build_id);

-- The last few kilobytes of a running build's log, rewritten every couple of
-- seconds. UNLOGGED: losing it in a crash is fine, and the writes skip the WAL.
CREATE UNLOGGED TABLE build_log_tails (
  build_id   bigint PRIMARY KEY REFERENCES build_jobs ON DELETE CASCADE,
  tail       text NOT NULL DEFAULT '',
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE nodes (
  name          text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$'),
  systems       text[] NOT NULL CHECK (cardinality(systems) > 0),
  features      text[] NOT NULL DEFAULT '{}',
  max_jobs      integer NOT NULL CHECK (max_jobs > 0),
  draining      boolean NOT NULL DEFAULT false,
  version       text,
  registered_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now()
);
