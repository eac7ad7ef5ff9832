-- Bisections (SPEC section 7): a row per bisection, its nodes as last
-- computed, and every probe flight it made (made with its probe row in one
-- transaction).
CREATE TABLE bisections (
  bisection INTEGER PRIMARY KEY,
  branch TEXT NOT NULL,
  flight INTEGER NOT NULL REFERENCES flights (flight),
  basis_flight INTEGER NOT NULL REFERENCES flights (flight),
  who TEXT NOT NULL,
  targets TEXT NOT NULL,
  pins TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL DEFAULT 'running',
  reason TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT '{}',
  created INTEGER NOT NULL,
  finished INTEGER
);
CREATE INDEX bisections_status ON bisections (status, bisection);
CREATE INDEX bisections_branch ON bisections (branch, bisection);
CREATE INDEX bisections_flight ON bisections (flight);

CREATE TABLE bisection_nodes (
  bisection INTEGER NOT NULL REFERENCES bisections (bisection),
  node INTEGER NOT NULL,
  revisions TEXT NOT NULL,
  changed_tree TEXT NOT NULL,
  revision TEXT NOT NULL,
  parents TEXT NOT NULL,
  boundary INTEGER NOT NULL DEFAULT 0,
  results TEXT NOT NULL,
  flights TEXT NOT NULL,
  PRIMARY KEY (bisection, node)
);

CREATE TABLE bisection_probes (
  bisection INTEGER NOT NULL REFERENCES bisections (bisection),
  seq INTEGER NOT NULL,
  flight INTEGER NOT NULL REFERENCES flights (flight),
  node TEXT NOT NULL,
  why TEXT NOT NULL,
  PRIMARY KEY (bisection, seq)
);
CREATE INDEX bisection_probes_flight ON bisection_probes (flight);

-- Evidence lookups by job: a job's runvar across flights.
CREATE INDEX runvars_job_name_value ON runvars (job, name, value, flight);
