-- Layer 2: repositories on a forge and the CI projects built from them.

CREATE TABLE repositories (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  forge                 text NOT NULL CHECK (forge IN ('github', 'gitea')),
  owner                 text NOT NULL,
  name                  text NOT NULL,
  clone_url             text NOT NULL,
  default_branch        text NOT NULL DEFAULT 'main',
  -- The forge's numeric id survives renames and transfers; owner/name do not.
  forge_repository_id   bigint,
  -- GitHub App installation that grants access (NULL for token-based forges).
  forge_installation_id bigint,
  private               boolean NOT NULL DEFAULT false,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now()
);
-- Forges compare owner and repository names case-insensitively.
CREATE UNIQUE INDEX repositories_forge_owner_name ON repositories (forge, lower(owner), lower(name));
CREATE UNIQUE INDEX repositories_forge_id ON repositories (forge, forge_repository_id)
  WHERE forge_repository_id IS NOT NULL;

CREATE TABLE projects (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  repository_id     bigint NOT NULL REFERENCES repositories ON DELETE CASCADE,
  -- Stable, URL-safe name used in workflow ids (ref/<project>/<ref>) and on the dashboard.
  name              text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)?$'),
  enabled           boolean NOT NULL DEFAULT true,
  scheduling_shares integer NOT NULL DEFAULT 100 CHECK (scheduling_shares > 0),
  pr_trust          text NOT NULL DEFAULT 'collaborators'
                    CHECK (pr_trust IN ('everyone', 'collaborators', 'none')),
  -- NULL: webhooks only; otherwise the forge is polled at this interval as well.
  poll_interval     interval CHECK (poll_interval IS NULL OR poll_interval >= interval '1 minute'),
  settings          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_repository ON projects (repository_id);
