-- pushgate schema 4: the step results of a job attempt interrupted by a
-- daemon restart. The job is re-queued and its steps run again; what the
-- interrupted attempt recorded moves here instead of being overwritten.

CREATE TABLE step_attempts (
  flight   INTEGER NOT NULL,
  job      TEXT NOT NULL,
  attempt  INTEGER NOT NULL,   -- 1 = the first run of the job
  stepno   INTEGER NOT NULL,
  testid   TEXT NOT NULL,
  status   TEXT NOT NULL,
  started  INTEGER,
  finished INTEGER,
  log_path TEXT NOT NULL,
  PRIMARY KEY (flight, job, attempt, stepno),
  FOREIGN KEY (flight, job) REFERENCES jobs (flight, job) ON DELETE CASCADE
);
