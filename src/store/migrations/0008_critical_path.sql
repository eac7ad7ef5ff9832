-- pushgate schema 8: critical-path-first allocation (issue 13 item 5).
-- A waiting job's expected seconds from its start to the end of its flight
-- (its own duration plus the longest chain of jobs that wait for it, from
-- duration history): of two waiters of one flight, the longer path goes first.
ALTER TABLE host_waits ADD COLUMN remaining INTEGER NOT NULL DEFAULT 0;
