-- pushgate schema 1: the vocabulary of SPEC section 1.
-- Times are integer seconds since the epoch (UTC).

CREATE TABLE flights (
  flight    INTEGER PRIMARY KEY AUTOINCREMENT,
  branch    TEXT NOT NULL,
  blessing  TEXT NOT NULL CHECK (blessing IN ('real','real-retest','real-bisect','adhoc','play','running','broken')),
  intended  TEXT NOT NULL,
  created   INTEGER NOT NULL,
  started   INTEGER,
  finished  INTEGER,
  outcome   TEXT            -- perfect / tolerable / regressions / problems, once decided
);
CREATE INDEX flights_branch ON flights (branch, flight);

CREATE TABLE jobs (
  flight        INTEGER NOT NULL REFERENCES flights (flight) ON DELETE CASCADE,
  job           TEXT NOT NULL,
  recipe        TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('queued','preparing','running','pass','fail','broken','blocked','cancelled','starved')),
  status_reason TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (flight, job)
);
-- job history by branch+job: flights_branch gives the flights, this the job rows.
CREATE INDEX jobs_job ON jobs (job, flight);

CREATE TABLE steps (
  flight   INTEGER NOT NULL,
  job      TEXT NOT NULL,
  stepno   INTEGER NOT NULL,
  testid   TEXT NOT NULL,
  status   TEXT NOT NULL CHECK (status IN ('running','pass','fail','broken','blocked')),
  started  INTEGER,
  finished INTEGER,
  log_path TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (flight, job, stepno),
  FOREIGN KEY (flight, job) REFERENCES jobs (flight, job) ON DELETE CASCADE
);
-- step history: one testid of one job over time.
CREATE INDEX steps_testid ON steps (job, testid, flight);

CREATE TABLE runvars (
  flight INTEGER NOT NULL,
  job    TEXT NOT NULL,
  name   TEXT NOT NULL,
  value  TEXT NOT NULL,
  synth  INTEGER NOT NULL DEFAULT 0,  -- 1 for outputs written while the job runs
  PRIMARY KEY (flight, job, name),
  FOREIGN KEY (flight, job) REFERENCES jobs (flight, job) ON DELETE CASCADE
);
-- baseline search by built revisions: name='built_revision_xen' AND value=?
CREATE INDEX runvars_name_value ON runvars (name, value, flight);

CREATE TABLE hosts (
  host               TEXT PRIMARY KEY,
  kind               TEXT NOT NULL CHECK (kind IN ('local','baremetal','libvirt')),
  state              TEXT NOT NULL DEFAULT 'enabled' CHECK (state IN ('enabled','disabled','quarantined')),
  state_reason       TEXT NOT NULL DEFAULT '',
  consecutive_broken INTEGER NOT NULL DEFAULT 0,
  held_flight        INTEGER,     -- the job holding the host, if any: one holder at a time
  held_job           TEXT,
  install_state      TEXT NOT NULL DEFAULT ''
);

CREATE TABLE host_flags (
  host TEXT NOT NULL REFERENCES hosts (host) ON DELETE CASCADE,
  flag TEXT NOT NULL,
  PRIMARY KEY (host, flag)
);
CREATE INDEX host_flags_flag ON host_flags (flag, host);

CREATE TABLE host_events (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  host   TEXT NOT NULL,
  flight INTEGER,
  job    TEXT,
  role   TEXT NOT NULL DEFAULT '',
  event  TEXT NOT NULL,   -- allocate / release / disable / enable / quarantine
  detail TEXT NOT NULL DEFAULT '',
  at     INTEGER NOT NULL
);
-- host history: the last N uses of one host.
CREATE INDEX host_events_host ON host_events (host, id);

CREATE TABLE frozen_audit (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  tree     TEXT NOT NULL,
  branch   TEXT NOT NULL,
  ref      TEXT NOT NULL,
  action   TEXT NOT NULL CHECK (action IN ('add','move','force-move','remove')),
  old_rev  TEXT NOT NULL DEFAULT '',
  new_rev  TEXT NOT NULL DEFAULT '',
  describe TEXT NOT NULL DEFAULT '',
  who      TEXT NOT NULL,
  reason   TEXT NOT NULL DEFAULT '',
  at       INTEGER NOT NULL
);
CREATE INDEX frozen_audit_key ON frozen_audit (tree, branch, id);

CREATE TABLE pushes (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  flight   INTEGER REFERENCES flights (flight),
  branch   TEXT NOT NULL,
  url      TEXT NOT NULL,
  ref      TEXT NOT NULL,
  old_rev  TEXT NOT NULL,
  new_rev  TEXT NOT NULL,
  state    TEXT NOT NULL CHECK (state IN ('intent','done','refused','failed')),
  message  TEXT NOT NULL DEFAULT '',
  who      TEXT NOT NULL DEFAULT 'daemon',
  created  INTEGER NOT NULL,
  finished INTEGER
);
CREATE INDEX pushes_branch ON pushes (branch, id);
CREATE INDEX pushes_pending ON pushes (state) WHERE state = 'intent';

CREATE TABLE artifacts (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  flight  INTEGER NOT NULL,
  job     TEXT NOT NULL,
  stepno  INTEGER NOT NULL,
  key     TEXT NOT NULL,
  content TEXT NOT NULL,
  created INTEGER NOT NULL,
  FOREIGN KEY (flight, job) REFERENCES jobs (flight, job) ON DELETE CASCADE
);
CREATE INDEX artifacts_key ON artifacts (key, flight);
