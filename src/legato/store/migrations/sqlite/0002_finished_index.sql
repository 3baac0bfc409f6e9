-- Retention (`legato gc`) looks finished runs up by when they finished.
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX events_run ON events (run_id);
