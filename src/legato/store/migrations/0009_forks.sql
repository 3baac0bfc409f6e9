-- Forks (`legato fork`, `app.fork`): the run a run was forked from and the key of the entry it
-- ran afresh from; NULL for every other run.
ALTER TABLE runs ADD COLUMN forked_from TEXT;
ALTER TABLE runs ADD COLUMN forked_entry TEXT;
