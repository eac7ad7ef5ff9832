// Turning an ended flight or bisection into outbox rows, and a row into the
// mail that is sent.

#include <pushgate/notify.hpp>

#include <algorithm>
#include <ctime>

namespace pushgate::notify {
namespace {

using nlohmann::json;

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

/// How a classified step counts, in osstest's words for X-Osstest-Failures.
std::string failure_class(const verdict::Classified& c) {
  if (c.heisenbug) return "heisenbug";
  if (c.allowable) return "allowable";
  switch (c.blocker) {
    case verdict::Blocker::regression: return "regression";
    case verdict::Blocker::broken: return "broken";
    case verdict::Blocker::unfinished: return "unfinished";
    case verdict::Blocker::none: break;
  }
  return "nonblocking";
}

/// A header value with its items folded onto continuation lines (RFC 5322
/// 2.2.3), so that no line grows past what mail servers accept.
std::string header_value(const std::string& v, const std::string& eol) {
  std::string out;
  for (char ch : v) {
    if (ch == '\n') out += eol + " ";  // folded: the next item on its own line
    else if (ch != '\r') out += ch;
  }
  return out;
}

std::string rfc5322_date(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

}  // namespace

Event flight_event(const verdict::Report& r, const std::string& blessing) {
  Event e;
  e.kind = "flight";
  e.id = r.flight.id.value;
  e.branch = r.flight.branch;
  e.blessing = blessing;
  e.text = verdict::render_text(r);
  json report = json::parse(verdict::render_json(r));
  e.subject = report.value("subject", r.verdict.subject(r.pushed));
  std::vector<std::string> failures, this_v, that_v;
  for (const auto& c : r.verdict.steps) {
    failures.push_back(r.flight.branch + ":" + c.job + ":" + c.testid + ":" + c.status + ":" + failure_class(c));
  }
  for (const auto& v : r.versions) {
    this_v.push_back(v.tree + "=" + v.tested);
    if (!v.baseline.empty()) that_v.push_back(v.tree + "=" + v.baseline);
  }
  e.headers.emplace_back("X-Pushgate-Flight", r.flight.id.str());
  e.headers.emplace_back("X-Pushgate-Branch", r.flight.branch);
  e.headers.emplace_back("X-Pushgate-Outcome", verdict::to_string(r.verdict.outcome));
  if (!failures.empty()) e.headers.emplace_back("X-Pushgate-Failures", join(failures, "\n"));
  if (!this_v.empty()) e.headers.emplace_back("X-Pushgate-Versions-This", join(this_v, "\n"));
  if (!that_v.empty()) e.headers.emplace_back("X-Pushgate-Versions-That", join(that_v, "\n"));
  e.json = {{"event", "flight"},
            {"flight", r.flight.id.value},
            {"branch", r.flight.branch},
            {"blessing", blessing},
            {"subject", e.subject},
            {"outcome", verdict::to_string(r.verdict.outcome)},
            {"pushed", r.pushed},
            {"url", r.logs_url},
            {"failures", failures},
            {"report", report}};
  return e;
}

bool wanted(const config::Config& config, const std::string& kind, const std::string& branch,
            const std::string& blessing) {
  const config::Branch* b = config.find_branch(branch);
  if (!b || b->notify.empty()) return false;
  const config::Channels& ch = b->notify;
  if (kind == "flight") return std::find(ch.blessings.begin(), ch.blessings.end(), blessing) != ch.blessings.end();
  return kind == "bisection" && ch.bisections;
}

std::vector<store::Store::Notification> plan(const config::Config& config, const Event& e, std::int64_t now) {
  std::vector<store::Store::Notification> out;
  if (!wanted(config, e.kind, e.branch, e.blessing)) return out;
  const config::Channels& ch = config.find_branch(e.branch)->notify;
  json headers = json::array();
  for (const auto& [k, v] : e.headers) headers.push_back({k, v});
  auto row = [&](const std::string& channel, const std::string& target, const std::string& body) {
    store::Store::Notification n;
    n.event = e.kind;
    n.subject_id = e.id;
    n.channel = channel;
    n.target = target;
    n.title = e.subject;
    n.headers = headers.dump();
    n.body = body;
    n.next_at = now;
    n.created = now;
    out.push_back(std::move(n));
  };
  if (!ch.mail.empty()) row("mail", join(ch.mail, ", "), e.text);
  for (const auto& url : ch.webhooks) row("webhook", url, e.json.dump());
  for (const auto& cmd : ch.commands) row("command", cmd, e.json.dump());
  return out;
}

std::string mail_message(const config::Config& config, const store::Store::Notification& n, std::int64_t date,
                         bool crlf) {
  const std::string eol = crlf ? "\r\n" : "\n";
  const std::string& from = config.notify.from;
  std::string domain = from.substr(from.find('@') + 1);
  std::string m;
  auto header = [&](const std::string& k, const std::string& v) { m += k + ": " + header_value(v, eol) + eol; };
  header("From", "pushgate <" + from + ">");
  header("To", n.target);
  header("Subject", n.title);
  header("Date", rfc5322_date(date));
  // The same id on every retry: a receiver that got an attempt whose
  // answer was lost can tell the second copy.
  header("Message-ID", "<pushgate." + n.event + "." + std::to_string(n.subject_id) + "." + std::to_string(n.id) + "@" +
                           domain + ">");
  header("MIME-Version", "1.0");
  header("Content-Type", "text/plain; charset=utf-8");
  header("Content-Transfer-Encoding", "8bit");
  header("Auto-Submitted", "auto-generated");
  json extra = json::parse(n.headers.empty() ? "[]" : n.headers, nullptr, false);
  if (extra.is_array()) {
    for (const auto& kv : extra) {
      if (kv.is_array() && kv.size() == 2 && kv[0].is_string() && kv[1].is_string()) header(kv[0], kv[1]);
    }
  }
  m += eol;
  std::string line;
  for (char ch : n.body) {
    if (ch == '\n') {
      m += line + eol;
      line.clear();
    } else if (ch != '\r') {
      line += ch;
    }
  }
  if (!line.empty()) m += line + eol;
  return m;
}

std::int64_t retry_delay(const config::Notify& notify, int attempts) {
  std::int64_t d = notify.retry_seconds;
  for (int i = 1; i < attempts && d < notify.max_retry_seconds; ++i) d *= 2;
  return std::min<std::int64_t>(d, notify.max_retry_seconds);
}

std::string describe(const store::Store::Notification& n) {
  if (n.channel == "mail") return "mail to " + n.target;
  return n.channel + " " + n.target;
}

}  // namespace pushgate::notify
