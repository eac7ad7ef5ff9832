// The daemon as a real process: a new commit on an input ref leads to a
// flight and a push; kill -9 during a step, then restart, completes the
// flight with exactly one push; a second daemon on the same database is
// refused; SIGTERM drains and exits 0; --once runs due triggers and exits.
//
// Crashes at exact points (between steps, between verdict and push, after
// the push before the outcome): the daemon runs in a forked child whose
// store is the real one wrapped by FaultyStore, which _exit()s at the point
// as kill -9 would; the restart is the real `pushgate daemon` binary.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <regex>
#include <thread>

#include <pushgate/config.hpp>
#include <pushgate/daemon.hpp>
#include <pushgate/store.hpp>

#include "faulty_store.hpp"
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

  int port = 0;

  void config(const std::string& step_run, const std::string& schedule = R"({"poll_seconds": 1})",
              const std::string& second_step = "") {
    port = test::free_port();
    nlohmann::json cfg = {
        {"daemon", {{"state_dir", "state"}, {"listen", "127.0.0.1:" + std::to_string(port)}}},
        {"trees", {{{"name", "xen"}, {"upstream", "up/xen.git"}}}},
        {"branches",
         {{{"name", "xen-unstable"}, {"tree", "xen"}, {"input", "staging"}, {"tested", "master"},
           {"schedule", nlohmann::json::parse(schedule)}}}},
        {"recipes", {{"r", {{"steps", {{{"testid", "work"}, {"run", step_run}}}}}}}},
        {"jobs", {{{"name", "test-amd64"}, {"recipe", "r"}, {"hosts", {{"host", {"x86"}}}}}}},
        {"hosts", {{{"name", "h0"}, {"kind", "local"}, {"flags", {"x86"}}}}}};
    if (!second_step.empty()) cfg["recipes"]["r"]["steps"].push_back({{"testid", "more"}, {"run", second_step}});
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

  /// Run the daemon in a forked child whose every store connection dies at
  /// the point `arm` sets; returns the child's exit code (137 = it crashed there).
  int crash_daemon(const std::function<void(test::FaultyStore&)>& arm, const std::string& log) {
    auto loaded = config::load(dir.str("c.json"));
    if (!loaded.config) {
      ADD_FAILURE() << config::to_status(loaded).message();
      return -1;
    }
    config::Config cfg = *loaded.config;
    pid_t child = fork();
    if (child == 0) {
      std::ofstream out(dir.str(log));
      std::mutex m;
      daemon::Options o;
      o.log = [&](const std::string& line) {
        std::lock_guard<std::mutex> g(m);
        out << line << std::endl;
      };
      o.open_store = [&](const std::string& path) -> Result<std::unique_ptr<store::Store>> {
        auto real = store::Store::open({path});
        if (!real) return real.error();
        auto faulty = std::make_unique<test::FaultyStore>(std::move(*real));
        arm(*faulty);
        return std::unique_ptr<store::Store>(std::move(faulty));
      };
      auto r = daemon::run(cfg, dir.str("state/pushgate.db"), o);
      _exit(r ? 0 : 1);
    }
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + 90s;
    while (waitpid(child, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(child, SIGKILL);
        waitpid(child, &status, 0);
        ADD_FAILURE() << "the crash point was never reached:\n" << test::read_file(dir.path() / log);
        return -1;
      }
      std::this_thread::sleep_for(50ms);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  /// The baseline flight (through the CLI), then a new commit to test.
  std::string baseline_then_commit() {
    auto r = test::pushgate({"--config", dir.str("c.json"), "flight", "run", "xen-unstable"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return xen->commit_on("staging", "xen: change");
  }

  /// Restart with the real binary and wait until flight 2 has an outcome.
  std::string restart_until_finished(const std::string& tested) {
    auto d = start("restart.log");
    bool finished = wait_until([&] {
      auto f = db()->get_flight(FlightId{2});
      return xen->head_of("master") == tested && f && !f->outcome.empty();
    });
    d->signal(SIGTERM);
    EXPECT_EQ(d->wait(30000), 0);
    std::string log = test::read_file(dir.path() / "restart.log");
    EXPECT_TRUE(finished) << log;
    return log;
  }

  void expect_exactly_one_push_and_two_flights() {
    auto store = db();
    auto pushes = store->pushes("xen-unstable", 10).value();
    ASSERT_EQ(pushes.size(), 1u);
    EXPECT_EQ(pushes[0].state, "done");
    EXPECT_EQ(pushes[0].flight, FlightId{2});
    auto flights = store->list_flights({.branch = "xen-unstable"}).value();
    ASSERT_EQ(flights.size(), 2u);  // the interrupted flight completed; none was made again
    EXPECT_EQ(flights[0].outcome, "perfect");
    for (const auto& h : store->list_hosts().value()) EXPECT_FALSE(h.held_flight.has_value());
  }
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

TEST_F(DaemonTest, CrashBetweenStepsKeepsTheFirstAttemptAndPushesOnce) {
  config("true", R"({"poll_seconds": 1})", "true");
  std::string tested = baseline_then_commit();
  ASSERT_EQ(crash_daemon([](test::FaultyStore& f) { f.die_after_step_result = 1; }, "crash.log"), 137);
  {
    auto store = db();
    auto steps = store->list_steps(FlightId{2}).value();
    ASSERT_EQ(steps.size(), 1u);  // step 1 recorded, step 2 never started
    EXPECT_EQ(steps[0].status, "pass");
    EXPECT_EQ(store->list_jobs(FlightId{2}).value().at(0).status, "running");
  }
  EXPECT_NE(xen->head_of("master"), tested);
  std::string log = restart_until_finished(tested);
  EXPECT_NE(log.find("re-queued after restart"), std::string::npos) << log;
  expect_exactly_one_push_and_two_flights();
  auto store = db();
  // No step result is lost: the first attempt's step 1 is kept, the re-run has both.
  auto earlier = store->list_step_attempts(FlightId{2}).value();
  ASSERT_EQ(earlier.size(), 1u);
  EXPECT_EQ(earlier[0].attempt, 1);
  EXPECT_EQ(earlier[0].step.stepno, 1);
  EXPECT_EQ(earlier[0].step.status, "pass");
  auto steps = store->list_steps(FlightId{2}).value();
  ASSERT_EQ(steps.size(), 2u);
  for (const auto& st : steps) EXPECT_EQ(st.status, "pass");
  // ... and the API shows it.
  auto shown = test::pushgate({"--config", dir.str("c.json"), "flight", "show", "2", "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  auto j = nlohmann::json::parse(shown.out);
  EXPECT_EQ(j["jobs"][0]["earlier_attempts"].size(), 1u) << shown.out;
  auto d = start("pages.log");
  ASSERT_TRUE(test::wait_for_port(port, 10000));
  auto page = test::http(port, "GET", "/flights/2");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<h2>Interrupted attempts</h2>"), std::string::npos) << page.body;
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(30000), 0);
}

// Issue 11 item 8: a crash between a job's end and its hosts' release does
// not run the finished job again.
TEST_F(DaemonTest, Issue11_CrashAfterReleasingHostsDoesNotRerunTheJob) {
  std::string runs = dir.str("runs");
  config("echo run >> " + runs);
  std::string tested = baseline_then_commit();
  std::filesystem::remove(runs);
  ASSERT_EQ(crash_daemon([](test::FaultyStore& f) { f.die_after_release_hosts = true; }, "crash.log"), 137);
  EXPECT_EQ(db()->list_jobs(FlightId{2}).value().at(0).status, "pass") << test::read_file(dir.path() / "crash.log");
  std::string log = restart_until_finished(tested);
  EXPECT_EQ(log.find("re-queued after restart"), std::string::npos) << log;
  EXPECT_EQ(test::read_file(runs), "run\n") << "the finished job ran again";
  expect_exactly_one_push_and_two_flights();
}

// Issue 11 item 5: an intent whose remote does not answer at start-up is
// finished by periodic reconciliation once it does, and its flight is
// finished meanwhile rather than abandoned until the next restart.
TEST_F(DaemonTest, Issue11_UnreachableRemoteAtStartIsReconciledLater) {
  config("true");
  std::string tested = baseline_then_commit();
  auto cfg = nlohmann::json::parse(test::read_file(dir.path() / "c.json"));
  cfg["daemon"]["reconcile_seconds"] = 1;
  test::write_file(dir.path() / "c.json", cfg.dump(2));
  auto created = test::pushgate({"--config", dir.str("c.json"), "flight", "create", "xen-unstable"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  std::string old = xen->head_of("master");
  {
    auto st = db();
    auto jobs = st->list_jobs(FlightId{2}).value();
    for (const auto& j : jobs) ASSERT_TRUE(st->set_job_status(FlightId{2}, j.job, "pass", "").has_value());
    ASSERT_TRUE(st->set_flight_times(FlightId{2}, store::now(), store::now()).has_value());
    store::Store::Push p;  // the crash came right after the intent
    p.flight = FlightId{2};
    p.branch = "xen-unstable";
    p.url = dir.str("up/xen.git");
    p.ref = "refs/heads/master";
    p.old_rev = old;
    p.new_rev = tested;
    ASSERT_TRUE(st->record_push_intent(p).has_value());
  }
  std::filesystem::rename(dir.path() / "up", dir.path() / "away");  // the remote is gone for now
  auto d = start();
  EXPECT_TRUE(wait_until([&] { return !db()->get_flight(FlightId{2}).value().outcome.empty(); }, 30s))
      << "the flight was abandoned:\n" << test::read_file(dir.path() / "daemon.log");
  EXPECT_EQ(db()->pending_pushes().value().size(), 1u);
  std::filesystem::rename(dir.path() / "away", dir.path() / "up");
  EXPECT_TRUE(wait_until([&] { return db()->pending_pushes().value().empty(); }, 30s))
      << test::read_file(dir.path() / "daemon.log");
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(30000), 0);
  EXPECT_EQ(xen->head_of("master"), tested);
  auto pushes = db()->pushes("xen-unstable", 10).value();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].state, "done");
  auto report = test::pushgate({"--config", dir.str("c.json"), "flight", "report", "2", "--format", "json"});
  EXPECT_TRUE(nlohmann::json::parse(report.out)["pushed"].get<bool>()) << report.out;
}

// Issue 19: a ref lock left at the push target by a killed writer is removed
// at start-up (logged at warning level), and the next flight pushes.
TEST_F(DaemonTest, Issue19_StaleRefLockAtTheTargetIsRemovedAtStartAndThePushSucceeds) {
  config("true");
  std::string tested = baseline_then_commit();
  auto lock = dir.path() / "up/xen.git/refs/heads/master.lock";
  test::write_file(lock, xen->head_of("master") + "\n");
  std::filesystem::last_write_time(lock, std::filesystem::file_time_type::clock::now() - std::chrono::hours(1));
  auto d = start();
  EXPECT_TRUE(wait_until([&] { return xen->head_of("master") == tested; }, 30s)) << test::read_file(dir.path() / "daemon.log");
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(30000), 0);
  std::string log = test::read_file(dir.path() / "daemon.log");
  EXPECT_NE(log.find("warning removed stale ref lock"), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(lock));
  auto pushes = db()->pushes("xen-unstable", 10).value();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].state, "done");
}

TEST_F(DaemonTest, CrashBetweenVerdictAndPushPushesOnceAfterRestart) {
  config("true");
  std::string tested = baseline_then_commit();
  ASSERT_EQ(crash_daemon([](test::FaultyStore& f) { f.die_before_push_intent = true; }, "crash.log"), 137);
  {
    auto store = db();
    EXPECT_TRUE(store->pushes("xen-unstable", 10).value().empty());
    EXPECT_EQ(store->get_flight(FlightId{2}).value().outcome, "");  // every job done, no outcome yet
    for (const auto& j : store->list_jobs(FlightId{2}).value()) EXPECT_EQ(j.status, "pass");
  }
  EXPECT_NE(xen->head_of("master"), tested);
  std::string log = restart_until_finished(tested);
  EXPECT_NE(log.find("flight 2 of xen-unstable: resuming"), std::string::npos) << log;
  expect_exactly_one_push_and_two_flights();
}

TEST_F(DaemonTest, CrashAfterPushBeforeOutcomeDoesNotPushAgain) {
  config("true");
  std::string tested = baseline_then_commit();
  ASSERT_EQ(crash_daemon([](test::FaultyStore& f) { f.die_after_push_finished = true; }, "crash.log"), 137);
  EXPECT_EQ(xen->head_of("master"), tested);  // pushed, then died
  EXPECT_EQ(db()->get_flight(FlightId{2}).value().outcome, "");
  std::string log = restart_until_finished(tested);
  EXPECT_NE(log.find("flight 2 of xen-unstable: resuming"), std::string::npos) << log;
  expect_exactly_one_push_and_two_flights();
}

TEST_F(DaemonTest, CrashDuringTheRetestFlightResumesItAndPushesOnce) {
  // The step passes while state/flaked exists, and fails once (creating it) when not.
  config("f=$PUSHGATE_STATE_DIR/flaked; test -f $f && exit 0; touch $f; exit 1");
  test::write_file(dir.path() / "state" / "flaked", "");
  auto r = test::pushgate({"--config", dir.str("c.json"), "flight", "run", "xen-unstable"});
  ASSERT_EQ(r.exit_code, 0) << r.err;  // 1: the baseline passes
  std::filesystem::remove(dir.path() / "state" / "flaked");
  std::string tested = xen->commit_on("staging", "xen: change");
  // 2 fails the step (a regression), its retest 3 passes it; the daemon dies
  // right after the retest's step result is committed.
  ASSERT_EQ(crash_daemon(
                [](test::FaultyStore& f) {
                  f.die_after_step_result = 1;
                  f.only_in_flight = 3;
                },
                "crash.log"),
            137);
  {
    auto store = db();
    EXPECT_EQ(store->get_flight(FlightId{3}).value().blessing, "real-retest");
    EXPECT_EQ(store->get_flight(FlightId{2}).value().outcome, "");  // judged only after its retest
  }
  EXPECT_NE(xen->head_of("master"), tested);
  std::string log = restart_until_finished(tested);
  auto store = db();
  EXPECT_EQ(store->get_flight(FlightId{2}).value().outcome, "tolerable") << log;  // pass in 3: a heisenbug
  EXPECT_EQ(store->flights_with_runvar("xen-unstable", "retest_of", "2").value(), std::vector<FlightId>{FlightId{3}});
  EXPECT_EQ(store->list_flights({}).value().size(), 3u) << log;  // no second retest, no new flight
  auto pushes = store->pushes("xen-unstable", 10).value();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].flight, FlightId{2});
  EXPECT_EQ(pushes[0].state, "done");
}

