-- Schedules: a workflow started on a cron expression. Each tick starts at most one run, whose id
-- is the schedule's and the tick's, so workers that fire the same tick at once start it once.
CREATE TABLE schedules (
    schedule_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    cron TEXT NOT NULL,
    tz TEXT NOT NULL,
    input TEXT NOT NULL,
    catchup TEXT NOT NULL,
    overlap TEXT NOT NULL,
    -- 'code': declared with @app.schedule (a worker keeps it in step); 'api': added at run time
    source TEXT NOT NULL,
    paused $bool NOT NULL,
    next_at $real NOT NULL,
    last_tick_at $real,
    last_run_id TEXT,
    -- overlap 'buffer': the tick that waits for the previous run to end
    buffered_at $real,
    fired INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    created_at $real NOT NULL,
    updated_at $real NOT NULL
);
CREATE INDEX schedules_next ON schedules (next_at);
