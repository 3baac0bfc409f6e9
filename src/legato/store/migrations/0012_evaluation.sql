-- Continuous evaluation: what each finished run measured, rollups that `legato stats` reads
-- (kept in the run's ending transaction), evaluations, and the state of monitors that act.

-- One row per run end: the figures monitors compare over windows of runs.
CREATE TABLE run_metrics (
    run_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    tenant TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at $real NOT NULL,
    finished_at $real NOT NULL,
    duration $real NOT NULL,
    cost_nanousd $bigint NOT NULL,
    unknown_cost INTEGER NOT NULL,
    tokens $bigint NOT NULL,
    calls INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    approvals INTEGER NOT NULL,
    approved INTEGER NOT NULL,
    edited INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    timed_out INTEGER NOT NULL
);
CREATE INDEX run_metrics_workflow ON run_metrics (workflow, finished_at, run_id);
CREATE INDEX run_metrics_finished ON run_metrics (finished_at, run_id);

-- Sums per hour, workflow, tenant, kind (run, step, tool, llm, eval), name and outcome:
-- a few rows per hour whatever the number of runs. ``shard`` spreads a key over a few rows
-- where writers run concurrently (PostgreSQL: by connection), so run ends do not queue on one
-- row's lock; readers sum the shards.
CREATE TABLE metric_rollup (
    hour $bigint NOT NULL,
    workflow TEXT NOT NULL,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    outcome TEXT NOT NULL,
    shard INTEGER NOT NULL,
    n $bigint NOT NULL,
    duration $real NOT NULL,
    cost_nanousd $bigint NOT NULL,
    unknown_cost $bigint NOT NULL,
    tokens $bigint NOT NULL,
    calls $bigint NOT NULL,
    retries $bigint NOT NULL,
    approvals $bigint NOT NULL,
    approved $bigint NOT NULL,
    edited $bigint NOT NULL,
    rejected $bigint NOT NULL,
    timed_out $bigint NOT NULL,
    wait $real NOT NULL,
    allowed $bigint NOT NULL,
    denied $bigint NOT NULL,
    throttled $bigint NOT NULL,
    repairs $bigint NOT NULL,
    fallbacks $bigint NOT NULL,
    invalid $bigint NOT NULL,
    passed $bigint NOT NULL,
    score $real NOT NULL,
    PRIMARY KEY (kind, workflow, hour, tenant, name, outcome, shard)
);

-- One row per evaluation, written once (its key) whether inline or shadow.
CREATE TABLE evaluations (
    id $serial_key,
    key TEXT NOT NULL UNIQUE,
    run_id TEXT NOT NULL,
    workflow TEXT NOT NULL,
    tenant TEXT NOT NULL,
    evaluator TEXT NOT NULL,
    target TEXT NOT NULL,
    entry TEXT,
    mode TEXT NOT NULL,
    score $real NOT NULL,
    passed $bool NOT NULL,
    reason TEXT NOT NULL,
    at $real NOT NULL
);
CREATE INDEX evaluations_evaluator ON evaluations (evaluator, at, id);
CREATE INDEX evaluations_run ON evaluations (run_id);

-- A monitor's state; claim_* is the lease under which one worker evaluates one window.
CREATE TABLE monitors (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    window_done $bigint NOT NULL,
    cursor_at $real,
    cursor_key TEXT,
    healthy INTEGER NOT NULL,
    last_value $real,
    last_low $real,
    last_high $real,
    last_n INTEGER,
    last_baseline $real,
    evaluated_at $real,
    fired_at $real,
    restored_at $real,
    saved TEXT NOT NULL,
    claim_owner TEXT,
    claim_window $bigint,
    claim_until $real
);

-- Webhook alerts to deliver, retried until they are (an outbox).
CREATE TABLE alerts (
    id $serial_key,
    monitor TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_at $real NOT NULL,
    delivered_at $real,
    last_error TEXT,
    created_at $real NOT NULL
);
CREATE INDEX alerts_due ON alerts (delivered_at, next_at);

-- Aliases a monitor (or a person) rerouted: alias -> deployment, read by every worker.
CREATE TABLE route_overrides (
    alias TEXT PRIMARY KEY,
    deployment TEXT NOT NULL,
    set_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    updated_at $real NOT NULL
);
