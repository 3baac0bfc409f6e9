-- Supervision: approvals, the hash-chained audit log, autonomy levels and paused workflows.

CREATE TABLE approvals (
    approval_id   TEXT PRIMARY KEY,           -- derived from (run_id, seq): replay finds it again
    run_id        TEXT NOT NULL,
    seq           INTEGER NOT NULL,           -- the journal entry that waits for it
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,              -- 'approval', or 'tool' for a gated tool call
    status        TEXT NOT NULL CHECK (status IN
                      ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    prompt        TEXT,
    data          TEXT,                       -- JSON of what is to be approved
    data_hash     TEXT NOT NULL,              -- binds the decision to exactly this data
    data_schema   TEXT,                       -- JSON Schema that edited data must satisfy
    assignees     TEXT,                       -- JSON list
    risk          TEXT,
    reason        TEXT,
    expires_at    $real,
    on_timeout    TEXT,
    decided_data  TEXT,
    decided_by    TEXT,
    comment       TEXT,
    decided_at    $real,
    consumed_at   $real,                       -- when the waiting entry took the decision
    created_at    $real NOT NULL,
    UNIQUE (run_id, seq)
);
CREATE INDEX approvals_status ON approvals (status, created_at);

CREATE TABLE audit (
    seq        $bigint PRIMARY KEY,           -- gapless: each row is the previous plus one
    at         $real NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT,
    run_id     TEXT,
    subject    TEXT,
    detail     TEXT NOT NULL,                 -- JSON
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_run ON audit (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX audit_kind_subject ON audit (kind, subject, at);

CREATE TABLE autonomy (
    actor       TEXT PRIMARY KEY,
    level       INTEGER NOT NULL CHECK (level BETWEEN 0 AND 3),
    set_by      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    updated_at  $real NOT NULL
);

CREATE TABLE paused (
    workflow    TEXT PRIMARY KEY,
    paused_by   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    paused_at   $real NOT NULL
);
