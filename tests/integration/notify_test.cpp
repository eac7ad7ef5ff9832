// Notifications (issue 15 item 5, SPEC section 8): a flight's report goes
// by mail (a capturing sendmail program, a real SMTP listener), to a real
// HTTP receiver and to a command, per branch, exactly once; failures are
// retried by the daemon with backoff and never hold a flight.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include <pushgate/config.hpp>
#include <pushgate/notify.hpp>
#include <pushgate/store.hpp>

#include "support.hpp"

namespace pushgate {
namespace {

using json = nlohmann::json;
using test::Receiver;
using test::TempDir;
using namespace std::chrono_literals;

/// A mail as sendmail or SMTP got it: its headers (continuation lines
/// unfolded into "\n"-separated items) and its body.
struct Mail {
  std::map<std::string, std::string> headers;
  std::string body, args;
};

Mail parse_mail(const std::string& text) {
  Mail m;
  std::size_t at = 0;
  std::string last;
  if (text.starts_with("ARGS: ")) {
    std::size_t eol = text.find('\n');
    m.args = text.substr(6, eol - 6);
    at = eol + 1;
  }
  while (at < text.size()) {
    std::size_t eol = text.find('\n', at);
    std::string line = text.substr(at, eol - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    at = eol == std::string::npos ? text.size() : eol + 1;
    if (line.empty()) break;
    if (line[0] == ' ' || line[0] == '\t') {
      m.headers[last] += "\n" + line.substr(1);
    } else {
      auto colon = line.find(':');
      last = line.substr(0, colon);
      m.headers[last] = line.substr(colon + 2);
    }
  }
  m.body = text.substr(std::min(at, text.size()));
  return m;
}

class Notify : public ::testing::Test {
 protected:
  TempDir dir;
  std::unique_ptr<test::GitRepoBuilder> xen;
  json cfg;

  void SetUp() override {
    xen = std::make_unique<test::GitRepoBuilder>(dir.str("up/xen.git"));
    xen->commit_on("master", "xen");
    xen->set_branch("staging", xen->head_of("master"));
    xen->commit_on("staging", "xen 2");
    // sendmail as a program that keeps what it was given, one file per mail.
    test::write_file(dir.path() / "sendmail.sh",
                     "#!/bin/sh\nf=$(mktemp " + dir.str("mail.XXXXXX") + ")\n{ echo \"ARGS: $*\"; cat; } > $f\n");
    std::filesystem::permissions(dir.path() / "sendmail.sh", std::filesystem::perms::owner_all);
    cfg = {{"daemon", {{"state_dir", "state"}, {"retest_regressions", false}}},
           {"trees", {{{"name", "xen"}, {"upstream", "up/xen.git"}}}},
           {"branches", {{{"name", "xen-unstable"}, {"tree", "xen"}, {"input", "staging"}, {"tested", "master"}}}},
           {"recipes", {{"r", {{"steps", {{{"testid", "work"}, {"run", "test ! -e " + dir.str("FAIL")}}}}}}}},
           {"jobs", {{{"name", "test-amd64"}, {"recipe", "r"}, {"hosts", {{"host", {"x86"}}}}}}},
           {"hosts", {{{"name", "h0"}, {"kind", "local"}, {"flags", {"x86"}}}}},
           {"notify", {{"from", "osstest-admin@xen.example"}, {"sendmail", dir.str("sendmail.sh") + " -t -oi"},
                       {"mail", {"everyone@xen.example"}}}}};
    std::filesystem::create_directories(dir.path() / "state");
  }

  void write() { test::write_file(dir.path() / "c.json", cfg.dump(2)); }

  test::RunResult pg(std::vector<std::string> a) {
    a.insert(a.begin(), {"--config", dir.str("c.json")});
    return test::pushgate(a);
  }

  std::vector<Mail> mails() {
    std::vector<std::pair<std::filesystem::file_time_type, std::string>> files;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      if (e.path().filename().string().starts_with("mail.")) files.emplace_back(e.last_write_time(), e.path().string());
    }
    std::sort(files.begin(), files.end());
    std::vector<Mail> out;
    for (const auto& [t, f] : files) out.push_back(parse_mail(test::read_file(f)));
    return out;
  }

  std::vector<store::Store::Notification> rows(std::int64_t flight) {
    auto st = store::Store::open({dir.str("state/pushgate.db")}).value();
    return st->notifications_of("flight", flight).value();
  }
};

// Per-branch recipients, the osstest-like subject and X-Pushgate-* headers
// with every classified failure and both versions; the webhook's JSON and
// the command's stdin; nothing sent twice (not even by a rejudge).
TEST_F(Notify, Issue15_FlightReportsGoByMailWebhookAndCommandPerBranch) {
  Receiver hook(Receiver::Protocol::http);
  cfg["branches"][0]["notify"] = {
      {"mail", {"xen-devel@lists.xen.example", "osstest@xen.example"}},
      {"webhooks", {"http://127.0.0.1:" + std::to_string(hook.port()) + "/hooks/pushgate"}},
      {"commands", {"cat > " + dir.str("cmd.$PUSHGATE_ID.json") + "; echo \"$PUSHGATE_EVENT $PUSHGATE_BRANCH $PUSHGATE_OUTCOME\" > " +
                    dir.str("cmd.$PUSHGATE_ID.env")}}};
  write();
  auto first = pg({"flight", "run", "xen-unstable"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.err.find("notification of flight 1: mail to xen-devel@lists.xen.example, osstest@xen.example: sent"),
            std::string::npos) << first.err;
  test::write_file(dir.path() / "FAIL", "");
  auto second = pg({"flight", "run", "xen-unstable"});
  ASSERT_EQ(second.exit_code, 3) << second.err;

  auto all = mails();
  ASSERT_EQ(all.size(), 2u);
  Mail m = all[1];
  EXPECT_EQ(m.args, "-t -oi");
  EXPECT_EQ(m.headers["To"], "xen-devel@lists.xen.example, osstest@xen.example") << "the branch's, not the default";
  EXPECT_EQ(m.headers["From"], "pushgate <osstest-admin@xen.example>");
  EXPECT_EQ(m.headers["Subject"], "[xen-unstable test] 2: regressions - ALL FAIL");
  EXPECT_EQ(m.headers["X-Pushgate-Flight"], "2");
  EXPECT_EQ(m.headers["X-Pushgate-Outcome"], "regressions");
  EXPECT_EQ(m.headers["X-Pushgate-Failures"], "xen-unstable:test-amd64:work:fail:regression");
  EXPECT_EQ(m.headers["X-Pushgate-Versions-This"], "xen=" + xen->head_of("staging"));
  EXPECT_EQ(m.headers["X-Pushgate-Versions-That"], "xen=" + xen->head_of("master"));
  EXPECT_EQ(m.headers["Content-Type"], "text/plain; charset=utf-8");
  EXPECT_TRUE(m.headers["Message-ID"].starts_with("<pushgate.flight.2.")) << m.headers["Message-ID"];
  EXPECT_FALSE(m.headers["Date"].empty());
  EXPECT_TRUE(m.body.starts_with("[xen-unstable test] 2: regressions - ALL FAIL\n")) << m.body;
  EXPECT_NE(m.body.find("REGR. vs. 1"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("logs: http://"), std::string::npos) << m.body;
  EXPECT_EQ(all[0].headers["Subject"], "[xen-unstable baseline test] 1: all pass");
  EXPECT_EQ(all[0].headers.count("X-Pushgate-Failures"), 0u) << "nothing failed";

  ASSERT_TRUE(hook.wait_for(2));
  auto posts = hook.messages();
  ASSERT_EQ(posts.size(), 2u);
  EXPECT_EQ(posts[1].request, "POST /hooks/pushgate");
  EXPECT_NE(posts[1].headers.find("Content-Type: application/json"), std::string::npos) << posts[1].headers;
  EXPECT_NE(posts[1].headers.find("X-Pushgate-Event: flight"), std::string::npos) << posts[1].headers;
  EXPECT_EQ(test::schema_errors("notify/event.schema.json", posts[1].body), "");
  json body = json::parse(posts[1].body);
  EXPECT_EQ(body["flight"], 2);
  EXPECT_EQ(body["outcome"], "regressions");
  EXPECT_EQ(body["pushed"], false);
  EXPECT_EQ(body["failures"], json::array({"xen-unstable:test-amd64:work:fail:regression"}));
  EXPECT_EQ(test::schema_errors("verdict.schema.json", body["report"].dump()), "");
  EXPECT_EQ(json::parse(posts[0].body)["pushed"], false) << "a baseline flight pushes nothing";

  EXPECT_EQ(json::parse(test::read_file(dir.path() / "cmd.2.json")), body) << "the command reads the same body";
  EXPECT_EQ(test::read_file(dir.path() / "cmd.2.env"), "flight xen-unstable regressions\n");

  for (const auto& n : rows(2)) {
    EXPECT_EQ(n.state, "sent") << n.channel << " " << n.last_error;
    EXPECT_EQ(n.attempts, 1) << n.channel;
  }
  EXPECT_EQ(rows(2).size(), 3u);
  // Where it went, as the flight's JSON shows it: a webhook's path and a
  // command's arguments are left out (they may hold secrets).
  auto shown = pg({"flight", "show", "2", "--json"});
  EXPECT_EQ(test::schema_errors("api/flight.schema.json", shown.out), "");
  json notices = json::parse(shown.out)["notifications"];
  ASSERT_EQ(notices.size(), 3u) << notices.dump(2);
  EXPECT_EQ(notices[0]["target"], "xen-devel@lists.xen.example, osstest@xen.example");
  EXPECT_EQ(notices[1]["target"], "http://127.0.0.1:" + std::to_string(hook.port()) + "/...");
  EXPECT_EQ(notices[2]["target"], "cat");
  for (const auto& n : notices) EXPECT_EQ(n["state"], "sent");
  auto text = pg({"flight", "show", "2"});
  EXPECT_NE(text.out.find("notified: mail to xen-devel@lists.xen.example, osstest@xen.example: sent\n"), std::string::npos)
      << text.out;
  // A rejudge stores a verdict and sends nothing.
  auto rj = pg({"flight", "rejudge", "2", "--reason", "checking"});
  EXPECT_EQ(rj.exit_code, 0) << rj.err;
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(mails().size(), 2u);
  EXPECT_EQ(hook.messages().size(), 2u);
}

// Mail over SMTP to a real listener: the envelope names the branch's
// recipients, the data is the same message.
TEST_F(Notify, Issue15_SmtpDeliversToARealListener) {
  Receiver smtp(Receiver::Protocol::smtp);
  cfg["notify"]["smtp"] = "smtp://127.0.0.1:" + std::to_string(smtp.port());
  cfg["branches"][0]["notify"] = {{"mail", {"a@xen.example", "b@xen.example"}}};
  write();
  auto r = pg({"flight", "run", "xen-unstable"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(smtp.wait_for(1)) << r.err;
  auto got = smtp.messages();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].mail_from, "osstest-admin@xen.example");
  EXPECT_EQ(got[0].rcpt, (std::vector<std::string>{"a@xen.example", "b@xen.example"}));
  Mail m = parse_mail(got[0].body);
  EXPECT_EQ(m.headers["Subject"], "[xen-unstable baseline test] 1: all pass") << got[0].body;
  EXPECT_EQ(m.headers["To"], "a@xen.example, b@xen.example");
  EXPECT_EQ(m.headers["X-Pushgate-Versions-This"], "xen=" + xen->head_of("master"));
  EXPECT_TRUE(m.body.starts_with("[xen-unstable baseline test] 1: all pass\n")) << m.body;
  EXPECT_TRUE(mails().empty()) << "smtp set: sendmail is not used";
  EXPECT_EQ(rows(1).at(0).state, "sent");
}

// A receiver that answers 500 and one that is not there: the flight ends
// and exits as it would (the failures are logged and queued); the daemon
// retries after the backoff, delivers once the receiver answers, and gives
// the absent one up after notify.attempts. Nothing is sent twice.
TEST_F(Notify, Issue15_FailedDeliveriesAreRetriedByTheDaemonAndNeverBlockTheFlight) {
  Receiver hook(Receiver::Protocol::http, 500);
  const int absent = test::free_port();
  const int api = test::free_port();
  cfg["daemon"]["listen"] = "127.0.0.1:" + std::to_string(api);
  cfg["notify"] = {{"retry_seconds", 1}, {"max_retry_seconds", 2}, {"attempts", 3}, {"timeout_seconds", 5},
                   {"webhooks", {"http://127.0.0.1:" + std::to_string(hook.port()) + "/h",
                                 "http://127.0.0.1:" + std::to_string(absent) + "/gone"}}};
  write();
  auto r = pg({"flight", "run", "xen-unstable"});
  ASSERT_EQ(r.exit_code, 0) << "a failed notification never changes the flight's result: " << r.err;
  EXPECT_NE(r.err.find("failed (attempt 1 of 3), next in 1s: POST http://127.0.0.1:" + std::to_string(hook.port()) +
                       "/h: HTTP 500"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("left queued; the daemon"), std::string::npos) << r.err;
  auto before = rows(1);
  ASSERT_EQ(before.size(), 2u);
  for (const auto& n : before) {
    EXPECT_EQ(n.state, "pending");
    EXPECT_EQ(n.attempts, 1);
    EXPECT_FALSE(n.last_error.empty());
  }
  json shown = json::parse(pg({"flight", "show", "1", "--json"}).out);
  EXPECT_EQ(shown["outcome"], "perfect");
  EXPECT_EQ(shown["notifications"][0]["state"], "pending");
  EXPECT_TRUE(shown["notifications"][0]["next_at"].is_number()) << shown["notifications"].dump(2);
  EXPECT_NE(shown["notifications"][0]["last_error"].get<std::string>().find("HTTP 500"), std::string::npos);
  ASSERT_EQ(hook.messages().size(), 1u);

  hook.set_status(204);
  const std::string log = dir.str("daemon.log");
  test::Background daemon({test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, log);
  ASSERT_TRUE(hook.wait_for(2, 20000)) << test::read_file(log);
  // The absent receiver: attempts 2 and 3 (1s, then 2s later), then given up.
  std::vector<store::Store::Notification> after;
  for (int i = 0; i < 200; ++i) {
    after = rows(1);
    if (std::all_of(after.begin(), after.end(), [](const auto& n) { return n.state != "pending"; })) break;
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(1500ms);  // a second delivery would come within this
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(20000), 0) << test::read_file(log);
  std::string out = test::read_file(log);
  ASSERT_EQ(after.size(), 2u);
  for (const auto& n : after) {
    if (n.target.ends_with("/h")) {
      EXPECT_EQ(n.state, "sent") << n.last_error;
      EXPECT_EQ(n.attempts, 2);
    } else {
      EXPECT_EQ(n.state, "failed");
      EXPECT_EQ(n.attempts, 3);
      EXPECT_NE(n.last_error.find("/gone"), std::string::npos) << n.last_error;
    }
  }
  EXPECT_EQ(hook.messages().size(), 2u) << "delivered once after the failure, never again";
  EXPECT_NE(out.find("/h: sent (attempt 2)"), std::string::npos) << out;
  EXPECT_NE(out.find("/gone: given up after 3 attempts"), std::string::npos) << out;
}

// Which rows an event makes, from config alone: a branch without channels
// of its own gets the defaults, blessings filter flights, bisections can be
// turned off; the backoff doubles up to its cap; the message folds headers.
TEST(NotifyPlan, Issue15_BranchesBlessingsBackoffAndTheMessage) {
  const std::string text = R"({
    "trees": [{"name": "xen", "upstream": "/nonexistent/xen.git"}],
    "branches": [
      {"name": "xen-unstable", "tree": "xen", "input": "staging", "tested": "master",
       "notify": {"mail": ["dev@xen.example"], "bisections": false}},
      {"name": "xen-4.18-testing", "tree": "xen", "input": "stable-4.18", "tested": "stable-4.18-tested"}],
    "recipes": {"r": {"steps": [{"testid": "t", "run": "true"}]}},
    "jobs": [{"name": "j", "recipe": "r", "hosts": {"host": ["x"]}}],
    "hosts": [{"name": "h", "kind": "local", "flags": ["x"]}],
    "notify": {"from": "pg@xen.example", "webhooks": ["https://hooks.example/x"], "retry_seconds": 30,
               "max_retry_seconds": 200}})";
  auto loaded = config::load_text(text, "/tmp/pushgate-notify-plan.json");
  ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
  const config::Config& c = *loaded.config;
  notify::Event e;
  e.kind = "flight";
  e.id = 7;
  e.branch = "xen-unstable";
  e.blessing = "real";
  e.subject = "[xen-unstable test] 7: regressions - FAIL";
  e.headers = {{"X-Pushgate-Failures", "xen-unstable:j:t:fail:regression\nxen-unstable:j:u:fail:heisenbug"}};
  e.text = "line one\nline two\n";
  e.json = {{"event", "flight"}};
  auto rows = notify::plan(c, e, 100);
  ASSERT_EQ(rows.size(), 2u) << "mail of its own, the default webhook";
  EXPECT_EQ(rows[0].channel, "mail");
  EXPECT_EQ(rows[0].target, "dev@xen.example");
  EXPECT_EQ(rows[1].channel, "webhook");
  EXPECT_EQ(rows[1].target, "https://hooks.example/x");
  e.blessing = "real-bisect";
  EXPECT_TRUE(notify::plan(c, e, 100).empty()) << "probe flights do not notify by default";
  e.kind = "bisection";
  EXPECT_TRUE(notify::plan(c, e, 100).empty()) << "bisections: false";
  e.branch = "xen-4.18-testing";
  auto other = notify::plan(c, e, 100);
  ASSERT_EQ(other.size(), 1u) << "the defaults: no mail, the webhook";
  EXPECT_EQ(other[0].channel, "webhook");
  e.branch = "gone";
  EXPECT_TRUE(notify::plan(c, e, 100).empty());

  EXPECT_EQ(notify::retry_delay(c.notify, 1), 30);
  EXPECT_EQ(notify::retry_delay(c.notify, 2), 60);
  EXPECT_EQ(notify::retry_delay(c.notify, 3), 120);
  EXPECT_EQ(notify::retry_delay(c.notify, 4), 200);
  EXPECT_EQ(notify::retry_delay(c.notify, 30), 200);

  rows[0].id = 5;
  std::string m = notify::mail_message(c, rows[0], 0, true);
  EXPECT_NE(m.find("\r\nX-Pushgate-Failures: xen-unstable:j:t:fail:regression\r\n xen-unstable:j:u:fail:heisenbug\r\n"),
            std::string::npos) << m;
  EXPECT_NE(m.find("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"), std::string::npos) << m;
  EXPECT_NE(m.find("Message-ID: <pushgate.flight.7.5@xen.example>\r\n"), std::string::npos) << m;
  EXPECT_TRUE(m.ends_with("\r\n\r\nline one\r\nline two\r\n")) << m;
  EXPECT_EQ(m.find("\r\r"), std::string::npos);
  std::string lf = notify::mail_message(c, rows[0], 0, false);
  EXPECT_EQ(lf.find('\r'), std::string::npos) << "sendmail gets LF line ends";

  // Config check refuses what delivery could never use.
  for (const auto& [bad, pointer] : std::vector<std::pair<std::string, std::string>>{
           {R"("notify": {"smtp": "http://x"})", "/notify/smtp"},
           {R"("notify": {"mail": ["not an address"]})", "/notify/mail/0"},
           {R"("notify": {"webhooks": ["ftp://x/y"]})", "/notify/webhooks/0"},
           {R"("notify": {"smtp": "smtp://x", "smtp_user": "u"})", "/notify/smtp_user"},
           {R"("notify": {"retry_seconds": 100, "max_retry_seconds": 10})", "/notify/max_retry_seconds"},
           {R"("notify": {"mail": ["a@b.example"], "sendmail": "sendmail -t"})", "/notify/sendmail"},
           {R"("notify": {"blessings": ["holy"]})", "/notify/blessings/0"}}) {
    std::string doc = text.substr(0, text.rfind("\"notify\"")) + bad + "}";
    auto r = config::load_text(doc, "/tmp/pushgate-notify-plan.json");
    EXPECT_FALSE(r.config) << bad;
    bool found = false;
    for (const auto& d : r.errors) found = found || d.pointer.starts_with(pointer);
    EXPECT_TRUE(found) << bad << ": " << (r.errors.empty() ? "no error" : r.errors[0].to_string());
  }
}

}  // namespace
}  // namespace pushgate
