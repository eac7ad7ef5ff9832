// `pushgate flight ...` and `pushgate host ...` as real processes: two
// concurrent flights never share a host; SIGINT stops cleanly and re-queues.

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include <pushgate/store.hpp>

#include "support.hpp"

namespace pushgate {
namespace {

using test::TempDir;

class CliFlight : public ::testing::Test {
 protected:
  TempDir dir;

  void write_config(const std::string& recipe_run, int starve = 60) {
    test::GitRepoBuilder xen(dir.str("up/xen.git"));
    xen.commit_on("master", "xen");
    xen.set_branch("staging", xen.commit_on("master", "xen 2"));
    test::write_file(dir.path() / "c.json", R"({"daemon": {"state_dir": "state", "starve_after_seconds": )" +
                                                std::to_string(starve) + R"(},
      "trees": [{"name": "xen", "upstream": "up/xen.git"}],
      "branches": [{"name": "xen-unstable", "tree": "xen", "input": "staging", "tested": "master"}],
      "recipes": {"r": {"steps": [{"testid": "work", "run": )" + nlohmann::json(recipe_run).dump() + R"(}]}},
      "jobs": [{"name": "test-amd64", "recipe": "r", "hosts": {"host": ["arch-amd64"]}}],
      "hosts": [{"name": "h0", "kind": "local", "flags": ["arch-amd64"]}]})");
    std::filesystem::create_directories(dir.path() / "state");
    // Fetch once, so concurrent runs need not fetch into the same mirror.
    auto r = pg({"revisions", "xen-unstable"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::vector<std::string> args(std::vector<std::string> a) {
    a.insert(a.begin(), {test::pushgate_binary(), "--config", dir.str("c.json")});
    return a;
  }
  test::RunResult pg(std::vector<std::string> a) {
    a.insert(a.begin(), {"--config", dir.str("c.json")});
    return test::pushgate(a);
  }
};

TEST_F(CliFlight, TwoProcessesNeverShareAHost) {
  std::string log = dir.str("intervals.log");
  write_config("echo start $PUSHGATE_FLIGHT $(date +%s%N) >> " + log + "; sleep 1; echo end $PUSHGATE_FLIGHT $(date +%s%N) >> " + log);
  test::Background a(args({"flight", "run", "xen-unstable", "--no-fetch", "--always"}), dir.str("a.out"));
  test::Background b(args({"flight", "run", "xen-unstable", "--no-fetch", "--always"}), dir.str("b.out"));
  ASSERT_EQ(a.wait(60000), 0) << test::read_file(dir.path() / "a.out");
  ASSERT_EQ(b.wait(60000), 0) << test::read_file(dir.path() / "b.out");
  // Parse "start F T" / "end F T": the two jobs' intervals must not overlap.
  std::istringstream in(test::read_file(log));
  std::map<std::string, std::pair<long long, long long>> iv;
  std::string what, flight;
  long long t;
  while (in >> what >> flight >> t) (what == "start" ? iv[flight].first : iv[flight].second) = t;
  ASSERT_EQ(iv.size(), 2u) << test::read_file(log);
  auto x = iv.begin()->second, y = std::next(iv.begin())->second;
  EXPECT_TRUE(x.second <= y.first || y.second <= x.first) << "intervals overlap";
  auto hosts = nlohmann::json::parse(pg({"host", "show", "h0", "--json"}).out);
  int allocations = 0;
  for (const auto& e : hosts["history"]) allocations += e["event"] == "allocate";
  EXPECT_EQ(allocations, 2);
  EXPECT_TRUE(hosts["held_by"].is_null());
}

// SPEC section 9 (issue 12 item 1): Ctrl-C kills the step's process group,
// frees the host, puts the job back in the queue and judges nothing; the
// flight is finished later by `flight run --flight N`.
TEST_F(CliFlight, SigintStopsKillsFreesTheHostAndRequeues) {
  std::string pidfile = dir.str("child.pid"), gate = dir.str("gate");
  test::write_file(gate, "");
  write_config("if [ -e " + gate + " ]; then sleep 300 & echo $! > " + pidfile + "; wait; fi");
  test::Background run(args({"flight", "run", "xen-unstable", "--no-fetch", "--always"}), dir.str("run.out"));
  for (int i = 0; i < 500 && !std::filesystem::exists(pidfile); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(std::filesystem::exists(pidfile)) << test::read_file(dir.path() / "run.out");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  run.signal(SIGINT);
  int rc = run.wait(20000);
  std::string out = test::read_file(dir.path() / "run.out");
  EXPECT_EQ(rc, 4) << out;
  EXPECT_NE(out.find("not judged"), std::string::npos) << out;
  int pid = std::stoi(test::read_file(pidfile));
  std::string stat = test::read_file("/proc/" + std::to_string(pid) + "/stat");
  EXPECT_TRUE(stat.empty() || stat[stat.rfind(')') + 2] == 'Z') << "step process survived";
  auto show = nlohmann::json::parse(pg({"flight", "show", "1", "--json"}).out);
  EXPECT_EQ(show["outcome"], "") << show.dump(2);
  EXPECT_EQ(show["jobs"][0]["status"], "queued") << show.dump(2);
  auto host = nlohmann::json::parse(pg({"host", "show", "h0", "--json"}).out);
  EXPECT_TRUE(host["held_by"].is_null());
  // Finished later: the interrupted attempt is kept, the new one passes.
  std::filesystem::remove(gate);
  auto again = pg({"flight", "run", "--flight", "1", "--no-fetch"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  show = nlohmann::json::parse(pg({"flight", "show", "1", "--json"}).out);
  EXPECT_EQ(show["jobs"][0]["status"], "pass") << show.dump(2);
  auto text = pg({"flight", "show", "1"});
  EXPECT_NE(text.out.find("(attempt 1, run again)"), std::string::npos) << text.out;
}

// Issue 12 item 6: a step printing 200 MB leaves a capped log that keeps
// its head and its tail and marks the cut.
TEST_F(CliFlight, Issue12_HugeOutputIsCappedHeadAndTailKept) {
  write_config("echo FIRST-LINE; head -c 200000000 /dev/zero | tr '\\0' x; echo; echo LAST-LINE");
  auto cfg = nlohmann::json::parse(test::read_file(dir.path() / "c.json"));
  cfg["daemon"]["step_log_max_bytes"] = 1 << 20;
  test::write_file(dir.path() / "c.json", cfg.dump());
  auto r = pg({"flight", "run", "xen-unstable", "--no-fetch", "--always", "--json"});
  auto show = nlohmann::json::parse(pg({"flight", "show", "1", "--json"}).out);
  EXPECT_EQ(show["jobs"][0]["status"], "pass") << r.err;
  std::string log_path = show["jobs"][0]["steps"][0]["log"];
  auto size = std::filesystem::file_size(log_path);
  EXPECT_LE(size, (1u << 20) + 512) << "the log is not capped";
  std::string log = test::read_file(log_path);
  // Every line starts with its UTC time (issue 15): "2026-12-03 07:30:01Z FIRST-LINE".
  EXPECT_EQ(log.find("Z FIRST-LINE\n"), 19u) << log.substr(0, 40);
  EXPECT_NE(log.find("Z LAST-LINE\n"), std::string::npos);
  EXPECT_NE(log.find("bytes of output cut here"), std::string::npos);
}

// Issue 12 item 5: a log pushgate cannot write (here a file size limit, as
// on a full disk) is pushgate's trouble: broken, run again, never `fail`.
TEST_F(CliFlight, Issue12_UnwritableLogIsBrokenAndRunAgain) {
  write_config("head -c 8000000 /dev/zero");
  auto r = test::run({"prlimit", "--fsize=3000000", test::pushgate_binary(), "--config", dir.str("c.json"), "flight",
                      "run", "xen-unstable", "--no-fetch", "--always"});
  auto show = nlohmann::json::parse(pg({"flight", "show", "1", "--json"}).out);
  auto job = show["jobs"][0];
  EXPECT_EQ(job["status"], "broken") << r.err << show.dump(2);
  EXPECT_NE(job["reason"].get<std::string>().find("cannot write the step's log"), std::string::npos)
      << job.dump(2);
  ASSERT_EQ(show["jobs"][0]["earlier_attempts"].size(), 1u) << show.dump(2);  // the first attempt, kept
  EXPECT_EQ(show["jobs"][0]["earlier_attempts"][0]["status"], "broken");
  EXPECT_EQ(job["steps"][0]["status"], "broken");
}

/// Another process holding the database's write lock for `seconds`.
pid_t hold_write_lock(const std::string& db, int seconds, const std::string& held_marker) {
  pid_t child = fork();
  if (child == 0) {
    sqlite3* h = nullptr;
    if (sqlite3_open(db.c_str(), &h) != SQLITE_OK) _exit(2);
    sqlite3_busy_timeout(h, 60000);
    if (sqlite3_exec(h, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) _exit(3);
    test::write_file(held_marker, "");
    sleep(static_cast<unsigned>(seconds));
    sqlite3_exec(h, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(h);
    _exit(0);
  }
  return child;
}

// Issue 12 item 2: a write lock held by another process for longer than
// SQLite's old 10 s wait, in the middle of a flight: the flight waits and
// finishes, nothing recorded is lost, nothing is cancelled.
TEST_F(CliFlight, Issue12_BusyDatabaseIsWaitedForNotAReasonToAbandonTheFlight) {
  std::string started = dir.str("started"), held = dir.str("held");
  write_config("touch " + started + "; while [ ! -e " + held + " ]; do sleep 0.05; done");
  auto cfg = nlohmann::json::parse(test::read_file(dir.path() / "c.json"));
  cfg["jobs"].push_back({{"name", "test-two"}, {"recipe", "r"}, {"hosts", {{"host", {"arch-amd64"}}}}});
  test::write_file(dir.path() / "c.json", cfg.dump());
  test::Background run(args({"flight", "run", "xen-unstable", "--no-fetch", "--always"}), dir.str("run.out"));
  for (int i = 0; i < 500 && !std::filesystem::exists(started); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(std::filesystem::exists(started)) << test::read_file(dir.path() / "run.out");
  pid_t holder = hold_write_lock(dir.str("state/pushgate.db"), 12, held);
  int rc = run.wait(120000);
  int st = 0;
  waitpid(holder, &st, 0);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  std::string out = test::read_file(dir.path() / "run.out");
  EXPECT_EQ(rc, 0) << out;
  auto show = nlohmann::json::parse(pg({"flight", "show", "1", "--json"}).out);
  ASSERT_EQ(show["jobs"].size(), 2u);
  for (const auto& j : show["jobs"]) {
    EXPECT_EQ(j["status"], "pass") << show.dump(2);
    ASSERT_EQ(j["steps"].size(), 1u);
    EXPECT_EQ(j["steps"][0]["status"], "pass");
  }
  EXPECT_NE(show["outcome"], "");
}

TEST_F(CliFlight, ShowListAndHostCommands) {
  write_config("true");
  auto r = pg({"flight", "run", "xen-unstable", "--no-fetch", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["jobs"][0]["status"], "pass");
  EXPECT_EQ(doc["jobs"][0]["runvars"]["revsrc_xen"], "tested-of:xen-unstable");  // first flight: baseline
  EXPECT_NE(r.err.find("step 1 work: running"), std::string::npos) << r.err;
  auto list = nlohmann::json::parse(pg({"flight", "list", "--json"}).out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(pg({"flight", "show", "99"}).exit_code, 2);
  EXPECT_EQ(pg({"host", "disable", "h9"}).exit_code, 2);
  ASSERT_EQ(pg({"host", "disable", "h0", "--reason", "bad RAM"}).exit_code, 0);
  auto hosts = nlohmann::json::parse(pg({"host", "list", "--json"}).out);
  EXPECT_EQ(hosts[0]["state"], "disabled");
  auto starved = pg({"flight", "run", "xen-unstable", "--no-fetch", "--always", "--json"});
  EXPECT_EQ(nlohmann::json::parse(starved.out)["jobs"][0]["status"], "starved");
  ASSERT_EQ(pg({"host", "enable", "h0"}).exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(pg({"host", "list", "--json"}).out)[0]["state"], "enabled");
  for (std::vector<std::string> cmd : std::vector<std::vector<std::string>>{
           {"flight"}, {"flight", "create"}, {"flight", "run"}, {"flight", "show"}, {"flight", "list"}, {"host"},
           {"host", "list"}, {"host", "show"}, {"host", "enable"}, {"host", "disable"}}) {
    cmd.push_back("--help");
    EXPECT_EQ(test::pushgate(cmd).exit_code, 0) << cmd[0];
  }
}

TEST_F(CliFlight, HistoryOfJobStepAndHost) {
  write_config("true");
  ASSERT_EQ(pg({"flight", "run", "xen-unstable", "--no-fetch"}).exit_code, 0);
  ASSERT_EQ(pg({"flight", "run", "xen-unstable", "--no-fetch", "--always"}).exit_code, 0);
  auto job = pg({"history", "job", "xen-unstable", "test-amd64", "--json"});
  ASSERT_EQ(job.exit_code, 0) << job.err;
  auto rows = nlohmann::json::parse(job.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["flight"], 2);  // newest first
  EXPECT_EQ(rows[0]["job_status"], "pass");
  EXPECT_EQ(rows[0]["host"], "h0");
  EXPECT_EQ(rows[0]["revision_xen"].get<std::string>().size(), 40u);
  auto limited = nlohmann::json::parse(pg({"history", "job", "xen-unstable", "test-amd64", "--limit", "1", "--json"}).out);
  EXPECT_EQ(limited.size(), 1u);
  auto step = nlohmann::json::parse(pg({"history", "step", "xen-unstable", "test-amd64", "work", "--json"}).out);
  ASSERT_EQ(step.size(), 2u);
  EXPECT_EQ(step[1]["status"], "pass");
  // A testid no step of the job has is a mistake, not an empty history (issue 16).
  EXPECT_EQ(pg({"history", "step", "xen-unstable", "test-amd64", "nope", "--json"}).exit_code, 2);
  auto host = nlohmann::json::parse(pg({"history", "host", "h0", "--json"}).out);
  ASSERT_EQ(host.size(), 4u);  // allocate and release, twice
  EXPECT_EQ(host[0]["event"], "release");
  EXPECT_EQ(host[0]["flight"], 2);
  auto text = pg({"history", "job", "xen-unstable", "test-amd64"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("test-amd64 on xen-unstable"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("pass"), std::string::npos) << text.out;
  EXPECT_NE(pg({"history", "host", "h0"}).out.find("allocate"), std::string::npos);
  // Bad input: exit 2 with a suggestion, and nothing written.
  auto bad = pg({"history", "job", "xen-unstabel", "test-amd64"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("did you mean \"xen-unstable\""), std::string::npos) << bad.err;
  EXPECT_EQ(pg({"history", "job", "xen-unstable", "test-amd65"}).exit_code, 2);
  EXPECT_EQ(pg({"history", "host", "h9"}).exit_code, 2);
  EXPECT_EQ(pg({"history", "job", "xen-unstable", "test-amd64", "--limit", "0"}).exit_code, 2);
  EXPECT_EQ(pg({"history"}).exit_code, 2);
  for (std::vector<std::string> cmd : std::vector<std::vector<std::string>>{
           {"history"}, {"history", "job"}, {"history", "step"}, {"history", "host"}}) {
    cmd.push_back("--help");
    EXPECT_EQ(test::pushgate(cmd).exit_code, 0) << cmd[0];
  }
}

}  // namespace
}  // namespace pushgate

namespace pushgate {
namespace {

// Issue 11 item 7: a waiter row and a held host left by a killed `flight
// run` (its flights' run locks are free) are ignored and purged; the host,
// which sits free, serves the next flight instead of starving it.
TEST_F(CliFlight, Issue11_ClaimsOfDeadProcessesAreIgnoredAndPurged) {
  write_config("true", /*starve=*/3);
  ASSERT_EQ(pg({"db", "status"}).exit_code, 0);  // hosts synced
  {
    auto st = store::Store::open({dir.str("state/pushgate.db")}).value();
    store::NewFlight dead;
    dead.branch = "xen-unstable";
    dead.jobs = {{{}, "test-amd64", "r"}};
    FlightId a = st->create_flight(dead).value();
    FlightId b = st->create_flight(dead).value();
    ASSERT_TRUE(st->try_allocate_host("h0", a, "test-amd64", "host").value());  // a dead holder
    ASSERT_TRUE(st->set_waiting({b, "test-amd64", 1000, true, "host=arch-amd64"}).has_value());  // a dead waiter
  }
  auto r = pg({"flight", "run", "xen-unstable", "--no-fetch", "--always"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("starved"), std::string::npos) << r.err;
  auto st = store::Store::open({dir.str("state/pushgate.db")}).value();
  EXPECT_TRUE(st->waiters().value().empty()) << "the dead waiter was purged";
  auto jobs = st->list_jobs(FlightId{3}).value();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].status, "pass");
  for (const auto& h : st->list_hosts().value()) EXPECT_FALSE(h.held_flight.has_value()) << h.host;
}

}  // namespace
}  // namespace pushgate

namespace pushgate {
namespace {

// Issue 12 item 4: a step's environment is an allow-list; the daemon's
// secrets (an API token variable, a password variable) never reach it.
TEST_F(CliFlight, Issue12_StepsDoNotSeeTheControllersSecrets) {
  write_config("env > \"$PUSHGATE_WORKDIR/../../env.txt\"");
  auto cfg = nlohmann::json::parse(test::read_file(dir.path() / "c.json"));
  cfg["daemon"]["step_env"] = {"PUSHGATE_TEST_KEEP"};
  test::write_file(dir.path() / "c.json", cfg.dump(2));
  auto r = test::pushgate({"--config", dir.str("c.json"), "flight", "run", "xen-unstable", "--no-fetch", "--always"},
                          {{"PUSHGATE_API_TOKEN", "s3cret-token"}, {"IPMI_PASSWORD", "hunter2"},
                           {"PUSHGATE_TEST_KEEP", "kept"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string env = test::read_file(dir.path() / "state/work/env.txt");
  EXPECT_EQ(env.find("s3cret-token"), std::string::npos) << env;
  EXPECT_EQ(env.find("hunter2"), std::string::npos) << env;
  EXPECT_NE(env.find("PUSHGATE_TEST_KEEP=kept"), std::string::npos) << env;
  EXPECT_NE(env.find("PATH="), std::string::npos) << env;
  EXPECT_NE(env.find("PUSHGATE_FLIGHT=1"), std::string::npos) << env;
}

}  // namespace
}  // namespace pushgate
