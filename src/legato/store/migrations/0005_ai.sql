-- The AI layer: what every model call used and cost, a response cache shared across runs, and
-- the tenant a run belongs to (budgets per tenant per day).
ALTER TABLE runs ADD COLUMN tenant TEXT;

CREATE TABLE model_usage (
    id $serial_key,
    run_id TEXT NOT NULL,
    workflow TEXT NOT NULL,
    tenant TEXT,
    seq INTEGER NOT NULL,
    deployment TEXT NOT NULL,
    alias TEXT,
    kind TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    cost_nanousd $bigint,
    cost_usd TEXT,
    price_version TEXT,
    cache_hit $bool NOT NULL,
    at $real NOT NULL,
    day TEXT NOT NULL
);
CREATE INDEX model_usage_run ON model_usage (run_id);
CREATE INDEX model_usage_workflow_day ON model_usage (workflow, day);
CREATE INDEX model_usage_tenant_day ON model_usage (tenant, day);

CREATE TABLE response_cache (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at $real NOT NULL,
    expires_at $real NOT NULL
);
