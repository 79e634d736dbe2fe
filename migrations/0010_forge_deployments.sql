-- Deployments mirrored on the forge (a GitHub Deployment per row): the forge's id for it, so
-- every later state is sent as a status of that one deployment, and the last state sent, so a
-- repeated report sends nothing.

ALTER TABLE deployments ADD COLUMN forge_deployment_id bigint;
ALTER TABLE deployments ADD COLUMN forge_state text;
ALTER TABLE deployments ADD COLUMN forge_description text;
