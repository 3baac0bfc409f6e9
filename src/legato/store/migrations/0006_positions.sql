-- Journal format 3: an entry records its position within its branch, so an operation's identity
-- (entry number, idempotency key, child run id) is (branch, position): the same on every replay,
-- even when an earlier operation of the branch was in flight, and unrecorded, at a crash.
-- Entries of runs started before this keep a NULL position (formats 1 and 2).
ALTER TABLE entries ADD COLUMN position INTEGER;
-- A usage row names the entry that paid it by key (its storage number can change for an entry
-- that was in flight at a crash).
ALTER TABLE model_usage ADD COLUMN entry TEXT;
