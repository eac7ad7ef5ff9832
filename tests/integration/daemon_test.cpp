// The daemon as a real process: a new commit on an input ref leads to a
// flight and a push; kill -9 during a step, then restart, completes the
// flight with exactly one push; a second daemon on the same database is
// refused; SIGTERM drains and exits 0; --once runs due triggers and exits.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include <pushgate/store.hpp>

#include "support.hpp"

namespace pushgate {
namespace {

using test::TempDir;
using namespace std::chrono_literals;

class DaemonTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::unique_ptr<test::GitRepoBuilder> xen;

  void SetUp() override {
    xen = std::make_unique<test::GitRepoBuilder>(dir.str("up/xen.git"));
    xen->commit_on("master", "xen: import");
    xen->set_branch("staging", xen->head_of("master"));
  }

  void config(const std::string& step_run, const std::string& schedule = R"({"poll_seconds": 1})") {
    nlohmann::json cfg = {
        {"daemon", {{"state_dir", "state"}, {"listen", "127.0.0.1:" + std::to_string(test::free_port())}}},
        {"trees", {{{"name", "xen"}, {"upstream", "up/xen.git"}}}},
        {"branches",
         {{{"name", "xen-unstable"}, {"tree", "xen"}, {"input", "staging"}, {"tested", "master"},
           {"schedule", nlohmann::json::parse(schedule)}}}},
        {"recipes", {{"r", {{"steps", {{{"testid", "work"}, {"run", step_run}}}}}}}},
        {"jobs", {{{"name", "test-amd64"}, {"recipe", "r"}, {"hosts", {{"host", {"x86"}}}}}}},
        {"hosts", {{{"name", "h0"}, {"kind", "local"}, {"flags", {"x86"}}}}}};
    test::write_file(dir.path() / "c.json", cfg.dump(2));
    std::filesystem::create_directories(dir.path() / "state");
  }

  std::unique_ptr<test::Background> start(const std::string& log = "daemon.log") {
    return std::make_unique<test::Background>(
        std::vector<std::string>{test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str(log));
  }

  bool wait_until(const std::function<bool()>& cond, std::chrono::seconds limit = 60s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (cond()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return cond();
  }

  std::unique_ptr<store::Store> db() { return store::Store::open({dir.str("state/pushgate.db")}).value(); }
};

TEST_F(DaemonTest, NewCommitLeadsToAFlightAndAPush) {
  config("true");
  auto d = start();
  // First the baseline flight of master; then a new commit gets tested and pushed.
  ASSERT_TRUE(wait_until([&] { return test::read_file(dir.path() / "daemon.log").find("baseline flight") != std::string::npos; }))
      << test::read_file(dir.path() / "daemon.log");
  std::string good = xen->commit_on("staging", "xen: new feature");
  ASSERT_TRUE(wait_until([&] { return xen->head_of("master") == good; })) << test::read_file(dir.path() / "daemon.log");
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(30000), 0);
  auto pushes = db()->pushes("xen-unstable", 10).value();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].state, "done");
}

TEST_F(DaemonTest, SecondDaemonOnTheSameDatabaseIsRefused) {
  config("true");
  auto d = start();
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(dir.path() / "state/pushgate.db.daemon-lock"); }));
  std::this_thread::sleep_for(300ms);
  auto second = test::pushgate({"--config", dir.str("c.json"), "daemon"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("another pushgate daemon"), std::string::npos) << second.err;
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(30000), 0);
}

TEST_F(DaemonTest, KillDashNineDuringAStepThenRestartPushesOnce) {
  // The step signals that it started, then takes a while.
  std::string marker = dir.str("started");
  config("touch " + marker + "; sleep 2");
  {
    auto first = start("first.log");
    ASSERT_TRUE(wait_until([&] { return test::read_file(dir.path() / "first.log").find("baseline flight") != std::string::npos &&
                                        test::read_file(dir.path() / "first.log").find("all pass") != std::string::npos; }))
        << test::read_file(dir.path() / "first.log");
    std::filesystem::remove(marker);
    xen->commit_on("staging", "xen: change");
    ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(marker); }));
    ::kill(first->pid(), SIGKILL);  // the step is running now
    first->wait(10000);
  }
  std::string tested = xen->head_of("staging");
  EXPECT_NE(xen->head_of("master"), tested);
  auto second = start("second.log");
  ASSERT_TRUE(wait_until([&] { return xen->head_of("master") == tested; })) << test::read_file(dir.path() / "second.log");
  second->signal(SIGTERM);
  EXPECT_EQ(second->wait(30000), 0);
  std::string log = test::read_file(dir.path() / "second.log");
  EXPECT_NE(log.find("broken (daemon restart)"), std::string::npos) << log;
  EXPECT_NE(log.find("re-queued after restart"), std::string::npos) << log;
  auto store = db();
  auto pushes = store->pushes("xen-unstable", 10).value();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].state, "done");
  // The interrupted flight completed (no second flight for the same revision).
  auto flights = store->list_flights({.branch = "xen-unstable"}).value();
  ASSERT_EQ(flights.size(), 2u);
  EXPECT_EQ(flights[0].outcome, "perfect");
  bool restarted = false;
  for (const auto& v : store->list_runvars(flights[0].id, "test-amd64").value()) restarted |= v.name == "restarts";
  EXPECT_TRUE(restarted);
  for (const auto& h : store->list_hosts().value()) EXPECT_FALSE(h.held_flight.has_value());
}

TEST_F(DaemonTest, OnceRunsDueTriggersAndExits) {
  config("true", R"({"cron": "* * * * *"})");
  auto r = test::pushgate({"--config", dir.str("c.json"), "daemon", "--once"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto flights = db()->list_flights({}).value();
  ASSERT_EQ(flights.size(), 1u);  // the cron expression fired within the last day
  EXPECT_EQ(flights[0].outcome, "perfect");
}

TEST_F(DaemonTest, BadCronIsAConfigurationErrorAtStart) {
  config("true", R"({"cron": "61 * * * *"})");
  auto r = test::pushgate({"--config", dir.str("c.json"), "daemon", "--once"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cron"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pushgate
