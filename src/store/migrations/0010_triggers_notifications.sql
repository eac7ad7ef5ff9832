-- Why each flight ran (issue 15 item 6): kind is one of cron, poll, webhook,
-- manual, retest, bisection, baseline; detail says which (the cron
-- expression, the tree a hook named, the user, the flight retested, the
-- bisection). Flights made before this migration have kind ''.
ALTER TABLE flights ADD COLUMN trigger_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE flights ADD COLUMN trigger_detail TEXT NOT NULL DEFAULT '';

-- The notification outbox (issue 15 item 5): one row per report and
-- channel, written when a flight or bisection ends, delivered (and retried)
-- apart from the flight, so a mail server that is down never holds a flight
-- and a report is never sent twice for one (event, subject, channel, target).
CREATE TABLE notifications (
  notification INTEGER PRIMARY KEY,
  event TEXT NOT NULL,            -- flight or bisection
  subject_id INTEGER NOT NULL,    -- the flight or bisection number
  channel TEXT NOT NULL,          -- mail, webhook or command
  target TEXT NOT NULL,           -- recipients, URL or command line
  title TEXT NOT NULL,            -- the mail subject
  headers TEXT NOT NULL DEFAULT '{}',  -- JSON object of extra mail headers
  body TEXT NOT NULL,             -- the text report (mail, command) or JSON (webhook)
  state TEXT NOT NULL DEFAULT 'pending',  -- pending, sent, failed (gave up)
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL,
  last_error TEXT NOT NULL DEFAULT '',
  created INTEGER NOT NULL,
  sent_at INTEGER,
  UNIQUE (event, subject_id, channel, target)
);
CREATE INDEX notifications_due ON notifications (state, next_at);
