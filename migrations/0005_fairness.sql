-- Fair sharing of builder time between projects: consumption decays with a
-- 13-hour half-life; the project with the least consumption per share goes first.

CREATE TABLE project_usage (
  project_id      bigint PRIMARY KEY REFERENCES projects ON DELETE CASCADE,
  -- Builder seconds consumed, already decayed up to decayed_at.
  builder_seconds double precision NOT NULL DEFAULT 0 CHECK (builder_seconds >= 0),
  decayed_at      timestamptz NOT NULL DEFAULT now()
);

-- `seconds` as of `since`, decayed to `at` (46800 s = 13 h half-life).
CREATE FUNCTION decayed_builder_seconds(seconds double precision, since timestamptz, at timestamptz)
  RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT seconds * power(0.5, greatest(0, extract(epoch FROM at - since))::double precision / 46800) $$;

-- Adds a finished build's builder time to its project's decayed consumption.
CREATE FUNCTION record_builder_time(project bigint, seconds double precision)
  RETURNS void
  LANGUAGE sql
  AS $$
    INSERT INTO project_usage AS u (project_id, builder_seconds, decayed_at)
    VALUES (project, seconds, now())
    ON CONFLICT (project_id) DO UPDATE
      SET builder_seconds = decayed_builder_seconds(u.builder_seconds, u.decayed_at, now()) + excluded.builder_seconds,
          decayed_at = now()
  $$;

-- Scheduling order: lower seconds_per_share first.
CREATE VIEW project_fairness AS
  SELECT p.id AS project_id,
         p.scheduling_shares,
         coalesce(decayed_builder_seconds(u.builder_seconds, u.decayed_at, now()), 0) AS builder_seconds,
         coalesce(decayed_builder_seconds(u.builder_seconds, u.decayed_at, now()), 0) / p.scheduling_shares AS seconds_per_share
    FROM projects p
    LEFT JOIN project_usage u ON u.project_id = p.id;