TEST_F(DaemonTest, ADaemonStartingLeavesAFlightRunByTheCliAlone) {
  // A release manager runs a flight by hand; the daemon (re)starts meanwhile.
  std::string marker = dir.str("started");
  config("touch " + marker + "; sleep 3", R"({"cron": "0 0 1 1 *"})");
  test::Background cli({test::pushgate_binary(), "--config", dir.str("c.json"), "flight", "run", "xen-unstable"},
                       dir.str("cli.log"));
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(marker); })) << test::read_file(dir.path() / "cli.log");
  auto d = start();
  ASSERT_TRUE(wait_until([&] { return test::read_file(dir.path() / "daemon.log").find("listening") != std::string::npos; }))
      << test::read_file(dir.path() / "daemon.log");
  // A second runner of the same flight is refused.
  auto second = test::pushgate({"--config", dir.str("c.json"), "flight", "run", "--flight", "1"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("flight 1 is being run by another process"), std::string::npos) << second.err;
  EXPECT_EQ(cli.wait(30000), 0) << test::read_file(dir.path() / "cli.log");
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(30000), 0);
  std::string log = test::read_file(dir.path() / "daemon.log");
  EXPECT_NE(log.find("flight 1: left alone, another process is running it"), std::string::npos) << log;
  EXPECT_EQ(log.find("daemon restart"), std::string::npos) << log;
  EXPECT_EQ(log.find("resuming"), std::string::npos) << log;
  auto store = db();
  EXPECT_EQ(store->get_flight(FlightId{1}).value().outcome, "perfect");
  EXPECT_TRUE(store->list_step_attempts(FlightId{1}).value().empty());
  for (const auto& v : store->list_runvars(FlightId{1}, "test-amd64").value()) EXPECT_NE(v.name, "restarts");
  EXPECT_EQ(store->list_flights({}).value().size(), 1u);
}

