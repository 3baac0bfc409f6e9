-- PostgreSQL had from the start the indexes that SQLite gained in its migration 2.
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX events_run ON events (run_id);
