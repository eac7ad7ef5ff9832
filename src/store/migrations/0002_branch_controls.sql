-- pushgate schema 2: operator controls per branch (block), audited with force pushes.

CREATE TABLE branch_controls (
  branch  TEXT PRIMARY KEY,
  blocked INTEGER NOT NULL DEFAULT 0,
  reason  TEXT NOT NULL DEFAULT '',
  who     TEXT NOT NULL DEFAULT '',
  at      INTEGER NOT NULL
);

CREATE TABLE branch_audit (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  branch TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('block','unblock','force')),
  detail TEXT NOT NULL DEFAULT '',
  who    TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  at     INTEGER NOT NULL
);
CREATE INDEX branch_audit_branch ON branch_audit (branch, id);
