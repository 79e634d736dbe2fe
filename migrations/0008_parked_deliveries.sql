-- A webhook delivery that keeps failing for a reason other than an outage (Temporal or the
-- forge unreachable, which are waited out) is parked after a few failures: it keeps its
-- error for people to read and no longer holds back the later deliveries of its ref.
-- `failures` counts only those failures; `attempts` counts every try.
ALTER TABLE forge_deliveries ADD COLUMN failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0);
ALTER TABLE forge_deliveries DROP CONSTRAINT forge_deliveries_status_check;
ALTER TABLE forge_deliveries ADD CONSTRAINT forge_deliveries_status_check
  CHECK (status IN ('pending', 'dispatched', 'ignored', 'parked'));
-- Parked deliveries are kept until a redelivery replaces them, not pruned with finished ones.
DROP INDEX forge_deliveries_finished;
CREATE INDEX forge_deliveries_finished ON forge_deliveries (finished_at) WHERE status IN ('dispatched', 'ignored');
CREATE INDEX forge_deliveries_parked ON forge_deliveries (finished_at) WHERE status = 'parked';
