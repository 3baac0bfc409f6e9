-- An event carries an id, so that a send retried after its commit landed but its reply was lost
-- (a dropped connection, a client's own retry) is applied once.
ALTER TABLE events ADD COLUMN event_id TEXT;
CREATE UNIQUE INDEX events_event_id ON events (run_id, event_id) WHERE event_id IS NOT NULL;