TEST_F(DaemonTest, OnceRunsDueTriggersAndExits) {
  config("true", R"({"cron": "* * * * *"})");
  auto r = test::pushgate({"--config", dir.str("c.json"), "daemon", "--once"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto flights = db()->list_flights({}).value();
  ASSERT_EQ(flights.size(), 1u);  // the cron expression fired within the last day
  EXPECT_EQ(flights[0].outcome, "perfect");
  // Issue 15 item 6: the flight says why it ran.
  EXPECT_EQ(flights[0].trigger_kind, "cron");
  EXPECT_EQ(flights[0].trigger_detail.substr(0, 9), "* * * * *") << flights[0].trigger_detail;
}

// Issue 12 item 8: with a polling branch whose flight outlasts a loop tick,
// --once still runs the trigger once and exits.
TEST_F(DaemonTest, Issue12_OnceWithAPollingBranchExits) {
  config("sleep 1", R"({"poll_seconds": 1})");
  xen->commit_on("staging", "xen: change");
  test::Background once({test::pushgate_binary(), "--config", dir.str("c.json"), "daemon", "--once"}, dir.str("once.log"));
  EXPECT_EQ(once.wait(30000), 0) << "daemon --once did not exit:\n" << test::read_file(dir.path() / "once.log");
  auto flights = db()->list_flights({}).value();
  ASSERT_EQ(flights.size(), 1u) << "the poll ran more than once";
  EXPECT_EQ(flights[0].trigger_kind, "poll");
  EXPECT_EQ(flights[0].trigger_detail.substr(0, 6), "every ") << flights[0].trigger_detail;
}

/// Issue 12 item 1: a recipe whose first step is slow only while `gate`
/// exists, a second step and a cleanup (`always`) step, each leaving a trace.
class DrainTest : public DaemonTest {
 protected:
  std::string gate, started, more, cleanup;
  void SetUp() override {
    DaemonTest::SetUp();
    gate = dir.str("gate");
    started = dir.str("started");
    more = dir.str("more.log");
    cleanup = dir.str("cleanup.log");
  }
  void drain_config(int slow_seconds) {
    config("if [ -e " + gate + " ]; then touch " + started + "; sleep " + std::to_string(slow_seconds) + "; fi",
           R"({"poll_seconds": 1})", "echo $PUSHGATE_FLIGHT >> " + more);
    auto cfg = nlohmann::json::parse(test::read_file(dir.path() / "c.json"));
    cfg["recipes"]["r"]["steps"].push_back(
        {{"testid", "cleanup"}, {"run", "echo $PUSHGATE_FLIGHT >> " + cleanup}, {"always", true}});
    test::write_file(dir.path() / "c.json", cfg.dump(2));
  }
  std::unique_ptr<test::Background> start_with(const std::vector<std::string>& extra, const std::string& log) {
    std::vector<std::string> a{test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"};
    a.insert(a.end(), extra.begin(), extra.end());
    return std::make_unique<test::Background>(a, dir.str(log));
  }
  /// Flight 2 is drained with its job back in the queue, never judged.
  void expect_drained(const std::string& log) {
    auto store = db();
    auto f = store->get_flight(FlightId{2}).value();
    EXPECT_EQ(f.outcome, "") << "a drained flight was judged:\n" << log;
    EXPECT_FALSE(f.finished.has_value());
    auto jobs = store->list_jobs(FlightId{2}).value();
    ASSERT_EQ(jobs.size(), 1u);
    EXPECT_EQ(jobs[0].status, "queued") << jobs[0].status_reason;
    EXPECT_TRUE(store->list_steps(FlightId{2}).value().empty());
    auto attempts = store->list_step_attempts(FlightId{2}).value();
    std::set<std::string> ran;
    for (const auto& a : attempts) ran.insert(a.step.testid);
    EXPECT_TRUE(ran.count("work"));
    EXPECT_TRUE(ran.count("cleanup")) << "the cleanup step did not run in the drain";
    EXPECT_FALSE(ran.count("more")) << "a new step started during the drain";
    EXPECT_EQ(test::read_file(cleanup), "1\n2\n");
    EXPECT_EQ(test::read_file(more), "1\n");
    for (const auto& h : store->list_hosts().value()) EXPECT_FALSE(h.held_flight.has_value());
    EXPECT_EQ(store->pushes("xen-unstable", 10).value().size(), 0u);
  }
  /// SIGTERM while flight 2's slow step runs (for `slow` seconds, with a
  /// `grace`-second drain): the step ends `work_status`, the job goes back to
  /// the queue, and the next start finishes and pushes the flight.
  void drain_and_restart(int slow, int grace, const std::string& work_status) {
    drain_config(slow);
    std::string tested = baseline_then_commit();
    test::write_file(gate, "");
    auto d = start_with({"--drain-seconds", std::to_string(grace)}, "drain.log");
    ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(started); })) << test::read_file(dir.path() / "drain.log");
    d->signal(SIGTERM);
    EXPECT_EQ(d->wait(30000), 0);
    std::string log = test::read_file(dir.path() / "drain.log");
    expect_drained(log);
    for (const auto& a : db()->list_step_attempts(FlightId{2}).value()) {
      if (a.step.testid == "work") {
        EXPECT_EQ(a.step.status, work_status) << log;
      }
    }
    expect_resumed_and_pushed(tested);
  }

  /// The next start resumes flight 2 and pushes it; nothing was cancelled.
  void expect_resumed_and_pushed(const std::string& tested) {
    std::filesystem::remove(gate);
    std::string log = restart_until_finished(tested);
    auto store = db();
    auto f = store->get_flight(FlightId{2}).value();
    EXPECT_EQ(f.outcome, "perfect") << log;
    EXPECT_EQ(store->list_jobs(FlightId{2}).value().at(0).status, "pass");
    EXPECT_EQ(log.find("cancelled"), std::string::npos) << log;
    EXPECT_EQ(log.find("regression"), std::string::npos) << log;
    EXPECT_EQ(store->list_flights({.branch = "xen-unstable"}).value().size(), 2u) << "no retest, no new flight";
    expect_exactly_one_push_and_two_flights();
  }
};

