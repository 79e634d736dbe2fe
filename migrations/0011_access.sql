-- People: API tokens for scripts and the command line, and the audit log of what people did.

-- A token is shown once when created; only its SHA-256 is kept. It acts for a forge user with at
-- most `scope` (further limited by that user's permissions on each project, unless an operator).
CREATE TABLE api_tokens (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  forge       text NOT NULL CHECK (forge IN ('github', 'gitea')),
  login       text NOT NULL CHECK (login <> ''),
  scope       text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
  token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  description text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  revoked_at  timestamptz,
  last_used_at timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (forge, lower(login));

-- Every action a person or token took over HTTP: who, what, on what, when, from where.
CREATE TABLE audit_log (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  actor      text NOT NULL,
  -- How the actor was recognised: a login session, or the id of an API token.
  via        text NOT NULL,
  action     text NOT NULL,
  target     text NOT NULL,
  project    text,
  remote     text NOT NULL,
  outcome    text NOT NULL
);
CREATE INDEX audit_log_project ON audit_log (project, at DESC) WHERE project IS NOT NULL;
CREATE INDEX audit_log_at ON audit_log (at DESC);
