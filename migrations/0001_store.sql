-- Layer 1: a mirror of the Nix store's derivation graph, shared by all projects.
-- (schema_migrations, the record of applied files, is created by db/migrate.ts.)

CREATE TABLE derivations (
  drv_path                 text PRIMARY KEY CHECK (drv_path LIKE '/%.drv'),
  name                     text NOT NULL,
  system                   text NOT NULL,
  required_system_features text[] NOT NULL DEFAULT '{}',
  prefer_local_build       boolean NOT NULL DEFAULT false,
  allow_substitutes        boolean NOT NULL DEFAULT true,
  created_at               timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE derivation_outputs (
  drv_path      text NOT NULL REFERENCES derivations ON DELETE CASCADE,
  output_name   text NOT NULL,
  -- NULL for a floating content-addressed output until it has been built.
  out_path      text CHECK (out_path LIKE '/%'),
  -- Canonical NAR hash and size: set by the first successful upload and never
  -- changed; builders compare their local copy against it (frankenbuild check).
  nar_hash      text CHECK (nar_hash LIKE 'sha256:%'),
  nar_size      bigint CHECK (nar_size >= 0),
  "references"  text[],
  registered_at timestamptz,
  PRIMARY KEY (drv_path, output_name),
  CHECK ((nar_hash IS NULL) = (nar_size IS NULL)),
  CHECK ((nar_hash IS NULL) = (registered_at IS NULL))
);
CREATE INDEX derivation_outputs_out_path ON derivation_outputs (out_path);

CREATE TABLE derivation_inputs (
  drv_path       text NOT NULL REFERENCES derivations ON DELETE CASCADE,
  -- Deferred so that a batch may insert a derivation before its inputs.
  input_drv_path text NOT NULL REFERENCES derivations DEFERRABLE INITIALLY DEFERRED,
  output_names   text[] NOT NULL CHECK (cardinality(output_names) > 0),
  PRIMARY KEY (drv_path, input_drv_path),
  CHECK (drv_path <> input_drv_path)
);
-- Reverse edges: who depends on a derivation (dep-failed propagation, rebuilds).
CREATE INDEX derivation_inputs_input ON derivation_inputs (input_drv_path);