TEST_F(DrainTest, Issue12_StepFinishingInTheGraceIsKeptTheJobRequeuedAndResumed) {
  // The step that was running when the drain began finishes and passes.
  drain_and_restart(2, 30, "pass");
}

TEST_F(DrainTest, Issue12_StepKilledAtTheEndOfTheGraceIsNeverJudged) {
  drain_and_restart(60, 1, "broken");
}

bool process_alive(int pid) {
  std::string stat = test::read_file("/proc/" + std::to_string(pid) + "/stat");
  return !stat.empty() && stat[stat.rfind(')') + 2] != 'Z';
}

// Issue 12 item 3: a step whose processes outlive `kill -9` of pushgate
// (one even left its process group with setsid) is killed by the restart's
// recovery, and the re-run gets a fresh work directory.
TEST_F(DaemonTest, Issue12_KillDashNineLeavesNoOrphanAndTheRerunGetsAFreshWorkdir) {
  std::string gate = dir.str("gate"), pids = dir.str("pids"), dirs = dir.str("workdirs");
  config("echo $PUSHGATE_WORKDIR >> " + dirs + "; if [ -e " + gate + " ]; then setsid sleep 300 & echo $! >> " + pids +
         "; sleep 300 & echo $! >> " + pids + "; wait; fi");
  std::string tested = baseline_then_commit();
  test::write_file(gate, "");
  {
    auto first = start("first.log");
    ASSERT_TRUE(wait_until([&] {
      std::istringstream in(test::read_file(pids));
      int a = 0, b = 0;
      return static_cast<bool>(in >> a >> b);
    })) << test::read_file(dir.path() / "first.log");
    ::kill(first->pid(), SIGKILL);
    first->wait(10000);
  }
  std::vector<int> orphans;
  {
    std::istringstream in(test::read_file(pids));
    int p;
    while (in >> p) orphans.push_back(p);
  }
  ASSERT_EQ(orphans.size(), 2u);
  for (int p : orphans) EXPECT_TRUE(process_alive(p)) << "the scenario needs the orphans alive after kill -9";
  std::filesystem::remove(gate);
  std::string log = restart_until_finished(tested);
  for (int p : orphans) EXPECT_FALSE(process_alive(p)) << "orphan " << p << " survived the restart:\n" << log;
  EXPECT_NE(log.find("leftover step process"), std::string::npos) << log;
  std::istringstream in(test::read_file(dirs));
  std::vector<std::string> seen;
  for (std::string l; std::getline(in, l);) seen.push_back(l);
  ASSERT_EQ(seen.size(), 3u) << test::read_file(dirs);  // baseline, interrupted attempt, re-run
  EXPECT_NE(seen[1], seen[2]) << "the re-run used the interrupted attempt's work directory";
  EXPECT_NE(seen[2].find(".attempt-2"), std::string::npos) << seen[2];
  expect_exactly_one_push_and_two_flights();
}

