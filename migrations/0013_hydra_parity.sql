-- What Hydra jobsets rely on: aggregate jobs and the `meta` of each job.

-- An aggregate job's constituents, resolved: [{"attr": "tests.unit" | null, "drvPath": "…"}].
-- Null for an ordinary job.
ALTER TABLE eval_attrs ADD COLUMN constituents jsonb
  CHECK (constituents IS NULL OR jsonb_typeof(constituents) = 'array');
-- The job's description, maintainers, license and limits as its `meta` gave them.
ALTER TABLE eval_attrs ADD COLUMN meta jsonb
  CHECK (meta IS NULL OR jsonb_typeof(meta) = 'object');
