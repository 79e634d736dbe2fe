-- Which commit statuses an eval sends (`statuses` in .harmonia-ci.toml or the project's settings):
-- `summary` (the two aggregate contexts), `failures` (also one per failed attribute) or `all`
-- (one per attribute). NULL: evals recorded before the setting existed, which send the summary.
ALTER TABLE evaluations ADD COLUMN statuses text CHECK (statuses IN ('summary', 'failures', 'all'));