// Issue 12 item 10: an upstream that cannot be fetched is logged at warning
// level, not info, and the daemon keeps running.
TEST_F(DaemonTest, Issue12_FetchFailureIsAWarning) {
  config("true");
  std::filesystem::rename(dir.path() / "up/xen.git", dir.path() / "up/gone.git");
  auto d = start();
  ASSERT_TRUE(wait_until([&] { return test::read_file(dir.path() / "daemon.log").find("fetch failed") != std::string::npos; }))
      << test::read_file(dir.path() / "daemon.log");
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(30000), 0);
  std::string log = test::read_file(dir.path() / "daemon.log");
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("fetch failed") != std::string::npos) {
      EXPECT_NE(line.find(" warning "), std::string::npos) << line;
    }
  }
}

// Issue 16 item 4: polls and fetch results at info with durations; lines
// journald reads well under systemd (no second timestamp, a priority), UTC
// timestamps otherwise, or JSON lines.
TEST_F(DaemonTest, Issue16_PollsAreLoggedInTheChosenFormat) {
  config("true");
  auto with_format = [&](const std::string& format) {
    auto cfg = nlohmann::json::parse(test::read_file(dir.path() / "c.json"));
    if (format.empty()) cfg["daemon"].erase("log_format");
    else cfg["daemon"]["log_format"] = format;
    test::write_file(dir.path() / "c.json", cfg.dump(2));
  };
  auto once = [&](const std::string& log, std::vector<std::string> prefix = {}) {
    prefix.insert(prefix.end(), {test::pushgate_binary(), "--config", dir.str("c.json"), "daemon", "--once"});
    test::Background d(prefix, dir.str(log));
    EXPECT_EQ(d.wait(30000), 0) << test::read_file(dir.path() / log);
    std::vector<std::string> lines;
    std::istringstream in(test::read_file(dir.path() / log));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) lines.push_back(line);
    }
    return lines;
  };
  const std::regex poll(R"(branch xen-unstable: polled in [0-9.]+s, fetched xen [0-9.]+s \((\d+ new, \d+ updated, \d+ deleted refs|unchanged)\); )");

  // JSON lines: every line an object; the poll that found a new commit.
  with_format("json");
  xen->commit_on("staging", "xen: change 1");
  bool polled = false;
  for (const auto& line : once("json.log")) {
    auto j = nlohmann::json::parse(line);  // throws (fails) on a line that is not JSON
    EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
        << line;
    EXPECT_TRUE(j["level"] == "info" || j["level"] == "warning") << line;
    std::string m = j["message"];
    if (std::regex_search(m, poll)) {
      polled = true;
      EXPECT_NE(m.find("(2 new, 0 updated, 0 deleted refs)"), std::string::npos) << m;  // a new mirror
      EXPECT_NE(m.find("baseline flight"), std::string::npos) << m;
    }
  }
  EXPECT_TRUE(polled);

  // Text: UTC timestamps with a Z, the level, the message. Up to date now.
  with_format("text");
  polled = false;
  for (const auto& line : once("text.log")) {
    EXPECT_TRUE(std::regex_search(line, std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warning) )"))) << line;
    if (std::regex_search(line, poll)) {
      polled = true;
      EXPECT_NE(line.find("new revisions, flight"), std::string::npos) << line;  // the commit after the baseline
    }
  }
  EXPECT_TRUE(polled);

  // auto, with stderr being the journal stream systemd says it connected:
  // "<6>message", no timestamp of our own.
  with_format("");
  test::write_file(dir.path() / "journal.log", "");
  struct stat st{};
  ASSERT_EQ(stat(dir.str("journal.log").c_str(), &st), 0);
  std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  auto journal = once("journal.log", {"/usr/bin/env", "JOURNAL_STREAM=" + stream});
  ASSERT_FALSE(journal.empty());
  polled = false;
  for (const auto& line : journal) {
    EXPECT_TRUE(std::regex_search(line, std::regex(R"(^<[46]>[a-z])"))) << line;
    EXPECT_FALSE(std::regex_search(line, std::regex(R"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d)"))) << line;
    if (std::regex_search(line, poll)) {
      polled = true;
      // The push moved master (upstream and in the mirror): nothing new to test.
      EXPECT_NE(line.find("(0 new, 0 updated, 0 deleted refs); up to date, no flight"), std::string::npos) << line;
    }
  }
  EXPECT_TRUE(polled);
  // A JOURNAL_STREAM that is not our stderr (inherited by a child): text.
  auto other = once("other.log", {"/usr/bin/env", "JOURNAL_STREAM=1:1"});
  ASSERT_FALSE(other.empty());
  EXPECT_TRUE(std::regex_search(other[0], std::regex(R"(^\d{4}-\d\d-\d\dT)"))) << other[0];
}

