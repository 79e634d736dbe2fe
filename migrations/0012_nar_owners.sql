-- Which outputs a NAR in the cache holds, by its NAR hash: the cache answers a request for
-- nar/<hash>.nar.zst only to those who may see a project that built one of them.
CREATE INDEX derivation_outputs_nar_hash ON derivation_outputs (nar_hash) WHERE nar_hash IS NOT NULL;
