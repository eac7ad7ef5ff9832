// The HTTP API through a real daemon process and real sockets on 127.0.0.1:
// tokens, 4xx for bad requests (and the daemon keeps serving), a manual
// trigger leading to a flight, /metrics.

#include <gtest/gtest.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <future>
#include <regex>
#include <set>
#include <thread>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include <pushgate/api.hpp>
#include <pushgate/config.hpp>
#include <pushgate/revisions.hpp>
#include <pushgate/store.hpp>

#include "support.hpp"

namespace pushgate {
namespace {

using test::TempDir;
using namespace std::chrono_literals;

const std::string kToken = "0123456789abcdef-test-token";

class ApiTest : public ::testing::Test {
 protected:
  TempDir dir;
  int port = test::free_port();
  std::unique_ptr<test::Background> daemon;

  void SetUp() override {
    test::GitRepoBuilder xen(dir.str("up/xen.git"));
    xen.commit_on("master", "xen: import");
    xen.set_branch("staging", xen.head_of("master"));
    test::GitRepoBuilder qemu(dir.str("up/qemu.git"));
    qemu.commit_on("master", "qemu: import");
    qemu.commit_on("master", "qemu: fix");
    test::write_file(dir.path() / "token", kToken + "\n");
    nlohmann::json cfg = {
        {"daemon", {{"state_dir", "state"}, {"listen", "127.0.0.1:" + std::to_string(port)}, {"api_token_file", "token"}}},
        {"trees", {{{"name", "xen"}, {"upstream", "up/xen.git"}}, {{"name", "qemu"}, {"upstream", "up/qemu.git"}}}},
        {"branches", {{{"name", "xen-unstable"}, {"tree", "xen"}, {"input", "staging"}, {"tested", "master"},
                       {"sources", {{"qemu", {{"ref", "master"}}}}}}}},
        {"recipes", {{"r", {{"steps", {{{"testid", "work"}, {"run", "true"}}}}}}}},
        {"jobs", {{{"name", "test-amd64"}, {"recipe", "r"}, {"hosts", {{"host", {"x86"}}}}}}},
        {"hosts", {{{"name", "h0"}, {"kind", "local"}, {"flags", {"x86"}}}}}};
    test::write_file(dir.path() / "c.json", cfg.dump(2));
    std::filesystem::create_directories(dir.path() / "state");
    daemon = std::make_unique<test::Background>(
        std::vector<std::string>{test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str("daemon.log"));
    ASSERT_TRUE(test::wait_for_port(port, 10000)) << test::read_file(dir.path() / "daemon.log");
  }

  void TearDown() override {
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(30000), 0) << test::read_file(dir.path() / "daemon.log");
  }

  std::map<std::string, std::string> auth(const std::string& token = kToken) { return {{"Authorization", "Bearer " + token}}; }

  /// Whether `body` follows schemas/`schema`; the reasons when it does not.
  static std::string schema_errors(const std::string& schema, const std::string& body) {
    return test::schema_errors(schema, body);
  }
  void expect_follows(const std::string& schema, const test::HttpResult& r, int status = 200) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(schema_errors(schema, r.body), "");
  }

  /// The flight list once its newest flight has an outcome (or after 20 s).
  nlohmann::json wait_for_finished_flight() {
    nlohmann::json flights;
    for (int i = 0; i < 400; ++i) {
      flights = nlohmann::json::parse(test::http(port, "GET", "/api/v1/flights").body);
      if (!flights.empty() && flights[0]["outcome"] != "") break;
      std::this_thread::sleep_for(50ms);
    }
    return flights;
  }

  /// Stop the daemon, give the job these recipe steps, start it again.
  void restart_with_steps(const nlohmann::json& steps) {
    TearDown();
    auto cfg = nlohmann::json::parse(test::read_file(dir.path() / "c.json"));
    cfg["recipes"]["r"]["steps"] = steps;
    test::write_file(dir.path() / "c.json", cfg.dump(2));
    daemon = std::make_unique<test::Background>(
        std::vector<std::string>{test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str("daemon.log"));
    ASSERT_TRUE(test::wait_for_port(port, 10000)) << test::read_file(dir.path() / "daemon.log");
  }
};

TEST_F(ApiTest, TokensGuardChangesReadsAreOpen) {
  EXPECT_EQ(test::http(port, "GET", "/api/v1/branches").status, 200);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/hosts").status, 200);
  auto none = test::http(port, "POST", "/api/v1/hosts/h0/disable", "{}");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body.find("bearer token"), std::string::npos);
  EXPECT_EQ(test::http(port, "POST", "/api/v1/hosts/h0/disable", "{}", auth("0123456789abcdef-test-tokeX")).status, 403);
  EXPECT_EQ(test::http(port, "POST", "/api/v1/hosts/h0/disable", "{}", auth("short")).status, 403);
  auto ok = test::http(port, "POST", "/api/v1/hosts/h0/disable", R"({"reason": "maintenance"})", auth());
  EXPECT_EQ(ok.status, 200) << ok.body;
  auto hosts = nlohmann::json::parse(test::http(port, "GET", "/api/v1/hosts").body);
  EXPECT_EQ(hosts[0]["state"], "disabled");
  EXPECT_EQ(test::http(port, "POST", "/api/v1/hosts/h0/enable", "", auth()).status, 200);
}

TEST_F(ApiTest, BadRequestsGet4xxAndTheDaemonKeepsServing) {
  EXPECT_EQ(test::http(port, "GET", "/api/v1/nope").status, 404);
  EXPECT_EQ(test::http(port, "GET", "/elsewhere").status, 404);
  EXPECT_EQ(test::http(port, "DELETE", "/api/v1/flights", "", auth()).status, 405);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/flights/abc").status, 400);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/flights?limit=-3").status, 400);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/flights/999").status, 404);
  auto bad = test::http(port, "POST", "/api/v1/frozen", "{not json", auth());
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("malformed JSON"), std::string::npos);
  EXPECT_EQ(test::http(port, "POST", "/api/v1/frozen", R"({"tree": "xen"})", auth()).status, 400);
  EXPECT_EQ(test::http(port, "POST", "/api/v1/frozen", std::string(200 * 1024, 'x'), auth()).status, 413);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/history/job?branch=xen-unstable").status, 400);
  // Garbage that is not HTTP.
  {
    auto r = test::http(port, "GET", "/api/v1/branches", "", {{"Bad Header With Spaces", "x"}});
    EXPECT_EQ(r.status, 400);
  }
  EXPECT_EQ(test::http(port, "GET", "/api/v1/branches").status, 200);  // still serving
}

// Issue 12 item 10: the HTTP server caps its open connections (default 256):
// one more is answered 503 and closed, and serving goes on once they close.
TEST_F(ApiTest, Issue12_ConnectionsBeyondTheCapGet503) {
  std::vector<int> idle;
  for (int i = 0; i < 256; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    idle.push_back(fd);
  }
  std::this_thread::sleep_for(300ms);  // accepted
  auto over = test::http(port, "GET", "/api/v1/branches");
  EXPECT_EQ(over.status, 503) << over.body;
  EXPECT_NE(over.body.find("too many open connections"), std::string::npos) << over.body;
  for (int fd : idle) ::close(fd);
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    served = test::http(port, "GET", "/api/v1/branches").status == 200;
    if (!served) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(served);
}

TEST_F(ApiTest, ARequestStuckOnTheDatabaseDoesNotStallOthers) {
  // Another process holds SQLite's write lock (as a long `flight run` or a
  // backup could), so a change through the API waits for the busy timeout.
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(dir.str("state/pushgate.db").c_str(), &holder), SQLITE_OK);
  sqlite3_busy_timeout(holder, 5000);
  auto exec = [&](const char* sql) { return sqlite3_exec(holder, sql, nullptr, nullptr, nullptr); };
  ASSERT_EQ(exec("BEGIN IMMEDIATE"), SQLITE_OK);
  std::atomic<bool> released{false};
  auto stuck = std::async(std::launch::async, [&] {
    return test::http(port, "POST", "/api/v1/hosts/h0/disable", R"({"reason": "stuck"})", auth());
  });
  std::this_thread::sleep_for(300ms);  // the change is waiting inside SQLite now
  // Reads, pages and errors are answered while it waits ...
  EXPECT_EQ(test::http(port, "GET", "/api/v1/hosts").status, 200);
  EXPECT_EQ(test::http(port, "GET", "/metrics").status, 200);
  EXPECT_EQ(test::http(port, "GET", "/").status, 200);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/nope").status, 404);
  EXPECT_FALSE(released.load());
  EXPECT_EQ(stuck.wait_for(0s), std::future_status::timeout);
  // ... and the change completes once the lock goes.
  ASSERT_EQ(exec("ROLLBACK"), SQLITE_OK);
  released = true;
  sqlite3_close(holder);
  auto done = stuck.get();
  EXPECT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(nlohmann::json::parse(test::http(port, "GET", "/api/v1/hosts").body)[0]["state"], "disabled");
}

