-- pushgate schema 6: a frozen-ref change is recorded before it is pushed
-- (state 'intent') and finished after (SPEC section 6, as for push intents),
-- so a crash between the push upstream and the audit row loses nothing; and
-- a re-queued job's output runvars move to runvar_attempts with its steps,
-- so the re-run starts from its inputs only.

ALTER TABLE frozen_audit ADD COLUMN state TEXT NOT NULL DEFAULT 'done'
  CHECK (state IN ('intent','done','failed','refused'));
ALTER TABLE frozen_audit ADD COLUMN note TEXT NOT NULL DEFAULT '';
CREATE INDEX frozen_audit_pending ON frozen_audit (state) WHERE state = 'intent';

CREATE TABLE runvar_attempts (
  flight  INTEGER NOT NULL,
  job     TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  name    TEXT NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (flight, job, attempt, name),
  FOREIGN KEY (flight, job) REFERENCES jobs (flight, job) ON DELETE CASCADE
);
