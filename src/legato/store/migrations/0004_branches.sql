-- Journal entries remember the branch (asyncio task path inside the workflow) that made them,
-- so replay matches entries of concurrent branches by branch and position, not by the order
-- in which their writes happened to complete. Runs started before this use format 1.
ALTER TABLE entries ADD COLUMN branch TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN journal_format INTEGER NOT NULL DEFAULT 1;
