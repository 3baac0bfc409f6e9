-- legato schema 1 on PostgreSQL: runs, their journals, buffered events, and live workers.
-- The same tables as on SQLite. Times are seconds since the epoch taken from the engine's
-- clock (never now() in SQL), so a time-skipping clock governs timers and leases.

CREATE TABLE legato_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  DOUBLE PRECISION NOT NULL
);

CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    workflow        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN
                        ('pending', 'running', 'waiting', 'completed', 'failed', 'cancelled')),
    input           TEXT NOT NULL,
    output          TEXT,
    error           TEXT,
    parent_run_id   TEXT,
    parent_seq      INTEGER,
    code_version    TEXT,
    owner           TEXT,
    wake_at         DOUBLE PRECISION,
    waiting_on      TEXT,
    created_at      DOUBLE PRECISION NOT NULL,
    updated_at      DOUBLE PRECISION NOT NULL,
    finished_at     DOUBLE PRECISION
);
CREATE INDEX runs_wake ON runs (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX runs_owner ON runs (owner) WHERE owner IS NOT NULL;
CREATE INDEX runs_status ON runs (status, workflow, created_at);
CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE entries (
    run_id       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'waiting', 'retrying')),
    input        TEXT,
    output       TEXT,
    error        TEXT,
    attempts     INTEGER NOT NULL DEFAULT 1,
    started_at   DOUBLE PRECISION,
    finished_at  DOUBLE PRECISION,
    wake_at      DOUBLE PRECISION,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE events (
    id            BIGSERIAL PRIMARY KEY,
    run_id        TEXT NOT NULL,
    name          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    consumed_seq  INTEGER
);
CREATE INDEX events_pending ON events (run_id, name, id) WHERE consumed_seq IS NULL;
CREATE INDEX events_run ON events (run_id);

CREATE TABLE workers (
    worker_id     TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    DOUBLE PRECISION NOT NULL,
    heartbeat_at  DOUBLE PRECISION NOT NULL
);
