-- pushgate schema 7: /metrics without scanning history (issue 13).
-- Counters are kept by triggers as events happen and never fall; gauges of
-- current states are counted through partial indexes that hold only the
-- rows in those states. The counters start from what the history holds.

CREATE TABLE metric_counters (
  name  TEXT NOT NULL,
  label TEXT NOT NULL,
  value INTEGER NOT NULL,
  PRIMARY KEY (name, label)
);

-- Flights judged, by outcome (a rejudge that changes the outcome counts again).
CREATE TRIGGER metric_flight_outcome AFTER UPDATE OF outcome ON flights
WHEN NEW.outcome IS NOT NULL AND (OLD.outcome IS NULL OR OLD.outcome != NEW.outcome)
BEGIN
  INSERT INTO metric_counters VALUES ('flights_total', NEW.outcome, 1)
    ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
END;

-- Jobs ended, by status (a re-queued job that ends again counts again).
CREATE TRIGGER metric_job_end_update AFTER UPDATE OF status ON jobs
WHEN NEW.status != OLD.status AND NEW.status NOT IN ('queued', 'preparing', 'running')
BEGIN
  INSERT INTO metric_counters VALUES ('jobs_total', NEW.status, 1)
    ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
END;
CREATE TRIGGER metric_job_end_insert AFTER INSERT ON jobs
WHEN NEW.status NOT IN ('queued', 'preparing', 'running')
BEGIN
  INSERT INTO metric_counters VALUES ('jobs_total', NEW.status, 1)
    ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
END;

-- Pushes ended, by state.
CREATE TRIGGER metric_push_end_update AFTER UPDATE OF state ON pushes
WHEN OLD.state = 'intent' AND NEW.state != 'intent'
BEGIN
  INSERT INTO metric_counters VALUES ('pushes_total', NEW.state, 1)
    ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
END;
CREATE TRIGGER metric_push_end_insert AFTER INSERT ON pushes
WHEN NEW.state != 'intent'
BEGIN
  INSERT INTO metric_counters VALUES ('pushes_total', NEW.state, 1)
    ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
END;

-- Step durations: a cumulative histogram (le in seconds), count and sum.
-- Steps are written with INSERT OR REPLACE: a step counts when it is written
-- finished.
CREATE TRIGGER metric_step_finished AFTER INSERT ON steps
WHEN NEW.finished IS NOT NULL AND NEW.started IS NOT NULL
BEGIN
  INSERT INTO metric_counters
    SELECT 'step_seconds_bucket', le, NEW.finished - NEW.started <= CAST(le AS INTEGER)
    FROM (SELECT '1' AS le UNION ALL SELECT '5' UNION ALL SELECT '30' UNION ALL SELECT '60'
          UNION ALL SELECT '300' UNION ALL SELECT '1800' UNION ALL SELECT '3600') WHERE 1
    ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value;
  INSERT INTO metric_counters VALUES ('step_seconds_count', '', 1)
    ON CONFLICT (name, label) DO UPDATE SET value = value + 1;
  INSERT INTO metric_counters VALUES ('step_seconds_sum', '', NEW.finished - NEW.started)
    ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value;
END;

-- Where the counters start.
INSERT INTO metric_counters SELECT 'flights_total', outcome, COUNT(*) FROM flights WHERE outcome IS NOT NULL GROUP BY outcome;
INSERT INTO metric_counters SELECT 'jobs_total', status, COUNT(*) FROM jobs
  WHERE status NOT IN ('queued', 'preparing', 'running') GROUP BY status;
INSERT INTO metric_counters SELECT 'pushes_total', state, COUNT(*) FROM pushes WHERE state != 'intent' GROUP BY state;
INSERT INTO metric_counters
  SELECT 'step_seconds_bucket', le, (SELECT COUNT(*) FROM steps WHERE finished IS NOT NULL AND started IS NOT NULL
                                       AND finished - started <= CAST(le AS INTEGER))
  FROM (SELECT '1' AS le UNION ALL SELECT '5' UNION ALL SELECT '30' UNION ALL SELECT '60'
        UNION ALL SELECT '300' UNION ALL SELECT '1800' UNION ALL SELECT '3600');
INSERT INTO metric_counters SELECT 'step_seconds_count', '', COUNT(*) FROM steps WHERE finished IS NOT NULL AND started IS NOT NULL;
INSERT INTO metric_counters SELECT 'step_seconds_sum', '', IFNULL(SUM(finished - started), 0) FROM steps
  WHERE finished IS NOT NULL AND started IS NOT NULL;

-- Current states, and what recovery looks for: only the rows in them.
CREATE INDEX jobs_active ON jobs (status) WHERE status IN ('queued', 'preparing', 'running');
CREATE INDEX flights_unfinished ON flights (flight) WHERE outcome IS NULL;
CREATE INDEX steps_running ON steps (flight, job) WHERE status = 'running';
CREATE INDEX pushes_flight ON pushes (flight, id);
