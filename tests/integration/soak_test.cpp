// Issues 11 and 19: the push gate under kill -9. The daemon and `pushgate
// flight run` processes share a branch while new commits arrive; a random
// pushgate process is killed (SIGKILL, no clean-up) at 50 moments. Then a
// last daemon finishes everything, and the upstream's reflog and the store
// must tell the same story: every move of a tested ref is a fast-forward
// recorded exactly once as done, every done push is in the reflog, every
// flight has an outcome, no step is left running, the database is intact.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include <pushgate/store.hpp>

#include "support.hpp"

namespace pushgate {
namespace {

using namespace std::chrono_literals;

struct Move {
  std::string from, to;
};

/// refs/heads/BRANCH's reflog in a bare repository, oldest first.
std::vector<Move> reflog(const std::string& git_dir, const std::string& branch) {
  std::vector<Move> out;
  std::istringstream in(test::read_file(std::filesystem::path(git_dir) / "logs/refs/heads" / branch));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    Move m;
    l >> m.from >> m.to;
    if (m.from.find_first_not_of('0') != std::string::npos) out.push_back(m);  // not the ref's creation
  }
  return out;
}

TEST(Soak, KillDashNineAtFiftyMomentsLosesAndRepeatsNoPush) {
  test::TempDir dir;
  std::string up = dir.str("up/xen.git");
  test::GitRepoBuilder xen(up);
  xen.set_branch("staging", xen.commit_on("master", "xen: import", {{"CHANGES", "0\n"}}));
  xen.set_branch("staging-4.7", xen.head_of("master"));
  xen.set_branch("stable-4.7", xen.head_of("master"));
  ASSERT_EQ(test::run({"git", "--git-dir=" + up, "config", "core.logAllRefUpdates", "always"}).exit_code, 0);
  int port = test::free_port();
  nlohmann::json cfg = {
      {"daemon",
       {{"state_dir", "state"}, {"listen", "127.0.0.1:" + std::to_string(port)},
        {"retest_regressions", false}, {"reconcile_seconds", 1}, {"stale_ref_lock_seconds", 1},
        {"starve_after_seconds", 600}}},
      {"trees", {{{"name", "xen"}, {"upstream", "up/xen.git"}}}},
      {"branches",
       {{{"name", "xen-unstable"}, {"tree", "xen"}, {"input", "staging"}, {"tested", "master"},
         {"schedule", {{"poll_seconds", 1}}}},
        {{"name", "xen-4.7-testing"}, {"tree", "xen"}, {"input", "staging-4.7"}, {"tested", "stable-4.7"},
         {"schedule", {{"poll_seconds", 1}}}}}},
      {"recipes", {{"r", {{"steps", {{{"testid", "work"}, {"run", "sleep 0.$(( $$ % 4 + 1 ))"}}}}}}}},
      {"jobs", {{{"name", "test-amd64"}, {"recipe", "r"}, {"hosts", {{"host", {"x86"}}}}}}},
      {"hosts", {{{"name", "h0"}, {"kind", "local"}, {"flags", {"x86"}}},
                 {{"name", "h1"}, {"kind", "local"}, {"flags", {"x86"}}}}}};
  test::write_file(dir.path() / "c.json", cfg.dump(2));
  std::filesystem::create_directories(dir.path() / "state");
  auto pg = [&](std::vector<std::string> a) {
    a.insert(a.begin(), {test::pushgate_binary(), "--config", dir.str("c.json")});
    return a;
  };
  // The baseline flights, so that every later flight can push.
  for (const char* b : {"xen-unstable", "xen-4.7-testing"}) {
    auto r = test::run(pg({"flight", "run", b, "--always"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::mt19937 rng(20261201);
  auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  std::unique_ptr<test::Background> daemon;
  std::vector<std::unique_ptr<test::Background>> runners;
  int kills = 0, commits = 0, n = 0;
  auto log = [&](const std::string& what) { return dir.str("logs/" + what + "-" + std::to_string(++n) + ".log"); };
  std::filesystem::create_directories(dir.path() / "logs");
  while (kills < 50) {
    if (chance(60)) {
      xen.commit_on(chance(70) ? "staging" : "staging-4.7", "change " + std::to_string(++commits),
                    {{"CHANGES", std::to_string(commits) + "\n"}});
    }
    if (!daemon) daemon = std::make_unique<test::Background>(pg({"daemon"}), log("daemon"));
    // Others run flights of the shared branch by hand meanwhile.
    if (chance(40)) runners.push_back(std::make_unique<test::Background>(pg({"flight", "run", "xen-unstable"}), log("run")));
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 900));
    if (chance(70)) {
      daemon->signal(SIGKILL);
      daemon->wait(10000);
      daemon.reset();
    } else if (!runners.empty()) {
      runners.back()->signal(SIGKILL);
      runners.back()->wait(10000);
      runners.pop_back();
    } else {
      continue;
    }
    ++kills;
  }
  for (auto& r : runners) r->wait(60000);
  runners.clear();
  if (daemon) {
    daemon->signal(SIGKILL);
    daemon->wait(10000);
  }
  // A last daemon, nothing killed: it finishes every flight and push.
  daemon = std::make_unique<test::Background>(pg({"daemon"}), dir.str("logs/final.log"));
  ASSERT_TRUE(test::wait_for_port(port, 30000)) << test::read_file(dir.path() / "logs/final.log");  // it is up
  auto st = store::Store::open({dir.str("state/pushgate.db")}).value();
  auto settled = [&] {
    if (xen.head_of("master") != xen.head_of("staging") || xen.head_of("stable-4.7") != xen.head_of("staging-4.7")) return false;
    if (!st->pending_pushes().value().empty()) return false;
    for (const auto& f : st->list_flights({.limit = 1000}).value()) {
      if (f.outcome.empty()) return false;
    }
    return true;
  };
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (!settled() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(200ms);
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait(60000), 0);
  ASSERT_TRUE(settled()) << test::read_file(dir.path() / "logs/final.log");

  // The reflog and the store tell the same story.
  std::map<std::string, int> done;  // "ref old new" -> done pushes
  int refused = 0, failed = 0, refused_47 = 0, failed_47 = 0;
  auto pushes = st->pushes("", 100000).value();
  for (const auto& p : pushes) {
    if (p.state == "done") ++done[p.ref + " " + p.old_rev + " " + p.new_rev];
    bool b47 = p.branch == "xen-4.7-testing";
    if (p.state == "refused") ++(b47 ? refused_47 : refused);
    if (p.state == "failed") ++(b47 ? failed_47 : failed);
  }
  int moves = 0;
  for (const auto& [ref, branch] : {std::pair<std::string, std::string>{"refs/heads/master", "master"},
                                    {"refs/heads/stable-4.7", "stable-4.7"}}) {
    for (const Move& m : reflog(up, branch)) {
      ++moves;
      auto ff = test::run({"git", "--git-dir=" + up, "merge-base", "--is-ancestor", m.from, m.to});
      EXPECT_EQ(ff.exit_code, 0) << ref << " moved " << m.from << " -> " << m.to << " without fast-forward";
      auto it = done.find(ref + " " + m.from + " " + m.to);
      std::string rows;  // every push of that move, to tell why
      for (const auto& p : pushes) {
        if (p.ref == ref && (p.new_rev == m.to || p.old_rev == m.to)) {
          rows += "\n  push " + std::to_string(p.id) + " " + p.branch + " " + p.old_rev.substr(0, 12) + " -> " +
                  p.new_rev.substr(0, 12) + " " + p.state + ": " + p.message;
        }
      }
      EXPECT_TRUE(it != done.end() && it->second == 1)
          << ref << " " << m.from << " -> " << m.to << " is recorded as done " << (it == done.end() ? 0 : it->second)
          << " times" << rows;
      if (it != done.end()) done.erase(it);
    }
  }
  EXPECT_TRUE(done.empty()) << done.size() << " done pushes are not in the reflog, e.g. " << done.begin()->first;
  int steps_running = 0, flights = 0;
  for (const auto& f : st->list_flights({.limit = 100000}).value()) {
    ++flights;
    EXPECT_FALSE(f.outcome.empty()) << "flight " << f.id.str();
    for (const auto& s : st->list_steps(f.id).value()) steps_running += s.status == "running";
  }
  EXPECT_EQ(steps_running, 0);
  auto integrity = test::run({"sqlite3", dir.str("state/pushgate.db"), "PRAGMA integrity_check"});
  EXPECT_EQ(integrity.out, "ok\n") << integrity.out << integrity.err;
  // Nobody but the daemon pushes xen-4.7-testing: nothing there is ever refused or failed (issue 19).
  EXPECT_EQ(refused_47, 0);
  EXPECT_EQ(failed_47, 0);
  EXPECT_EQ(failed, 0);
  std::printf("soak: %d kills, %d commits, %d flights, %d ref moves, %zu pushes (%d refused on the shared branch, "
              "%d on xen-4.7-testing; %d failed), %d steps left running, integrity %s",
              kills, commits, flights, moves, pushes.size(), refused, refused_47, failed + failed_47, steps_running,
              integrity.out.c_str());
}

}  // namespace
}  // namespace pushgate
