-- legato schema 1: runs, their journals, buffered events, and live workers.
-- Times are seconds since the epoch taken from the engine's clock, never from SQL, so a
-- time-skipping clock governs timers and leases the same way the system clock does.
--
-- Files here are shared by both dialects; a word that starts with a dollar sign is each
-- dialect's own (see __init__.py), and sqlite/ and postgres/ add what only one of them runs.

CREATE TABLE legato_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  $real NOT NULL
);

CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    workflow        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN
                        ('pending', 'running', 'waiting', 'completed', 'failed', 'cancelled')),
    input           TEXT NOT NULL,            -- JSON {"args": [...], "kwargs": {...}}
    output          TEXT,                     -- JSON result when completed
    error           TEXT,                     -- JSON {"type", "message", "traceback"} when failed
    parent_run_id   TEXT,
    parent_seq      INTEGER,
    code_version    TEXT,
    owner           TEXT,                     -- worker holding the lease while running
    -- When the run next becomes claimable: now for pending runs, the timer for waiting ones,
    -- the lease expiry for running ones; NULL when nothing but an outside signal can wake it.
    wake_at         $real,
    waiting_on      TEXT,                     -- what a waiting run waits for, for people to read
    created_at      $real NOT NULL,
    updated_at      $real NOT NULL,
    finished_at     $real
);
CREATE INDEX runs_wake ON runs (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX runs_owner ON runs (owner) WHERE owner IS NOT NULL;
CREATE INDEX runs_status ON runs (status, workflow, created_at);
CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

CREATE TABLE entries (
    run_id       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    kind         TEXT NOT NULL,               -- step, sleep, event, child, now, random, uuid, patch
    name         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'waiting', 'retrying')),
    input        TEXT,
    output       TEXT,
    error        TEXT,
    attempts     INTEGER NOT NULL DEFAULT 1,
    started_at   $real,
    finished_at  $real,
    wake_at      $real,                        -- deadline of a sleep, event timeout or retry
    PRIMARY KEY (run_id, seq)
)$without_rowid;

CREATE TABLE events (
    id            $serial_key,
    run_id        TEXT NOT NULL,
    name          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    $real NOT NULL,
    consumed_seq  INTEGER                     -- journal entry that received it
);
CREATE INDEX events_pending ON events (run_id, name, id) WHERE consumed_seq IS NULL;

CREATE TABLE workers (
    worker_id     TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    $real NOT NULL,
    heartbeat_at  $real NOT NULL
);
