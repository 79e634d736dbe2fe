-- What Hydra jobsets rely on: aggregate jobs, the `meta` of each job (and its limits),
-- failed-with-output builds and build products.

-- An aggregate job's constituents, resolved: [{"attr": "tests.unit" | null, "drvPath": "…"}].
-- Null for an ordinary job.
ALTER TABLE eval_attrs ADD COLUMN constituents jsonb
  CHECK (constituents IS NULL OR jsonb_typeof(constituents) = 'array');
-- The job's description, maintainers, license and limits as its `meta` gave them.
ALTER TABLE eval_attrs ADD COLUMN meta jsonb
  CHECK (meta IS NULL OR jsonb_typeof(meta) = 'object');

-- A build that produced output but holds `nix-support/failed`: kept and served, counted as failed.
ALTER TABLE build_jobs DROP CONSTRAINT build_jobs_status_check;
ALTER TABLE build_jobs ADD CONSTRAINT build_jobs_status_check
  CHECK (status IN ('pending', 'building', 'uploading', 'succeeded', 'failed', 'dep-failed',
                    'cancelled', 'timed-out', 'failed-with-output'));

-- Files a build's outputs offer for download (`nix-support/hydra-build-products`), in the order
-- the outputs list them; replaced when the derivation is built again.
CREATE TABLE build_products (
  drv_path     text NOT NULL REFERENCES derivations ON DELETE CASCADE,
  position     integer NOT NULL CHECK (position >= 0),
  type         text NOT NULL CHECK (type ~ '^[A-Za-z0-9_-]+$'),
  subtype      text NOT NULL CHECK (subtype ~ '^[A-Za-z0-9_-]+$'),
  -- Inside one of the derivation's outputs, with no symbolic link on the way.
  path         text NOT NULL CHECK (path LIKE '/%'),
  name         text NOT NULL,
  -- For a directory: the file to open first.
  default_path text,
  -- For a regular file: its size and SHA-256 (hex); null for a directory.
  file_size    bigint CHECK (file_size >= 0),
  sha256       text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  PRIMARY KEY (drv_path, position)
);

-- A job's `meta.timeout` and `meta.maxSilent` (seconds), applied to its derivation's build
-- within the server's limits (`limits.build-timeout`, `limits.max-silent`).
ALTER TABLE derivations ADD COLUMN timeout_seconds integer CHECK (timeout_seconds > 0);
ALTER TABLE derivations ADD COLUMN max_silent_seconds integer CHECK (max_silent_seconds > 0);