// Issue 12 item 2: an API change that cannot get the database within
// daemon.api_busy_timeout_seconds is a 503 with Retry-After, not a 500,
// and changes nothing; the same request succeeds once the lock is gone.
TEST_F(ApiTest, Issue12_ChangeBehindABusyDatabaseIs503ThenSucceeds) {
  daemon.reset();  // restarted with a short busy timeout
  auto cfg = nlohmann::json::parse(test::read_file(dir.path() / "c.json"));
  cfg["daemon"]["api_busy_timeout_seconds"] = 1;
  test::write_file(dir.path() / "c.json", cfg.dump(2));
  daemon = std::make_unique<test::Background>(
      std::vector<std::string>{test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str("daemon.log"));
  ASSERT_TRUE(test::wait_for_port(port, 10000)) << test::read_file(dir.path() / "daemon.log");

  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(dir.str("state/pushgate.db").c_str(), &holder), SQLITE_OK);
  sqlite3_busy_timeout(holder, 10000);
  ASSERT_EQ(sqlite3_exec(holder, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto t0 = std::chrono::steady_clock::now();
  auto busy = test::http(port, "POST", "/api/v1/hosts/h0/disable", R"({"reason": "maintenance"})", auth());
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(busy.status, 503) << busy.body;
  EXPECT_NE(busy.body.find("error"), std::string::npos) << busy.body;
  EXPECT_NE(busy.headers.find("Retry-After: 5"), std::string::npos) << busy.headers;
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 10s);
  ASSERT_EQ(sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(holder);
  EXPECT_EQ(nlohmann::json::parse(test::http(port, "GET", "/api/v1/hosts").body)[0]["state"], "enabled");
  auto done = test::http(port, "POST", "/api/v1/hosts/h0/disable", R"({"reason": "maintenance"})", auth());
  EXPECT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(nlohmann::json::parse(test::http(port, "GET", "/api/v1/hosts").body)[0]["state"], "disabled");
}

TEST_F(ApiTest, EveryResponseFollowsItsSchema) {
  // The check itself can fail.
  EXPECT_NE(schema_errors("api/flights.schema.json", R"([{"flight": 1, "branch": "b", "blessing": "real",
                                                          "created": 1, "outcome": "bogus"}])"), "");
  EXPECT_NE(schema_errors("api/error.schema.json", R"({"message": "x"})"), "");

  expect_follows("api/trigger.schema.json", test::http(port, "POST", "/api/v1/branches/xen-unstable/trigger", "", auth()), 202);
  nlohmann::json flights = wait_for_finished_flight();
  ASSERT_EQ(flights.size(), 1u);
  expect_follows("api/flights.schema.json", test::http(port, "GET", "/api/v1/flights?branch=xen-unstable&limit=5"));
  expect_follows("api/flight.schema.json", test::http(port, "GET", "/api/v1/flights/1"));
  expect_follows("verdict.schema.json", test::http(port, "GET", "/api/v1/flights/1/report?format=json"));
  auto branches = test::http(port, "GET", "/api/v1/branches");
  expect_follows("api/branches.schema.json", branches);
  EXPECT_TRUE(nlohmann::json::parse(branches.body)[0].contains("tested_age_seconds")) << branches.body;
  expect_follows("api/branch.schema.json", test::http(port, "GET", "/api/v1/branches/xen-unstable"));
  expect_follows("api/hosts.schema.json", test::http(port, "GET", "/api/v1/hosts"));
  expect_follows("api/history-host.schema.json", test::http(port, "GET", "/api/v1/history/host/h0"));
  expect_follows("api/history-job.schema.json",
                 test::http(port, "GET", "/api/v1/history/job?branch=xen-unstable&job=test-amd64"));
  auto steps = test::http(port, "GET", "/api/v1/history/step?branch=xen-unstable&job=test-amd64&testid=work");
  expect_follows("api/history-job.schema.json", steps);
  EXPECT_EQ(nlohmann::json::parse(steps.body)[0]["status"], "pass");

  // Frozen refs: add, list, move, remove.
  expect_follows("api/frozen-change.schema.json",
                 test::http(port, "POST", "/api/v1/frozen",
                            R"({"tree": "qemu", "branch": "xen-unstable", "rev": "master~1", "reason": "test"})", auth()));
  auto frozen = test::http(port, "GET", "/api/v1/frozen");
  expect_follows("api/frozen.schema.json", frozen);
  EXPECT_EQ(nlohmann::json::parse(frozen.body).size(), 1u) << frozen.body;
  expect_follows("api/frozen-change.schema.json",
                 test::http(port, "PUT", "/api/v1/frozen", R"({"tree": "qemu", "branch": "xen-unstable", "rev": "master"})", auth()));
  expect_follows("api/frozen-change.schema.json", test::http(port, "DELETE", "/api/v1/frozen/qemu/xen-unstable", "", auth()));
  expect_follows("api/host-state.schema.json", test::http(port, "POST", "/api/v1/hosts/h0/disable", "{}", auth()));

  // Errors.
  expect_follows("api/error.schema.json", test::http(port, "GET", "/api/v1/nope"), 404);
  expect_follows("api/error.schema.json", test::http(port, "GET", "/api/v1/branches/nope"), 404);
  expect_follows("api/error.schema.json", test::http(port, "GET", "/api/v1/flights/x"), 400);
  expect_follows("api/error.schema.json", test::http(port, "POST", "/api/v1/hosts/h0/enable"), 401);
  expect_follows("api/error.schema.json", test::http(port, "PUT", "/api/v1/hosts", "", auth()), 405);
  expect_follows("api/error.schema.json", test::http(port, "POST", "/api/v1/frozen", std::string(100000, 'x'), auth()), 413);

  // The CLI's --json shares these views.
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", dir.str("c.json")});
    auto r = test::pushgate(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return test::HttpResult{200, r.out};
  };
  expect_follows("api/flight.schema.json", cli({"flight", "show", "1", "--json"}));
  expect_follows("api/branches.schema.json", cli({"branch", "status", "--json", "--no-fetch"}));
  expect_follows("api/hosts.schema.json", cli({"host", "list", "--json"}));
}

// Issue 16 item 3: every --json output of the CLI has a schema, and follows it.
TEST_F(ApiTest, Issue16_EveryCliJsonOutputFollowsItsSchema) {
  auto cli = [&](std::vector<std::string> args, int code = 0) {
    args.insert(args.begin(), {"--config", dir.str("c.json")});
    auto r = test::pushgate(args);
    EXPECT_EQ(r.exit_code, code) << r.err;
    return test::HttpResult{200, r.out};
  };
  // The check itself can fail.
  EXPECT_NE(schema_errors("cli/revisions.schema.json", R"({"branch": "b"})"), "");
  EXPECT_NE(schema_errors("cli/config-check.schema.json",
                          R"({"file": "c", "valid": true, "errors": [{"file": "c", "pointer": "", "message": "m"}], "warnings": []})"),
            "");

  expect_follows("cli/revisions.schema.json", cli({"revisions", "xen-unstable", "--json"}));
  auto rev = nlohmann::json::parse(cli({"revisions", "xen-unstable", "--json", "--no-fetch"}).body);
  EXPECT_EQ(rev["trees"][1]["ref"], "refs/heads/master") << rev.dump(2);
  expect_follows("cli/host.schema.json", cli({"host", "show", "h0", "--json"}));
  expect_follows("cli/config-check.schema.json", cli({"config", "check", "--json"}));
  expect_follows("cli/db-status.schema.json", cli({"db", "status", "--json"}));
  // Frozen refs: the change, the list (which broke its schema with
  // configured_branch), the history.
  expect_follows("api/frozen-change.schema.json",
                 cli({"frozen", "add", "qemu", "xen-unstable", "--rev", "master~1", "--reason", "test", "--json"}));
  auto frozen = cli({"frozen", "list", "--json"});
  expect_follows("api/frozen.schema.json", frozen);
  EXPECT_EQ(nlohmann::json::parse(frozen.body)[0]["configured_branch"], true) << frozen.body;
  auto history = cli({"frozen", "list", "--history", "--json"});
  expect_follows("cli/frozen-history.schema.json", history);
  auto change = nlohmann::json::parse(history.body).at(0);
  EXPECT_EQ(change["at_utc"], api::iso_utc(change["at"].get<std::int64_t>()));
  EXPECT_EQ(change["who"].get<std::string>().empty(), false);
  // Human times in the text history: a date, not Unix seconds.
  auto text = test::pushgate({"--config", dir.str("c.json"), "frozen", "list", "--history"});
  EXPECT_NE(text.out.find(api::iso_utc(change["at"].get<std::int64_t>()).substr(0, 10)), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find(std::to_string(change["at"].get<std::int64_t>())), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(" UTC ("), std::string::npos) << text.out;

  // An invalid configuration: valid false, exit 2, still the schema.
  test::write_file(dir.path() / "bad.json", R"({"trees": [{"name": "xen"}]})");
  auto bad = test::pushgate({"--config", dir.str("bad.json"), "config", "check", "--json"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(schema_errors("cli/config-check.schema.json", bad.out), "");
  EXPECT_EQ(nlohmann::json::parse(bad.out)["valid"], false);
}

// Issue 16 item 3: times in ISO 8601 beside Unix seconds, in the API and the CLI.
TEST_F(ApiTest, Issue16_TimesComeAsUnixSecondsAndIso8601) {
  EXPECT_EQ(api::iso_utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(api::iso_utc(1795000000), "2026-11-18T11:06:40Z");
  auto j = api::with_utc_times(nlohmann::json::parse(R"({"created": 0, "finished": null, "jobs": [{"started": 60}],
                                                         "note": {"at": "not a number"}})"));
  EXPECT_EQ(j["created_utc"], "1970-01-01T00:00:00Z");
  EXPECT_TRUE(j["finished_utc"].is_null());
  EXPECT_EQ(j["jobs"][0]["started_utc"], "1970-01-01T00:01:00Z");
  EXPECT_FALSE(j["note"].contains("at_utc"));

  ASSERT_EQ(test::http(port, "POST", "/api/v1/branches/xen-unstable/trigger", "", auth()).status, 202);
  nlohmann::json flights = wait_for_finished_flight();
  ASSERT_EQ(flights.size(), 1u);
  EXPECT_EQ(flights[0]["created_utc"], api::iso_utc(flights[0]["created"].get<std::int64_t>()));
  auto flight = nlohmann::json::parse(test::http(port, "GET", "/api/v1/flights/1").body);
  EXPECT_EQ(flight["finished_utc"], api::iso_utc(flight["finished"].get<std::int64_t>()));
  auto cli = test::pushgate({"--config", dir.str("c.json"), "flight", "show", "1", "--json"});
  EXPECT_EQ(nlohmann::json::parse(cli.out)["created_utc"], flights[0]["created_utc"]) << cli.out;
}

// Issue 16 item 3: unknown filters are mistakes (exit 2, 400), not empty results.
TEST_F(ApiTest, Issue16_UnknownFiltersAreRefused) {
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", dir.str("c.json")});
    return test::pushgate(args);
  };
  auto r = cli({"flight", "list", "--branch", "xen-unstabel"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.err.find("did you mean \"xen-unstable\""), std::string::npos) << r.err;
  r = cli({"history", "step", "xen-unstable", "test-amd64", "wrk"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.err.find("did you mean \"work\""), std::string::npos) << r.err;
  EXPECT_EQ(cli({"history", "job", "xen-unstable", "test-amd46"}).exit_code, 2);
  EXPECT_EQ(cli({"history", "host", "h9"}).exit_code, 2);
  EXPECT_EQ(cli({"bisect", "list", "--branch", "nope"}).exit_code, 2);
  EXPECT_EQ(cli({"history", "step", "xen-unstable", "test-amd64", "work"}).exit_code, 0);

  auto api = test::http(port, "GET", "/api/v1/flights?branch=xen-unstabel");
  EXPECT_EQ(api.status, 400) << api.body;
  EXPECT_NE(api.body.find("did you mean"), std::string::npos) << api.body;
  EXPECT_EQ(test::http(port, "GET", "/api/v1/history/step?branch=xen-unstable&job=test-amd64&testid=wrok").status, 400);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/history/job?branch=nope&job=test-amd64").status, 400);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/history/host/h9").status, 400);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/history/step?branch=xen-unstable&job=test-amd64&testid=work").status, 200);
}

// Issue 16 item 3: /api/v1/openapi.json lists exactly the routes the server
// has (read from its source), each answered, each 200 answer following the
// schema the document names; every schema it names is served.
TEST_F(ApiTest, Issue16_OpenApiDocumentMatchesTheRoutes) {
  auto doc_r = test::http(port, "GET", "/api/v1/openapi.json");
  ASSERT_EQ(doc_r.status, 200);
  auto doc = nlohmann::json::parse(doc_r.body);
  EXPECT_EQ(doc["openapi"].get<std::string>().substr(0, 2), "3.");

  // The routes in the router's source: is({"api", "v1", "flights", "*"}).
  std::set<std::string> in_source;
  std::string src = test::read_file(test::source_dir() / "src/api/routes.cpp");
  std::regex route(R"(is\(\{([^}]*)\}\))");
  for (auto it = std::sregex_iterator(src.begin(), src.end(), route); it != std::sregex_iterator(); ++it) {
    std::string parts = (*it)[1], path;
    std::regex word(R"re("([^"]*)")re");
    for (auto w = std::sregex_iterator(parts.begin(), parts.end(), word); w != std::sregex_iterator(); ++w) {
      path += "/" + (*w)[1].str();
    }
    if (!path.empty()) in_source.insert(path);
  }
  ASSERT_GT(in_source.size(), 15u);
  std::set<std::string> documented;
  for (auto& [path, ops] : doc["paths"].items()) {
    documented.insert(std::regex_replace(path, std::regex(R"(\{[^}]+\})"), "*"));
  }
  EXPECT_EQ(documented, in_source);

  std::map<std::string, std::string> sample{{"{flight}", "1"}, {"{id}", "1"}, {"{branch}", "xen-unstable"},
                                            {"{host}", "h0"}, {"{tree}", "qemu"}, {"{name}", "flight.schema.json"}};
  ASSERT_EQ(test::http(port, "POST", "/api/v1/branches/xen-unstable/trigger", "", auth()).status, 202);
  for (int i = 0; i < 400; ++i) {
    auto f = nlohmann::json::parse(test::http(port, "GET", "/api/v1/flights").body);
    if (!f.empty() && f[0]["outcome"] != "") break;
    std::this_thread::sleep_for(50ms);
  }
  test::pushgate({"--config", dir.str("c.json"), "frozen", "add", "qemu", "xen-unstable", "--rev", "master", "--reason", "t"});
  for (auto& [path, ops] : doc["paths"].items()) {
    std::string target = path;
    for (const auto& [k, v] : sample) {
      if (auto at = target.find(k); at != std::string::npos) target.replace(at, k.size(), v);
    }
    for (auto& [method, op] : ops.items()) {
      std::string query;
      for (const auto& prm : op.value("parameters", nlohmann::json::array())) {
        if (prm["in"] == "query" && prm.value("required", false)) {
          std::string name = prm["name"];
          query += (query.empty() ? "?" : "&") + name + "=" +
                   (name == "branch" ? "xen-unstable" : name == "job" ? "test-amd64" : "work");
        }
      }
      std::string m = method;
      for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      auto r = test::http(port, m, target + query, m == "GET" ? "" : "{}", auth());
      SCOPED_TRACE(m + " " + target + query);
      EXPECT_NE(r.status, 405) << r.body;
      EXPECT_EQ(r.body.find("no such route"), std::string::npos) << r.body;
      EXPECT_TRUE(op["responses"].contains(std::to_string(r.status))) << r.status << " is not documented: " << r.body;
      if (m == "GET" && r.status == 200 && op["responses"]["200"].contains("content")) {
        auto& content = op["responses"]["200"]["content"];
        if (content.contains("application/json") && content["application/json"]["schema"].contains("$ref")) {
          std::string ref = content["application/json"]["schema"]["$ref"];
          std::string file = ref.substr(std::string("schemas/").size());
          std::string rel = file == "verdict.schema.json" ? file : "api/" + file;
          EXPECT_EQ(schema_errors(rel, r.body), "");
        }
      }
    }
  }
  // Every schema it refers to is served, as in the source tree.
  std::set<std::string> refs;
  std::regex refre(R"re("\$ref": "schemas/([^"]+)")re");
  for (auto it = std::sregex_iterator(doc_r.body.begin(), doc_r.body.end(), refre); it != std::sregex_iterator(); ++it) {
    refs.insert((*it)[1]);
  }
  ASSERT_GT(refs.size(), 10u);
  for (const auto& f : refs) {
    auto r = test::http(port, "GET", "/api/v1/schemas/" + f);
    EXPECT_EQ(r.status, 200) << f;
    auto want = nlohmann::json::parse(
        test::read_file(test::source_dir() / "schemas" / (f == "verdict.schema.json" ? f : "api/" + f)));
    EXPECT_EQ(nlohmann::json::parse(r.body), want) << f;
  }
  EXPECT_EQ(test::http(port, "GET", "/api/v1/schemas/nope.json").status, 404);
}

TEST_F(ApiTest, RefUpdatedWebhookPollsTheBranchesThatUseTheTree) {
  EXPECT_EQ(test::http(port, "POST", "/api/v1/hooks/ref-updated", R"({"tree": "xen"})").status, 401);
  expect_follows("api/error.schema.json", test::http(port, "POST", "/api/v1/hooks/ref-updated", R"({"tree": "nope"})", auth()), 404);
  expect_follows("api/error.schema.json", test::http(port, "POST", "/api/v1/hooks/ref-updated", "{}", auth()), 400);
  auto flights = [&] { return nlohmann::json::parse(test::http(port, "GET", "/api/v1/flights").body); };
  auto finished = [&](std::size_t n) {
    for (int i = 0; i < 400; ++i) {
      auto f = flights();
      if (f.size() >= n && f[0]["outcome"] != "") return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };
  // No schedule in this config: only the hook makes the daemon look.
  auto hook = test::http(port, "POST", "/api/v1/hooks/ref-updated", R"({"tree": "qemu", "ref": "refs/heads/master"})", auth());
  expect_follows("api/hook.schema.json", hook, 202);
  EXPECT_EQ(nlohmann::json::parse(hook.body)["polling"], nlohmann::json::array({"xen-unstable"}));  // qemu is a dependency
  ASSERT_TRUE(finished(1)) << test::read_file(dir.path() / "daemon.log");  // the baseline flight
  test::GitRepoBuilder xen(dir.str("up/xen.git"));
  std::string good = xen.commit_on("staging", "xen: new");
  ASSERT_EQ(test::http(port, "POST", "/api/v1/hooks/ref-updated", R"({"tree": "xen", "ref": "refs/heads/staging"})", auth()).status, 202);
  ASSERT_TRUE(finished(2)) << test::read_file(dir.path() / "daemon.log");
  for (int i = 0; i < 200 && xen.head_of("master") != good; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(xen.head_of("master"), good);
  // Nothing new: a poll, but no flight.
  ASSERT_EQ(test::http(port, "POST", "/api/v1/hooks/ref-updated", R"({"tree": "xen"})", auth()).status, 202);
  std::this_thread::sleep_for(1s);
  auto all = flights();
  ASSERT_EQ(all.size(), 2u);
  // Issue 15 item 6: each flight says which hook made it (newest first).
  EXPECT_EQ(all[0]["trigger"], (nlohmann::json{{"kind", "webhook"}, {"detail", "tree xen refs/heads/staging"}}));
  EXPECT_EQ(all[1]["trigger"],
            (nlohmann::json{{"kind", "webhook"}, {"detail", "tree qemu refs/heads/master; baseline flight"}}));
}

TEST_F(ApiTest, ManualTriggerRunsAFlightVisibleThroughTheApi) {
  auto t = test::http(port, "POST", "/api/v1/branches/xen-unstable/trigger", "", auth());
  ASSERT_EQ(t.status, 202) << t.body;
  EXPECT_EQ(test::http(port, "POST", "/api/v1/branches/nope/trigger", "", auth()).status, 404);
  nlohmann::json flights;
  for (int i = 0; i < 400; ++i) {
    flights = nlohmann::json::parse(test::http(port, "GET", "/api/v1/flights?branch=xen-unstable").body);
    if (!flights.empty() && flights[0]["outcome"] != "") break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(flights.size(), 1u) << test::read_file(dir.path() / "daemon.log");
  EXPECT_EQ(flights[0]["outcome"], "perfect");
  auto one = nlohmann::json::parse(test::http(port, "GET", "/api/v1/flights/1").body);
  EXPECT_EQ(one["jobs"][0]["status"], "pass");
  auto report = test::http(port, "GET", "/api/v1/flights/1/report?format=text");
  EXPECT_EQ(report.status, 200);
  EXPECT_NE(report.body.find("[xen-unstable baseline test] 1: all pass"), std::string::npos) << report.body;
  auto hist = nlohmann::json::parse(test::http(port, "GET", "/api/v1/history/job?branch=xen-unstable&job=test-amd64").body);
  ASSERT_EQ(hist.size(), 1u);
  EXPECT_EQ(hist[0]["host"], "h0");
  auto metrics = test::http(port, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  for (const char* family : {"pushgate_flights_total{outcome=\"perfect\"} 1", "pushgate_jobs_total{status=\"pass\"} 1",
                             "pushgate_jobs{status=\"running\"} 0", "pushgate_flights_unfinished 0",
                             "pushgate_queue_length 0", "pushgate_hosts{state=\"enabled\"} 1",
                             "pushgate_step_duration_seconds_count 1",
                             "pushgate_push_failures{branch=\"xen-unstable\"} 0",
                             // Issue 13 item 4: per-branch gauges.
                             "pushgate_branch_last_tolerable_flight{branch=\"xen-unstable\"} 1",
                             "pushgate_branch_tested_age_seconds{branch=\"xen-unstable\"} "}) {
    EXPECT_NE(metrics.body.find(family), std::string::npos) << family << "\n" << metrics.body;
  }
  auto when = metrics.body.find("pushgate_branch_last_tolerable_timestamp_seconds{branch=\"xen-unstable\"} ");
  ASSERT_NE(when, std::string::npos) << metrics.body;
  std::int64_t at = std::stoll(metrics.body.substr(metrics.body.find("} ", when) + 2));
  EXPECT_NEAR(static_cast<double>(at), static_cast<double>(std::time(nullptr)), 120.0);
}

TEST_F(ApiTest, WebPagesServeAndRenderInChromium) {
  ASSERT_EQ(test::http(port, "POST", "/api/v1/branches/xen-unstable/trigger", "", auth()).status, 202);
  for (int i = 0; i < 400; ++i) {
    auto f = nlohmann::json::parse(test::http(port, "GET", "/api/v1/flights").body);
    if (!f.empty() && f[0]["outcome"] != "") break;
    std::this_thread::sleep_for(50ms);
  }
  auto board = test::http(port, "GET", "/");
  EXPECT_EQ(board.status, 200);
  EXPECT_NE(board.body.find("<table id=\"branches\">"), std::string::npos);
  EXPECT_NE(board.body.find("xen-unstable"), std::string::npos);
  EXPECT_NE(board.body.find("href=\"/flights/1\""), std::string::npos) << board.body;
  auto flight = test::http(port, "GET", "/flights/1");
  EXPECT_EQ(flight.status, 200);
  EXPECT_NE(flight.body.find("[xen-unstable baseline test] 1: all pass"), std::string::npos);
  EXPECT_NE(flight.body.find("Not pushed: baseline flight"), std::string::npos) << flight.body;
  EXPECT_NE(flight.body.find("/history/job?branch=xen-unstable&amp;job=test-amd64"), std::string::npos);
  auto history = test::http(port, "GET", "/history/job?branch=xen-unstable&job=test-amd64");
  EXPECT_EQ(history.status, 200);
  EXPECT_NE(history.body.find("href=\"/hosts/h0\""), std::string::npos) << history.body;
  auto host = test::http(port, "GET", "/hosts/h0");
  EXPECT_EQ(host.status, 200);
  // Issue 15 item 3: what the host ran and for which branch, not raw events.
  EXPECT_NE(host.body.find("<table id=\"branches\">"), std::string::npos) << host.body;
  EXPECT_NE(host.body.find("job=test-amd64\">test-amd64</a></td><td>host</td><td class=\"good\">pass</td>"), std::string::npos)
      << host.body;
  EXPECT_EQ(host.body.find(">allocate<"), std::string::npos) << host.body;
  // The job history: a column per tree (xen and qemu) with the revision.
  EXPECT_NE(history.body.find("<th>xen</th><th>qemu</th>"), std::string::npos) << history.body;
  EXPECT_EQ(test::http(port, "GET", "/frozen").status, 200);
  EXPECT_EQ(test::http(port, "GET", "/flights/x").status, 404);
  // Issue 12 item 10: " 1" and "1\0" are no flight numbers, a bad escape is a 400.
  EXPECT_EQ(test::http(port, "GET", "/api/v1/flights/%201").status, 400);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/flights/1%00").status, 400);
  auto bad_escape = test::http(port, "GET", "/api/v1/flights?branch=%zz");
  EXPECT_EQ(bad_escape.status, 400);
  EXPECT_NE(bad_escape.body.find("bad %-escape"), std::string::npos) << bad_escape.body;
  EXPECT_EQ(test::http(port, "GET", "/history/job?branch=%zz&job=x").status, 400);
  EXPECT_EQ(test::http(port, "GET", "/flights/%201").status, 404);
  EXPECT_EQ(test::http(port, "GET", "/hosts/nope").status, 404);
  EXPECT_EQ(test::http(port, "POST", "/", "", auth()).status, 405);

  if (!std::filesystem::exists("/usr/bin/chromium")) GTEST_FAIL() << "chromium is missing: scripts/setup.sh installs it";
  // Kept for people to look at, under the build directory (never the checkout).
  const auto artifacts = test::artifacts_dir();
  std::string shot = (artifacts / "branch-board.png").string();
  std::vector<std::string> chrome = test::chromium(dir.str("chrome"), "1200,700");
  auto dom = test::run(test::with_url(chrome, "http://127.0.0.1:" + std::to_string(port) + "/", {"--dump-dom"}));
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_NE(dom.out.find("xen-unstable"), std::string::npos) << dom.out;
  EXPECT_NE(dom.out.find("class=\"good\""), std::string::npos);  // the perfect flight is coloured
  auto shot_args = test::with_url(chrome, "http://127.0.0.1:" + std::to_string(port) + "/flights/1",
      {"--screenshot=" + shot});
  auto s = test::run(shot_args);
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_GT(std::filesystem::file_size(shot), 1000u) << "screenshot kept at " << shot;
}

// Issue 13 item 4: every query a request runs (API, /metrics, web pages) is
// read from the store's statement cache after the requests, and its plan is
// checked: no full scan of a table that grows with history.
TEST(ApiQueryPlans, Issue13_EveryRequestPathQueryUsesAnIndex) {
  TempDir dir;
  test::GitRepoBuilder xen(dir.str("up/xen.git"));
  xen.commit_on("master", "xen: import");
  xen.set_branch("staging", xen.commit_on("master", "xen: next"));
  nlohmann::json cfg = {
      {"daemon", {{"state_dir", "state"}}},
      {"trees", {{{"name", "xen"}, {"upstream", "up/xen.git"}}}},
      {"branches", {{{"name", "xen-unstable"}, {"tree", "xen"}, {"input", "staging"}, {"tested", "master"}}}},
      {"recipes", {{"r", {{"steps", {{{"testid", "work"}, {"run", "true"}}}}}}}},
      {"jobs", {{{"name", "build-amd64"}, {"recipe", "r"}, {"hosts", {{"host", {"x86"}}}}},
                {{"name", "test-amd64"}, {"recipe", "r"}, {"depends", {"build-amd64"}},
                 {"hosts", {{"host", {"x86"}}}}, {"runvars", {{"buildjob", "build-amd64"}}}}}},
      {"hosts", {{{"name", "h0"}, {"kind", "local"}, {"flags", {"x86"}}}}}};
  test::write_file(dir.path() / "c.json", cfg.dump(2));
  std::filesystem::create_directories(dir.path() / "state");
  for (int i = 0; i < 2; ++i) {
    auto r = test::pushgate({"--config", dir.str("c.json"), "flight", "run", "xen-unstable", "--always"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  auto loaded = config::load(dir.str("c.json"));
  ASSERT_TRUE(loaded.config.has_value());
  auto store = store::Store::open({loaded.config->daemon.database}).value();
  revisions::Mirrors mirrors(*loaded.config);
  api::Context ctx;
  ctx.config = &*loaded.config;
  ctx.store = store.get();
  ctx.mirrors = &mirrors;
  store::Store::BisectionRow bisection;
  bisection.branch = "xen-unstable";
  bisection.flight = FlightId{2};
  bisection.basis_flight = FlightId{1};
  bisection.who = "test";
  bisection.targets = R"([["test-amd64", "work"]])";
  ASSERT_EQ(store->create_bisection(bisection).value(), 1);
  for (const char* target :
       {"/api/v1/bisections", "/api/v1/bisections?status=running", "/api/v1/bisections?branch=xen-unstable",
        "/api/v1/bisections?branch=xen-unstable&status=running", "/api/v1/bisections/1", "/bisections",
        "/bisections/1", "/metrics", "/api/v1/flights", "/api/v1/flights?branch=xen-unstable", "/api/v1/flights?outcome=perfect",
        "/api/v1/flights?branch=xen-unstable&outcome=perfect", "/api/v1/flights?blessing=real",
        "/api/v1/flights?branch=xen-unstable&blessing=real&before=2", "/api/v1/flights?before=2", "/api/v1/flights/1",
        "/api/v1/flights/2/report?format=json", "/api/v1/flights/2/report?format=html",
        "/api/v1/flights/2/report?format=text", "/api/v1/branches", "/api/v1/branches/xen-unstable",
        "/api/v1/hosts", "/api/v1/history/host/h0", "/api/v1/history/job?branch=xen-unstable&job=test-amd64",
        "/api/v1/history/step?branch=xen-unstable&job=test-amd64&testid=work", "/api/v1/frozen", "/",
        "/flights/2", "/history/job?branch=xen-unstable&job=test-amd64", "/hosts/h0", "/frozen", "/flights",
        "/flights?branch=xen-unstable&outcome=perfect&before=2", "/branches/xen-unstable", "/queue",
        "/history/step?branch=xen-unstable&job=test-amd64&testid=work", "/search?commit=0123abcd"}) {
    auto r = api::handle(ctx, {"GET", target, "", ""});
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
  }
  auto statements = store->prepared_statements();
  EXPECT_GT(statements.size(), 15u) << "the requests ran through the statement cache";
  for (const auto& sql : statements) {
    EXPECT_EQ(test::history_scan(loaded.config->daemon.database, sql), "") << sql;
  }
}

}  // namespace
}  // namespace pushgate

namespace pushgate {
namespace {

// Issue 15 item 4: pages come from templates (src/web/templates/) and the
// template library escapes every value: a block reason a release manager
// typed with markup in it stays text on the board.
TEST_F(ApiTest, Issue15_PagesComeFromTemplatesThatEscapeEveryValue) {
  const std::string reason = "<script>alert(\"x\")</script> & more";
  auto blocked = test::pushgate({"--config", dir.str("c.json"), "branch", "block", "xen-unstable", "--reason", reason});
  ASSERT_EQ(blocked.exit_code, 0) << blocked.err;
  auto board = test::http(port, "GET", "/");
  EXPECT_EQ(board.status, 200);
  EXPECT_EQ(board.body.find("<script>alert"), std::string::npos) << board.body;
  EXPECT_NE(board.body.find("BLOCKED: &lt;script&gt;alert(&quot;x&quot;)&lt;&#x2F;script&gt; &amp; more"), std::string::npos)
      << board.body;
  // Every page is inside the one layout: its navigation and its title.
  for (const std::string target : {"/", "/frozen", "/bisections", "/hosts/h0", "/hosts/nope", "/nowhere",
                                   "/history/job?branch=xen-unstable&job=test-amd64"}) {
    auto r = test::http(port, "GET", target);
    EXPECT_NE(r.body.find("<nav><a href=\"/\">branches</a><a href=\"/bisections\">bisections</a>"), std::string::npos)
        << target << ": " << r.body;
    EXPECT_NE(r.body.find(" - pushgate</title>"), std::string::npos) << target;
  }
  auto missing = test::http(port, "GET", "/hosts/%3Cb%3E");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("No host &quot;&lt;b&gt;&quot;."), std::string::npos) << missing.body;
}

// Issue 15 item 3: the flight list (filters, paging), the branch page, the
// queue with who holds the hosts a waiting job could take, one step over
// time, and "which flights tested this commit"; the board links to them and
// shows a running flight's progress. The queue and a running board are also
// loaded in headless Chromium.
TEST_F(ApiTest, Issue15_FlightListBranchQueueStepHistoryAndCommitSearchPages) {
  const std::string go = dir.str("GO");
  {
    TearDown();
    auto cfg = nlohmann::json::parse(test::read_file(dir.path() / "c.json"));
    cfg["recipes"]["r"]["steps"] = {{{"testid", "work"}, {"run", "while [ ! -e " + go + " ]; do sleep 0.1; done"}}};
    cfg["jobs"].push_back({{"name", "test-amd64-pair"}, {"recipe", "r"}, {"hosts", {{"host", {"x86"}}}}});
    test::write_file(dir.path() / "c.json", cfg.dump(2));
    daemon = std::make_unique<test::Background>(
        std::vector<std::string>{test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str("daemon.log"));
    ASSERT_TRUE(test::wait_for_port(port, 10000)) << test::read_file(dir.path() / "daemon.log");
  }
  ASSERT_EQ(test::http(port, "POST", "/api/v1/branches/xen-unstable/trigger", "", auth()).status, 202);
  // One job runs on h0, the other waits for it.
  test::HttpResult queue;
  for (int i = 0; i < 400; ++i) {
    queue = test::http(port, "GET", "/queue");
    if (queue.body.find("held by flight 1") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(queue.status, 200);
  EXPECT_NE(queue.body.find("<table id=\"waiting\">"), std::string::npos) << queue.body;
  EXPECT_NE(queue.body.find("held by flight 1 test-amd64"), std::string::npos) << queue.body;
  EXPECT_NE(queue.body.find("host: x86"), std::string::npos) << queue.body;
  EXPECT_NE(queue.body.find(" of 60m</td>"), std::string::npos) << "waited against the starve limit: " << queue.body;
  // mstch escapes '/' in values too (&#x2F;; a browser shows "/").
  auto board = test::http(port, "GET", "/");
  EXPECT_NE(board.body.find(">running 0&#x2F;2</a>"), std::string::npos) << board.body;
  EXPECT_NE(board.body.find("href=\"/branches/xen-unstable\""), std::string::npos) << board.body;
  auto running = test::http(port, "GET", "/flights");
  EXPECT_NE(running.body.find("running 0&#x2F;2"), std::string::npos) << running.body;

  if (!std::filesystem::exists("/usr/bin/chromium")) GTEST_FAIL() << "chromium is missing: scripts/setup.sh installs it";
  const auto artifacts = test::artifacts_dir();
  std::vector<std::string> chrome = test::chromium(dir.str("chrome"), "1200,700");
  auto dom = test::run(test::with_url(chrome, "http://127.0.0.1:" + std::to_string(port) + "/queue", {"--dump-dom"}));
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_NE(dom.out.find("held by flight 1"), std::string::npos) << dom.out;
  auto shot_args = test::with_url(chrome, "http://127.0.0.1:" + std::to_string(port) + "/queue",
      {"--screenshot=" + (artifacts / "queue.png").string()});
  EXPECT_EQ(test::run(shot_args).exit_code, 0);

  test::write_file(go, "");
  auto flights = wait_for_finished_flight();
  ASSERT_EQ(flights.size(), 1u);
  ASSERT_EQ(flights[0]["outcome"], "perfect") << flights.dump(2);
  auto queue_after = test::http(port, "GET", "/queue");
  EXPECT_NE(queue_after.body.find("No job is waiting for a host."), std::string::npos) << queue_after.body;

  auto list = test::http(port, "GET", "/flights?branch=xen-unstable&outcome=perfect");
  EXPECT_EQ(list.status, 200);
  EXPECT_NE(list.body.find("href=\"/flights/1\""), std::string::npos) << list.body;
  EXPECT_NE(list.body.find("manual (over the API; baseline flight)"), std::string::npos) << list.body;
  EXPECT_NE(test::http(port, "GET", "/flights?outcome=regressions").body.find("No flights match."), std::string::npos);
  EXPECT_EQ(test::http(port, "GET", "/flights?before=1").body.find("href=\"/flights/1\""), std::string::npos) << "paging";
  EXPECT_EQ(test::http(port, "GET", "/flights?branch=nope").status, 404);
  EXPECT_EQ(test::http(port, "GET", "/flights?outcome=great").status, 400);
  EXPECT_EQ(test::http(port, "GET", "/flights?before=x").status, 400);

  auto branch = test::http(port, "GET", "/branches/xen-unstable");
  EXPECT_EQ(branch.status, 200);
  EXPECT_NE(branch.body.find("<table id=\"flights\">"), std::string::npos) << branch.body;
  EXPECT_NE(branch.body.find("href=\"/flights/1\""), std::string::npos) << branch.body;
  EXPECT_NE(branch.body.find("1 tolerable in a row"), std::string::npos) << branch.body;
  EXPECT_NE(branch.body.find("<table id=\"pushes\">"), std::string::npos);
  EXPECT_EQ(test::http(port, "GET", "/branches/nope").status, 404);

  auto step = test::http(port, "GET", "/history/step?branch=xen-unstable&job=test-amd64&testid=work");
  EXPECT_EQ(step.status, 200);
  EXPECT_NE(step.body.find("href=\"/flights/1/test-amd64/1\">pass</a>"), std::string::npos) << step.body;
  EXPECT_NE(step.body.find("href=\"/hosts/h0\""), std::string::npos) << step.body;
  EXPECT_EQ(test::http(port, "GET", "/history/step?branch=xen-unstable&job=test-amd64").status, 404);

  test::GitRepoBuilder xen(dir.str("up/xen.git"));
  const std::string sha = xen.head_of("master");
  auto found = test::http(port, "GET", "/search?commit=" + sha.substr(0, 8));
  EXPECT_EQ(found.status, 200);
  EXPECT_NE(found.body.find("href=\"/flights/1\""), std::string::npos) << found.body;
  EXPECT_NE(found.body.find("xen " + sha.substr(0, 12)), std::string::npos) << found.body;
  auto upper = sha.substr(0, 10);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_NE(test::http(port, "GET", "/search?commit=" + upper).body.find("href=\"/flights/1\""), std::string::npos);
  EXPECT_NE(test::http(port, "GET", "/search?commit=00000000").body.find("No flight tested a commit starting with 00000000."),
            std::string::npos);
  EXPECT_EQ(test::http(port, "GET", "/search?commit=zz%27").status, 400);
  EXPECT_EQ(test::http(port, "GET", "/search?commit=abc").status, 400) << "too short to mean anything";
  EXPECT_EQ(test::http(port, "GET", "/search").status, 200);

  // The same pages in the browser: each renders its table.
  for (const auto& [target, table] : std::vector<std::pair<std::string, std::string>>{
           {"/flights?branch=xen-unstable", "flights"},
           {"/branches/xen-unstable", "pushes"},
           {"/history/step?branch=xen-unstable&job=test-amd64&testid=work", "history"},
           {"/history/job?branch=xen-unstable&job=test-amd64", "history"},
           {"/search?commit=" + sha.substr(0, 8), "results"},
           {"/hosts/h0", "branches"},
           {"/frozen", "frozen"},
           {"/bisections", "bisections"},
           {"/flights/1", "grid"}}) {
    auto page = test::run(test::with_url(chrome, "http://127.0.0.1:" + std::to_string(port) + target, {"--dump-dom"}));
    EXPECT_EQ(page.exit_code, 0) << target << ": " << page.err;
    EXPECT_NE(page.out.find("<table id=\"" + table + "\">"), std::string::npos) << target << ": " << page.out;
  }
}

// Issue 15 item 2: a running flight's page shows progress, never a
// verdict: jobs done/running/queued, the running step against its usual
// time (from the last flight), the host of each job, why each waiting job
// waits (for hosts, and who holds them; for the job it depends on); the
// live part refreshes itself. Once judged: the verdict, and no script.
TEST_F(ApiTest, Issue15_RunningFlightPageShowsProgressAndWaitingReasons) {
  const std::string go = dir.str("GO");
  test::write_file(go, "");
  {
    TearDown();
    auto cfg = nlohmann::json::parse(test::read_file(dir.path() / "c.json"));
    cfg["recipes"]["r"]["steps"] = {{{"testid", "work"}, {"run", "sleep 1; while [ ! -e " + go + " ]; do sleep 0.1; done"}}};
    cfg["jobs"] = {{{"name", "build-amd64"}, {"recipe", "r"}, {"hosts", {{"host", {"x86"}}}}},
                   {{"name", "test-amd64"}, {"recipe", "r"}, {"depends", {"build-amd64"}}, {"hosts", {{"host", {"x86"}}}}},
                   {{"name", "test-other"}, {"recipe", "r"}, {"hosts", {{"host", {"x86"}}}}}};
    cfg["daemon"]["max_parallel_jobs"] = 4;
    test::write_file(dir.path() / "c.json", cfg.dump(2));
    daemon = std::make_unique<test::Background>(
        std::vector<std::string>{test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str("daemon.log"));
    ASSERT_TRUE(test::wait_for_port(port, 10000)) << test::read_file(dir.path() / "daemon.log");
  }
  // Flight 1 sets the usual times; flight 2 is held at its first job.
  ASSERT_EQ(test::http(port, "POST", "/api/v1/branches/xen-unstable/trigger", "", auth()).status, 202);
  ASSERT_EQ(wait_for_finished_flight().size(), 1u);
  std::filesystem::remove(go);
  ASSERT_EQ(test::http(port, "POST", "/api/v1/branches/xen-unstable/trigger", "", auth()).status, 202);
  test::HttpResult page;
  for (int i = 0; i < 400; ++i) {
    page = test::http(port, "GET", "/flights/2");
    if (page.body.find(" running ") != std::string::npos && page.body.find("waiting ") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.body.find("id=\"headline\""), std::string::npos) << "no verdict while it runs: " << page.body;
  EXPECT_NE(page.body.find("<title>[xen-unstable test] 2: running 0&#x2F;3 - pushgate</title>"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("0 of 3 jobs done, 1 running, 1 queued, 1 waiting for hosts."), std::string::npos) << page.body;
  std::regex usual(R"(work running \d+s \(usually \d+s\))");
  EXPECT_TRUE(std::regex_search(page.body, usual)) << page.body;
  EXPECT_NE(page.body.find("waits for build-amd64 (running)"), std::string::npos) << page.body;
  std::regex held(R"(waiting \d+s of 60m for host: x86; h0 held by flight 2 (build-amd64|test-other))");
  EXPECT_TRUE(std::regex_search(page.body, held)) << page.body;
  EXPECT_NE(page.body.find("<a href=\"/hosts/h0\">h0</a>"), std::string::npos) << "the host per job";
  EXPECT_NE(page.body.find("<div id=\"live\">"), std::string::npos);
  EXPECT_NE(page.body.find("DOMParser"), std::string::npos) << "the live part refreshes itself";
  test::write_file(go, "");
  for (int i = 0; i < 600; ++i) {
    page = test::http(port, "GET", "/flights/2");
    if (page.body.find("id=\"headline\"") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  // Input == tested ref here: both flights are baseline flights.
  EXPECT_NE(page.body.find("<title>[xen-unstable baseline test] 2: all pass - pushgate</title>"), std::string::npos)
      << page.body;
  EXPECT_EQ(page.body.find("<script>"), std::string::npos) << "a judged flight's page is static";
  EXPECT_EQ(page.body.find("waiting "), std::string::npos);
}

// Issue 15 item 2: a 120-job flight's grid in headless Chromium, finished
// with a regression and a starved job: every job on one row, the verdict's
// "REGR. vs. F" linked to F, the starved job shown; a screenshot is kept
// under the build directory.
TEST(WebGrid, Issue15_AHundredAndTwentyJobFlightInChromium) {
  TempDir dir;
  test::GitRepoBuilder xen(dir.str("up/xen.git"));
  xen.commit_on("master", "xen: import");
  xen.set_branch("staging", xen.head_of("master"));
  xen.commit_on("staging", "xen: next");
  const int port = test::free_port();
  nlohmann::json jobs = nlohmann::json::array();
  for (int i = 0; i < 119; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "test-amd64-amd64-xl-qemuu-debianhvm-%03d", i);
    jobs.push_back({{"name", name}, {"recipe", "r"}, {"hosts", {{"host", {"x86"}}}}});
  }
  jobs.push_back({{"name", "test-arm64-arm64-xl"}, {"recipe", "r"}, {"hosts", {{"host", {"arm64"}}}}});
  // guest-start fails for the jobs listed in FAIL, and for those in FLAKY
  // only the first time (a heisenbug: its retest passes).
  const std::string top = dir.str();
  const std::string kGuestStart = "! grep -qx $PUSHGATE_JOB " + top + "/FAIL && { ! grep -qx $PUSHGATE_JOB " + top +
                                  "/FLAKY || [ -e " + top + "/flaky.$PUSHGATE_JOB ] || { touch " + top +
                                  "/flaky.$PUSHGATE_JOB; false; }; }";
  nlohmann::json cfg = {
      {"daemon", {{"state_dir", "state"}, {"listen", "127.0.0.1:" + std::to_string(port)}, {"max_parallel_jobs", 12},
                  {"bisect", false}}},
      {"trees", {{{"name", "xen"}, {"upstream", "up/xen.git"}}}},
      {"branches", {{{"name", "xen-unstable"}, {"tree", "xen"}, {"input", "staging"}, {"tested", "master"}}}},
      {"recipes", {{"r", {{"steps", {{{"testid", "host-install"}, {"run", "while [ -e " + dir.str("HOLD") + " ]; do sleep 0.1; done"}},
                                     {{"testid", "guest-start"}, {"run", kGuestStart}}}}}}}},
      {"jobs", jobs},
      {"hosts", nlohmann::json::array()}};
  for (int h = 0; h < 8; ++h) cfg["hosts"].push_back({{"name", "h" + std::to_string(h)}, {"kind", "local"}, {"flags", {"x86"}}});
  test::write_file(dir.path() / "c.json", cfg.dump(2));
  std::filesystem::create_directories(dir.path() / "state");
  // The baseline (the arm64 job starves: no host has the flag), then a
  // flight where job 7's guest-start now fails but 0-6 pass.
  test::write_file(dir.path() / "FAIL", "");
  test::write_file(dir.path() / "FLAKY", "");
  auto first = test::pushgate({"--config", dir.str("c.json"), "flight", "run", "xen-unstable"});
  ASSERT_NE(first.exit_code, 1) << first.err;
  test::write_file(dir.path() / "FAIL", "test-amd64-amd64-xl-qemuu-debianhvm-007\n");
  test::write_file(dir.path() / "FLAKY", "test-amd64-amd64-xl-qemuu-debianhvm-011\n");
  auto second = test::pushgate({"--config", dir.str("c.json"), "flight", "run", "xen-unstable"});
  EXPECT_EQ(second.exit_code, 3) << second.err;
  test::Background d({test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str("daemon.log"));
  ASSERT_TRUE(test::wait_for_port(port, 10000)) << test::read_file(dir.path() / "daemon.log");
  auto page = test::http(port, "GET", "/flights/2");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<a href=\"/flights/1\">REGR. vs. 1</a>"), std::string::npos) << page.body.substr(0, 4000);
  // Job 11 failed, then passed in the retest flight (3): a heisenbug, linked.
  EXPECT_NE(page.body.find("<td class=\"intermittent\"><a href=\"/flights/2/test-amd64-amd64-xl-qemuu-debianhvm-011/2/log\""),
            std::string::npos) << page.body.substr(0, 4000);
  EXPECT_NE(page.body.find("<a href=\"/flights/3\">pass in 3</a>"), std::string::npos);
  EXPECT_NE(page.body.find("Regressions retested in flight <a href=\"/flights/3\">3</a>"), std::string::npos);
  // The job's history names the failing step (linked to its log) and marks
  // the tree that changed between the two runs.
  const std::string job7 = "test-amd64-amd64-xl-qemuu-debianhvm-007";
  auto history = test::http(port, "GET", "/history/job?branch=xen-unstable&job=" + job7);
  EXPECT_NE(history.body.find("<a href=\"/flights/2/" + job7 + "/2/log\">guest-start fail</a>"), std::string::npos)
      << history.body;
  EXPECT_NE(history.body.find("<td class=\"changed\"><b>" + xen.head_of("staging").substr(0, 12) + "</b></td>"),
            std::string::npos) << history.body;
  EXPECT_NE(history.body.find("<td>" + xen.head_of("master").substr(0, 12) + "</td>"), std::string::npos)
      << "the oldest run has nothing to differ from";
  auto host = test::http(port, "GET", "/hosts/h0");
  EXPECT_NE(host.body.find("<a href=\"/branches/xen-unstable\">xen-unstable</a>"), std::string::npos) << host.body;

  if (!std::filesystem::exists("/usr/bin/chromium")) GTEST_FAIL() << "chromium is missing: scripts/setup.sh installs it";
  const auto artifacts = test::artifacts_dir();
  std::vector<std::string> chrome = test::chromium(dir.str("chrome"), "1400,900");
  auto dom = test::run(test::with_url(chrome, "http://127.0.0.1:" + std::to_string(port) + "/flights/2",
      {"--dump-dom"}));
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  std::size_t rows = 0;
  for (std::size_t at = dom.out.find("<th class=\"job\">"); at != std::string::npos; at = dom.out.find("<th class=\"job\">", at + 1)) ++rows;
  EXPECT_EQ(rows, 120u) << "one row per job";
  EXPECT_NE(dom.out.find("class=\"blocking\""), std::string::npos);
  EXPECT_NE(dom.out.find(">starved</td>"), std::string::npos) << "the job no host could take";
  EXPECT_NE(dom.out.find("<div class=\"grid\">"), std::string::npos) << "the grid scrolls inside its box";
  auto shot_args = test::with_url(chrome, "http://127.0.0.1:" + std::to_string(port) + "/flights/2",
      {"--screenshot=" + (artifacts / "flight-120-jobs.png").string()});
  EXPECT_EQ(test::run(shot_args).exit_code, 0);

  // Flight 4 while it runs: 8 jobs on the 8 hosts, held at host-install,
  // 4 more waiting for them (12 at once), the rest queued; its page shows progress, and the page's
  // script follows it to the verdict without a reload by anyone.
  test::write_file(dir.path() / "HOLD", "");
  test::Background run({test::pushgate_binary(), "--config", dir.str("c.json"), "flight", "run", "xen-unstable"},
                       dir.str("run4.log"));
  std::string live;
  for (int i = 0; i < 600; ++i) {
    live = test::http(port, "GET", "/flights/4").body;
    if (live.find("4 waiting for hosts") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_NE(live.find("id=\"progress\""), std::string::npos) << live.substr(0, 3000);
  auto running_dom = test::run(test::with_url(chrome, "http://127.0.0.1:" + std::to_string(port) + "/flights/4",
      {"--dump-dom"}));
  ASSERT_EQ(running_dom.exit_code, 0) << running_dom.err;
  EXPECT_NE(running_dom.out.find("0 of 120 jobs done, 8 running, 108 queued, 4 waiting for hosts."), std::string::npos)
      << running_dom.out.substr(0, 3000);
  EXPECT_NE(running_dom.out.find("waiting "), std::string::npos) << "jobs waiting for the 8 hosts";
  EXPECT_NE(running_dom.out.find("held by flight 4"), std::string::npos);
  EXPECT_EQ(running_dom.out.find("id=\"headline\""), std::string::npos) << "no verdict while it runs";
  auto running_shot = test::with_url(chrome, "http://127.0.0.1:" + std::to_string(port) + "/flights/4",
      {"--screenshot=" + (artifacts / "flight-120-jobs-running.png").string()});
  EXPECT_EQ(test::run(running_shot).exit_code, 0);
  std::thread release([&] {
    std::this_thread::sleep_for(1500ms);
    std::filesystem::remove(dir.path() / "HOLD");
  });
  auto followed = test::run(test::with_url(chrome, "http://127.0.0.1:" + std::to_string(port) + "/flights/4",
      {"--virtual-time-budget=36000000", "--dump-dom"}));
  release.join();
  EXPECT_EQ(run.wait(120000), 3) << test::read_file(dir.path() / "run4.log");
  ASSERT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_NE(followed.out.find("id=\"headline\""), std::string::npos)
      << "the page followed the flight to its verdict: " << followed.out.substr(0, 3000);
  EXPECT_NE(followed.out.find("<title>[xen-unstable test] 4: regressions - trouble: fail/pass/starved - pushgate</title>"), std::string::npos)
      << followed.out.substr(0, 600);

  // A flight made and not started yet: all 120 jobs queued.
  auto made = test::pushgate({"--config", dir.str("c.json"), "flight", "create", "xen-unstable"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string queued_id = made.out.substr(0, made.out.find_first_not_of("0123456789"));
  auto queued = test::run(test::with_url(chrome, "http://127.0.0.1:" + std::to_string(port) + "/flights/" + queued_id,
                                         {"--dump-dom"}));
  ASSERT_EQ(queued.exit_code, 0) << queued.err;
  EXPECT_NE(queued.out.find("<title>[xen-unstable test] " + queued_id + ": queued 0/120 - pushgate</title>"), std::string::npos)
      << queued.out.substr(0, 1500);
  EXPECT_NE(queued.out.find("<b>queued</b>: 0 of 120 jobs done, 0 running, 120 queued."), std::string::npos)
      << queued.out.substr(0, 1500);
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(30000), 0);
}

// Issue 15 item 1, in a browser: headless Chromium opens a running step's
// page, whose script follows the log to the step's end.
TEST_F(ApiTest, Issue15_ALogIsFollowedInChromium) {
  if (!std::filesystem::exists("/usr/bin/chromium")) GTEST_FAIL() << "chromium is missing: scripts/setup.sh installs it";
  restart_with_steps({{{"testid", "slow"}, {"run", "echo start; sleep 3; echo finish"}}});
  ASSERT_EQ(test::http(port, "POST", "/api/v1/branches/xen-unstable/trigger", "", auth()).status, 202);
  bool running = false;
  for (int i = 0; i < 400 && !running; ++i) {
    auto r = test::http(port, "GET", "/flights/1/test-amd64/1/log?format=json");
    running = r.status == 200 && nlohmann::json::parse(r.body)["growing"] == true;
    if (!running) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(running);
  // Virtual time runs the page's timers at once; each poll still waits for
  // its answer, so the script keeps following for as long as the step runs.
  std::vector<std::string> chrome = test::chromium(dir.str("chrome"));
  chrome.insert(chrome.end(), {"--virtual-time-budget=3600000", "--dump-dom",
                               "http://127.0.0.1:" + std::to_string(port) + "/flights/1/test-amd64/1"});
  auto dom = test::run(chrome);
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_NE(dom.out.find("the step has ended"), std::string::npos) << dom.out;
  EXPECT_NE(dom.out.find("Z start\n"), std::string::npos) << dom.out;
  EXPECT_NE(dom.out.find("Z finish\n"), std::string::npos) << "the lines added after the page loaded: " << dom.out;
  EXPECT_NE(dom.out.find("class=\"good\">pass</b>"), std::string::npos) << dom.out;
}

// Issue 15 item 1: step logs over HTTP (text, tail, a live view that
// follows a running step), `flight log --follow`, timestamps on every line,
// links from the grid and the report, and nothing outside the state
// directory's logs ever served. Item 6: the flight records why it ran.
TEST_F(ApiTest, Issue15_StepLogsOverHttpFollowedAndNeverOutsideTheLogs) {
  const std::string go = dir.str("GO");
  restart_with_steps({{{"testid", "build"}, {"run", "echo compiling; echo linked"}},
                      {{"testid", "slow"}, {"run", "echo start; while [ ! -e " + go + " ]; do sleep 0.1; done; echo finish"}}});
  ASSERT_EQ(test::http(port, "POST", "/api/v1/branches/xen-unstable/trigger", "", auth()).status, 202);
  // Wait until the slow step runs.
  nlohmann::json flight;
  for (int i = 0; i < 400; ++i) {
    auto r = test::http(port, "GET", "/api/v1/flights/1");
    if (r.status == 200) {
      flight = nlohmann::json::parse(r.body);
      auto& steps = flight["jobs"][0]["steps"];
      if (steps.size() == 2 && steps[1]["status"] == "running") break;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(flight["jobs"][0]["steps"].size(), 2u) << flight.dump(2) << test::read_file(dir.path() / "daemon.log");
  EXPECT_EQ(flight["trigger"], (nlohmann::json{{"kind", "manual"}, {"detail", "over the API; baseline flight"}}));

  const std::regex stamped(R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ compiling\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ linked\n$)");
  auto text = test::http(port, "GET", "/flights/1/test-amd64/1/log");
  EXPECT_EQ(text.status, 200);
  EXPECT_TRUE(std::regex_match(text.body, stamped)) << text.body;
  EXPECT_EQ(test::http(port, "GET", "/flights/1/test-amd64/build/log").body, text.body) << "by testid";
  auto tail = test::http(port, "GET", "/flights/1/test-amd64/build/log?tail=1");
  EXPECT_TRUE(tail.body.ends_with(" linked\n") && tail.body.find("compiling") == std::string::npos) << tail.body;

  // The running step: a follower's JSON, then the live page.
  auto running = nlohmann::json::parse(test::http(port, "GET", "/flights/1/test-amd64/2/log?format=json").body);
  EXPECT_TRUE(running["growing"].get<bool>()) << running.dump();
  EXPECT_NE(running["text"].get<std::string>().find(" start\n"), std::string::npos) << running.dump();
  const std::int64_t next = running["next"];
  auto live = test::http(port, "GET", "/flights/1/test-amd64/2");
  EXPECT_EQ(live.status, 200);
  EXPECT_NE(live.body.find("<script>"), std::string::npos) << "a running step's page follows its log";
  EXPECT_NE(live.body.find("/flights/1/test-amd64/2/log?format=json"), std::string::npos);
  auto page = test::http(port, "GET", "/flights/1");
  EXPECT_NE(page.body.find("href=\"/flights/1/test-amd64/1/log\""), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("href=\"/flights/1/test-amd64/2\""), std::string::npos) << "a running cell opens the live view";
  EXPECT_NE(page.body.find("Triggered by manual (over the API; baseline flight)"), std::string::npos);

  // `flight log --follow` prints the running step to its end.
  const std::string out = dir.str("follow.out");
  test::Background follower({test::pushgate_binary(), "--config", dir.str("c.json"), "flight", "log", "1", "test-amd64",
                             "--follow"}, out);
  // Release the step only once the follower has shown it running: a fixed
  // sleep lost that race on a loaded CI machine.
  for (int i = 0; i < 400 && test::read_file(out).find("==> 2 slow (running) <==") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  test::write_file(go, "");
  EXPECT_EQ(follower.wait(20000), 0) << test::read_file(out);
  std::string followed = test::read_file(out);
  EXPECT_NE(followed.find("==> 1 build (pass) <=="), std::string::npos) << followed;
  EXPECT_NE(followed.find("==> 2 slow (running) <=="), std::string::npos) << followed;
  EXPECT_NE(followed.find("Z finish\n"), std::string::npos) << followed;

  auto flights = wait_for_finished_flight();
  ASSERT_EQ(flights.size(), 1u);
  EXPECT_EQ(flights[0]["trigger"]["kind"], "manual");
  auto rest = nlohmann::json::parse(test::http(port, "GET", "/flights/1/test-amd64/2/log?format=json&offset=" +
                                                                std::to_string(next)).body);
  EXPECT_FALSE(rest["growing"].get<bool>());
  EXPECT_TRUE(rest["text"].get<std::string>().ends_with("Z finish\n")) << rest.dump();
  auto report = test::http(port, "GET", "/api/v1/flights/1/report?format=text").body;
  EXPECT_NE(report.find("triggered by manual (over the API; baseline flight)\nlogs: http://127.0.0.1:" + std::to_string(port) + "/flights/1\n"),
            std::string::npos) << report;
  auto cli = test::pushgate({"--config", dir.str("c.json"), "flight", "log", "1", "test-amd64", "build", "--tail", "1"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_TRUE(cli.out.ends_with(" linked\n") && cli.out.find("compiling") == std::string::npos) << cli.out;
  EXPECT_EQ(test::pushgate({"--config", dir.str("c.json"), "flight", "log", "1", "nope"}).exit_code, 2);
  EXPECT_EQ(test::pushgate({"--config", dir.str("c.json"), "flight", "log", "1", "test-amd64", "9"}).exit_code, 2);

  // Nothing outside STATE_DIR/logs: traversal in the URL, a path in the
  // store pointing elsewhere, a symlink in the logs directory.
  for (const std::string bad : {"/flights/1/..%2F..%2F..%2F..%2Fetc%2Fpasswd/1/log", "/flights/1/test-amd64/..%2F..%2Fc.json/log",
                                "/flights/1/test-amd64/1/..%2F..%2F..%2Fc.json", "/flights/1/test-amd64/%2Fetc%2Fpasswd/log",
                                "/flights/1/test-amd64/1/log%00", "/flights/1/test-amd64/1/log?offset=-1",
                                "/flights/1/test-amd64/1/log?tail=%4"}) {
    auto r = test::http(port, "GET", bad);
    EXPECT_TRUE(r.status == 400 || r.status == 404) << bad << " " << r.status;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << bad;
    EXPECT_EQ(r.body.find("api_token_file"), std::string::npos) << bad;
  }
  std::string log1 = flight["jobs"][0]["steps"][0]["log"];
  std::filesystem::remove(log1);
  std::filesystem::create_symlink(dir.path() / "c.json", log1);
  auto via_link = test::http(port, "GET", "/flights/1/test-amd64/1/log");
  EXPECT_EQ(via_link.status, 404);
  EXPECT_EQ(via_link.body.find("api_token_file"), std::string::npos) << via_link.body;
  test::run({"sqlite3", dir.str("state/pushgate.db"), "UPDATE steps SET log_path = '/etc/passwd' WHERE stepno = 2"});
  auto elsewhere = test::http(port, "GET", "/flights/1/test-amd64/2/log");
  EXPECT_EQ(elsewhere.status, 404);
  EXPECT_EQ(elsewhere.body.find("root:"), std::string::npos) << elsewhere.body;
}

}  // namespace
}  // namespace pushgate
