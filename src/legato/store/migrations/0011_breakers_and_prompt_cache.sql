-- Circuit breakers shared by every worker of the database: a row per deployment that failed
-- lately. ``open_until`` is set once ``failures`` in a row reach the limit; after it, one
-- worker at a time holds the half-open probe (``probe_until`` bounds a probe whose worker died).
CREATE TABLE breakers (
    deployment TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    open_until $real,
    probe_until $real
);
-- What a usage row's prompt-cache reads saved (negative when cache writes cost more than the
-- reads saved), in nano-dollars like its cost; NULL when the price is unknown.
ALTER TABLE model_usage ADD COLUMN cache_saved_nanousd $bigint;
