-- What the eval → build pipeline needs beyond the base schema.

-- `harmonia-ci run <dir>` and `eval <path>` build local checkouts: a repository
-- whose clone URL is a directory on the evaluator's host.
ALTER TABLE repositories DROP CONSTRAINT repositories_forge_check;
ALTER TABLE repositories ADD CONSTRAINT repositories_forge_check CHECK (forge IN ('github', 'gitea', 'local'));

-- When this eval started (or joined) the build's workflow. Builds an eval has
-- not subscribed to yet are its wavefront: started once their inputs are done.
ALTER TABLE evaluation_builds ADD COLUMN subscribed_at timestamptz;
CREATE INDEX evaluation_builds_unsubscribed ON evaluation_builds (eval_id) WHERE subscribed_at IS NULL;

-- What the evaluator needs to report per eval without recounting.
ALTER TABLE evaluations ADD COLUMN cached_jobs integer NOT NULL DEFAULT 0 CHECK (cached_jobs >= 0);
