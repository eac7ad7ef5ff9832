-- pushgate schema 8: critical-path-first allocation (issue 13 item 5).
-- A waiting job's expected seconds from its start to the end of its flight
-- (its own duration plus the longest chain of jobs that wait for it, from
-- duration history): of two waiters of one flight, the longer path goes first.
ALTER TABLE host_waits ADD COLUMN remaining INTEGER NOT NULL DEFAULT 0;

-- Flight lists filtered by outcome (the API's ?outcome=, a branch's last
-- tolerable flight for /metrics) seek instead of scanning every flight.
CREATE INDEX flights_outcome ON flights (outcome, flight);
CREATE INDEX flights_branch_outcome ON flights (branch, outcome, flight);
CREATE INDEX flights_blessing ON flights (blessing, flight);
