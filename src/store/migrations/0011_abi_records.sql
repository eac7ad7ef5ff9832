-- pushgate schema 11: ABI records (SPEC section 10, issue 18). A step's JSON
-- records are files under the state directory (records/FLIGHT/JOB/KEY.json);
-- the row keeps where, and the git blob id of the canonical JSON. `content`
-- of schema 1 stays empty: records are never blobs in SQLite.
ALTER TABLE artifacts ADD COLUMN digest TEXT NOT NULL DEFAULT '';
ALTER TABLE artifacts ADD COLUMN path TEXT NOT NULL DEFAULT '';
-- one record per key and job: the verdict and `flight show` read a flight's.
CREATE UNIQUE INDEX artifacts_flight_job_key ON artifacts (flight, job, key);

-- A release manager's acceptance of a changed record, audited: the accepted
-- digest becomes the reference for the branch's later flights.
CREATE TABLE abi_acceptances (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  branch     TEXT NOT NULL,
  key        TEXT NOT NULL,
  job        TEXT NOT NULL,
  flight     INTEGER NOT NULL,          -- whose record was accepted
  digest     TEXT NOT NULL,
  old_flight INTEGER,                   -- the reference it replaced
  old_digest TEXT NOT NULL DEFAULT '',
  who        TEXT NOT NULL,
  reason     TEXT NOT NULL,
  at         INTEGER NOT NULL
);
CREATE INDEX abi_acceptances_branch ON abi_acceptances (branch, key, job, id);