// Issue 16 item 1: Type=notify. A real notification socket stands in for
// systemd: READY=1 once the API listens, WATCHDOG=1 every half of
// WATCHDOG_USEC from the loop, STOPPING=1 when SIGTERM starts the drain.
TEST_F(DaemonTest, Issue16_TellsSystemdReadyWatchdogAndStopping) {
  config("true");
  std::string sock = dir.str("notify.sock");
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(sock.size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sock.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{0, 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<std::string> got;
  auto receive_until = [&](const std::string& want, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      char buf[4096];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        got.emplace_back(buf, static_cast<std::size_t>(n));
        if (got.back().find(want) != std::string::npos) return true;
      }
    }
    return false;
  };
  test::Background d({"/usr/bin/env", "NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=300000", test::pushgate_binary(),
                      "--config", dir.str("c.json"), "daemon"},
                     dir.str("daemon.log"));
  ASSERT_TRUE(receive_until("READY=1", 20s)) << test::read_file(dir.path() / "daemon.log");
  EXPECT_TRUE(test::wait_for_port(port, 1000)) << "READY=1 before the API listens";
  int pings = 0;
  for (int i = 0; i < 3; ++i) pings += receive_until("WATCHDOG=1", 2s) ? 1 : 0;
  EXPECT_EQ(pings, 3) << "the loop pings the watchdog every 150 ms";
  d.signal(SIGTERM);
  EXPECT_TRUE(receive_until("STOPPING=1", 10s));
  EXPECT_EQ(d.wait(30000), 0) << test::read_file(dir.path() / "daemon.log");
  close(fd);
}

