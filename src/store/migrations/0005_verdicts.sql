-- pushgate schema 5: the verdict is stored once given (SPEC section 5), and
-- steps can record `starved` (a starved job's hosts-allocate step, its
-- dependents' build-check step).

CREATE TABLE steps_new (
  flight   INTEGER NOT NULL,
  job      TEXT NOT NULL,
  stepno   INTEGER NOT NULL,
  testid   TEXT NOT NULL,
  status   TEXT NOT NULL CHECK (status IN ('running','pass','fail','broken','blocked','starved')),
  started  INTEGER,
  finished INTEGER,
  log_path TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (flight, job, stepno),
  FOREIGN KEY (flight, job) REFERENCES jobs (flight, job) ON DELETE CASCADE
);
INSERT INTO steps_new SELECT flight, job, stepno, testid, status, started, finished, log_path FROM steps;
DROP TABLE steps;
ALTER TABLE steps_new RENAME TO steps;
CREATE INDEX steps_testid ON steps (job, testid, flight);

-- Every verdict given to a flight, newest last. The flight's current verdict
-- is its newest row; a rejudge adds a row and keeps the old one (audit).
CREATE TABLE verdicts (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  flight  INTEGER NOT NULL REFERENCES flights (flight) ON DELETE CASCADE,
  judged  INTEGER NOT NULL,
  who     TEXT NOT NULL,
  reason  TEXT NOT NULL DEFAULT '',
  outcome TEXT NOT NULL CHECK (outcome IN ('perfect','tolerable','regressions','problems')),
  body    TEXT NOT NULL   -- JSON: classified items, cited flights, job word, push decision
);
CREATE INDEX verdicts_flight ON verdicts (flight, id);
