-- Forge integration: webhook deliveries waiting to become push signals, the commit
-- statuses already sent, and the webhook registered on a Gitea repository.

-- A durable outbox between the webhook reply and Temporal: the API stores what a
-- delivery asks for, answers 202, and a dispatcher turns it into a `push` signal,
-- retrying while Temporal or the forge is unavailable. The same delivery twice
-- is stored once (forge, delivery_id).
CREATE TABLE forge_deliveries (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  forge           text NOT NULL CHECK (forge IN ('github', 'gitea')),
  delivery_id     text NOT NULL,
  event           text NOT NULL,
  project_id      bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
  -- Deliveries of one ref are dispatched in the order they arrived.
  ref             text NOT NULL CHECK (ref LIKE 'refs/%'),
  intent          jsonb NOT NULL CHECK (jsonb_typeof(intent) = 'object'),
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'dispatched', 'ignored')),
  -- Why a delivery was ignored, or the last error while it is retried.
  outcome         text,
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- A dispatcher working on the delivery holds it until then (several API processes may run).
  lease_until     timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz,
  UNIQUE (forge, delivery_id)
);
CREATE INDEX forge_deliveries_pending ON forge_deliveries (project_id, ref, id) WHERE status = 'pending';
CREATE INDEX forge_deliveries_finished ON forge_deliveries (finished_at) WHERE status <> 'pending';

-- The last commit status sent for an eval and context: identical reports are not sent
-- again, and `sent` keeps each commit below GitHub's 1000 statuses per sha and context.
CREATE TABLE forge_statuses (
  eval_id     bigint NOT NULL REFERENCES evaluations ON DELETE CASCADE,
  context     text NOT NULL,
  state       text NOT NULL CHECK (state IN ('pending', 'success', 'failure', 'error')),
  description text NOT NULL,
  sent        integer NOT NULL DEFAULT 0 CHECK (sent >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (eval_id, context)
);

-- The webhook harmonia-ci registered on the repository when the project was enabled (Gitea).
ALTER TABLE projects ADD COLUMN forge_hook_id bigint;