TEST_F(DaemonTest, BadCronIsAConfigurationErrorAtStart) {
  config("true", R"({"cron": "61 * * * *"})");
  auto r = test::pushgate({"--config", dir.str("c.json"), "daemon", "--once"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cron"), std::string::npos) << r.err;
}

// The README's example config (config/example/, repositories made by
// scripts/example-repos.sh): the daemon tests a new staging commit on the
// local and libvirt test:/// hosts and pushes it; all observed through the API.
TEST(ExampleConfigDaemon, NewStagingCommitIsTestedAndPushedObservedThroughTheApi) {
  TempDir root;
  namespace fs = std::filesystem;
  fs::create_directories(root.path() / "config" / "example");
  fs::create_directories(root.path() / "scripts");
  fs::copy(test::source_dir() / "config" / "example", root.path() / "config" / "example", fs::copy_options::recursive);
  fs::copy(test::source_dir() / "scripts" / "example-repos.sh", root.path() / "scripts" / "example-repos.sh");
  auto made = test::run({"bash", root.str("scripts/example-repos.sh")});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  // Two changes for a test: a port of its own and a one-second poll.
  int port = test::free_port();
  auto cfg_path = root.path() / "config" / "example" / "pushgate.json";
  auto cfg = nlohmann::json::parse(test::read_file(cfg_path));
  cfg["daemon"]["listen"] = "127.0.0.1:" + std::to_string(port);
  for (auto& b : cfg["branches"]) {
    if (b["name"] == "xen-unstable") b["schedule"] = {{"poll_seconds", 1}};
  }
  test::write_file(cfg_path, cfg.dump(2));
  test::Background d({test::pushgate_binary(), "--config", cfg_path.string(), "daemon"}, root.str("daemon.log"));
  ASSERT_TRUE(test::wait_for_port(port, 10000)) << test::read_file(root.path() / "daemon.log");
  auto get = [&](const std::string& target) {
    auto r = test::http(port, "GET", target);
    return r.status == 200 ? nlohmann::json::parse(r.body) : nlohmann::json();
  };
  auto poll = [&](const std::function<bool()>& cond) {
    for (int i = 0; i < 1200; ++i) {
      if (cond()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };
  // The baseline flight of xen-unstable first.
  ASSERT_TRUE(poll([&] {
    auto f = get("/api/v1/flights?branch=xen-unstable");
    return f.is_array() && !f.empty() && f[0]["outcome"] != "";
  })) << test::read_file(root.path() / "daemon.log");
  // The staging commit the example made, plus one more, get tested and pushed.
  test::GitRepoBuilder xen(root.str("var/example/upstream/xen.git"));
  std::string good = xen.commit_on("staging", "xen: one more change");
  nlohmann::json branch;
  ASSERT_TRUE(poll([&] {
    branch = get("/api/v1/branches/xen-unstable");
    // The ref moves before the push's outcome is committed: wait for both.
    return branch.contains("last_push") && branch["last_push"]["new"] == good && branch["tested_revision"] == good &&
           branch["last_push"]["state"] != "intent";
  })) << branch.dump(2) << "\n" << test::read_file(root.path() / "daemon.log");
  EXPECT_EQ(branch["last_push"]["state"], "done");
  // The outcome is recorded after the push (a crash between them must not
  // lose the push): wait for it too.
  nlohmann::json flights;
  ASSERT_TRUE(poll([&] {
    flights = get("/api/v1/flights?branch=xen-unstable");
    return flights.is_array() && flights.size() >= 2 && flights[0]["outcome"] != "";
  })) << flights.dump(2);
  EXPECT_EQ(flights[0]["outcome"], "perfect") << flights.dump(2);
  auto flight = get("/api/v1/flights/" + std::to_string(flights[0]["flight"].get<int>()));
  std::set<std::string> hosts;
  for (const auto& j : flight["jobs"]) hosts.insert(j["runvars"].value("host", ""));
  EXPECT_TRUE(hosts.count("lv-test0")) << flight.dump(2);  // a job ran on the libvirt test:/// host
  EXPECT_EQ(xen.head_of("master"), good);
  // The example's notify command keeps each report's JSON (issue 15).
  const auto report = root.path() / "var/example/reports" / ("flight-" + std::to_string(flights[0]["flight"].get<int>()) + ".json");
  ASSERT_TRUE(poll([&] { return nlohmann::json::accept(test::read_file(report)); }))
      << test::read_file(root.path() / "daemon.log");
  EXPECT_EQ(test::schema_errors("notify/event.schema.json", test::read_file(report)), "");
  EXPECT_EQ(nlohmann::json::parse(test::read_file(report))["pushed"], true);
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(30000), 0) << test::read_file(root.path() / "daemon.log");
}

}  // namespace
}  // namespace pushgate
