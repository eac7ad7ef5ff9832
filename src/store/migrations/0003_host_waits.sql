-- pushgate schema 3: jobs waiting for hosts, so the allocator can serve them
-- in order (priority, flight age, build jobs first) across processes.

CREATE TABLE host_waits (
  flight   INTEGER NOT NULL,
  job      TEXT NOT NULL,
  priority INTEGER NOT NULL,
  build    INTEGER NOT NULL,
  roles    TEXT NOT NULL,   -- "role=flag,flag;role=flag"
  since    INTEGER NOT NULL,
  PRIMARY KEY (flight, job)
);
