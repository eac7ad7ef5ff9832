#pragma once
/// Notifications (SPEC section 8, issue 15 item 5): when a flight or a
/// bisection ends, its report goes by mail (sendmail or SMTP), as a JSON
/// POST to webhooks, and/or to commands, per branch.
///
/// Two halves. Composing (plan) turns an ended flight or bisection into
/// rows of the store's outbox, written in the same transaction as the
/// flight's verdict: a report is queued exactly once, whatever crashes.
/// Delivering (deliver_due) makes one attempt per due row and records it:
/// sent, or pending again after a backoff, or failed after
/// notify.attempts. A mail server that is down never holds a flight.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <pushgate/config.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>
#include <pushgate/verdict.hpp>

namespace pushgate::notify {

/// What ended, as every channel sees it.
struct Event {
  std::string kind;      ///< flight or bisection
  std::int64_t id = 0;   ///< the flight or bisection number
  std::string branch;
  std::string blessing;  ///< of the flight; "" for a bisection
  std::string subject;   ///< the mail's subject, osstest's form
  /// Machine-readable mail headers (X-Pushgate-*), in order. A value with
  /// several lines is folded, one item per line.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string text;      ///< the text report: the mail body
  nlohmann::json json;   ///< the webhook and command body (schemas/notify/event.schema.json)
};

/// A judged flight's event, from its report: X-Pushgate-Failures lists
/// every classified non-pass step as BRANCH:JOB:TESTID:STATUS:CLASS
/// (regression, broken, unfinished, heisenbug, allowable, nonblocking);
/// -Versions-This / -That the tested and baseline revision of each tree.
Event flight_event(const verdict::Report& report, const std::string& blessing);

/// Whether an event of `kind` (flight or bisection) on `branch` would
/// notify anyone: the branch is configured, has channels, and takes this
/// kind (a flight: its blessing among the channels' blessings). Cheap:
/// callers ask before making the report an Event needs.
bool wanted(const config::Config& config, const std::string& kind, const std::string& branch,
            const std::string& blessing = {});

/// The outbox rows an event makes under its branch's channels: none unless
/// wanted().
std::vector<store::Store::Notification> plan(const config::Config& config, const Event& event, std::int64_t now);

/// The message as handed to sendmail or SMTP (RFC 5322): From, To,
/// Subject, Date, a Message-ID stable across retries, MIME headers, the
/// X-Pushgate-* headers, then the report. Lines end in CRLF when `crlf`.
std::string mail_message(const config::Config& config, const store::Store::Notification& n, std::int64_t date,
                         bool crlf);

/// One attempt to deliver one notification; an error says why it failed.
Status deliver(const config::Config& config, const store::Store::Notification& n);

/// The wait before the next try after `attempts` failed ones.
std::int64_t retry_delay(const config::Notify& notify, int attempts);

struct Delivered {
  int sent = 0, retrying = 0, given_up = 0;
};
struct DeliverOptions {
  /// One line per attempt; `warning` for a failure.
  std::function<void(const std::string& line, bool warning)> log;
  /// Only the notifications of this (event, id), whether due or not yet:
  /// `flight run` tries its own once and leaves the rest to the daemon.
  std::optional<std::pair<std::string, std::int64_t>> only;
  std::function<bool()> stop;  ///< checked between notifications (a draining daemon)
  int limit = 100;
};
/// One attempt at each due pending notification (oldest first), each
/// outcome recorded in the store before the next.
Result<Delivered> deliver_due(const config::Config& config, store::Store& store, std::int64_t now,
                              const DeliverOptions& options = {});

/// "mail to a@b, c@d", "webhook http://...", "command notify.sh".
std::string describe(const store::Store::Notification& n);

}  // namespace pushgate::notify
