// Claim (issue 13 item 2): a branch's status (tested revision, its describe
// and commit time) is answered from open mirrors without walking history:
// on a 100k-commit repository, GET /api/v1/branches of a real daemon has
// p50 <= 20 ms and p99 <= 100 ms at 50 concurrent clients, and the
// in-process status is faster than the git commands computing the same
// facts (`git rev-parse`, `git describe --tags`, `git log -1 --format=%at`).
//
//   build/bench/status_bench [commits=100000] [requests_per_client=20]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <pushgate/push.hpp>
#include <pushgate/revisions.hpp>
#include <pushgate/store.hpp>

#include "support.hpp"

using namespace pushgate;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct Percentiles {
  double p50 = 0, p99 = 0;
};
Percentiles percentiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))]; };
  return {at(0.50), at(0.99)};
}

long rss_kb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  int commits = argc > 1 ? std::atoi(argv[1]) : 100000;
  int per_client = argc > 2 ? std::atoi(argv[2]) : 20;
  test::TempDir dir;
  const std::string repo = dir.str("xen.git");
  test::generate_history(repo, commits);
  // The tested ref 150 commits past the last tag, as a branch between releases is.
  test::run({"git", "-C", repo, "update-ref", "refs/heads/smoke", "master~150"});
  std::printf("generated %d commits\n", commits);

  const int port = test::free_port();
  const std::string cfg_text = R"({"daemon": {"state_dir": "state", "listen": "127.0.0.1:)" + std::to_string(port) +
                               R"(", "api_token_file": "token", "api_workers": 4},
    "trees": [{"name": "xen", "upstream": ")" + repo + R"(", "mirror": ")" + repo + R"("}],
    "branches": [{"name": "xen-unstable", "tree": "xen", "input": "master", "tested": "smoke"}],
    "recipes": {"r": {"steps": [{"testid": "t", "run": "true"}]}},
    "jobs": [{"name": "test-amd64", "recipe": "r", "hosts": {"host": ["x"]}}],
    "hosts": [{"name": "h0", "kind": "local", "flags": ["x"]}]})";
  test::write_file(dir.path() / "c.json", cfg_text);
  test::write_file(dir.path() / "token", "0123456789abcdef0123456789abcdef\n");
  std::filesystem::create_directories(dir.path() / "state");
  auto loaded = config::load(dir.str("c.json"));
  if (!loaded.config) {
    std::fprintf(stderr, "%s\n", loaded.errors[0].to_string().c_str());
    return 1;
  }
  const config::Config& cfg = *loaded.config;
  auto st = store::Store::open({cfg.daemon.database}).value();
  const config::Branch& b = cfg.branches[0];

  // In-process, mirrors kept open (an API worker) and opened per call.
  revisions::Mirrors kept(cfg);
  push::branch_status(cfg, *st, kept, b).value();  // warm
  std::vector<double> warm, cold, git;
  for (int i = 0; i < 50; ++i) {
    auto t0 = Clock::now();
    auto s = push::branch_status(cfg, *st, kept, b);
    warm.push_back(ms_since(t0));
    if (!s || s->tested_describe.empty() || !s->tested_commit_time) return 1;
    t0 = Clock::now();
    revisions::Mirrors fresh(cfg);
    push::branch_status(cfg, *st, fresh, b).value();
    cold.push_back(ms_since(t0));
  }
  for (int i = 0; i < 10; ++i) {
    auto t0 = Clock::now();
    test::run({"git", "-C", repo, "rev-parse", "refs/heads/smoke"});
    test::run({"git", "-C", repo, "describe", "--tags", "refs/heads/smoke"});
    test::run({"git", "-C", repo, "log", "-1", "--format=%at", "refs/heads/smoke"});
    git.push_back(ms_since(t0));
  }
  auto w = percentiles(warm), c = percentiles(cold), g = percentiles(git);
  std::printf("branch status in-process, mirrors open:  p50 %7.2f ms  p99 %7.2f ms\n", w.p50, w.p99);
  std::printf("branch status in-process, opened per call: p50 %7.2f ms  p99 %7.2f ms\n", c.p50, c.p99);
  std::printf("the same facts by 3 git commands:         p50 %7.2f ms  p99 %7.2f ms\n", g.p50, g.p99);
  std::printf("ratio git / pushgate (p50, mirrors open): %.1fx\n", g.p50 / w.p50);

  test::Background daemon({test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str("daemon.log"));
  if (!test::wait_for_port(port, 20000)) {
    std::fprintf(stderr, "daemon did not listen:\n%s\n", test::read_file(dir.path() / "daemon.log").c_str());
    return 1;
  }
  bool ok = g.p50 > w.p50;
  for (int clients : {1, 50}) {
    std::vector<std::vector<double>> per(static_cast<std::size_t>(clients));
    long rss_before = rss_kb(daemon.pid());
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int k = 0; k < clients; ++k) {
      threads.emplace_back([&, k] {
        for (int i = 0; i < per_client; ++i) {
          auto t0 = Clock::now();
          auto r = test::http(port, "GET", "/api/v1/branches");
          per[static_cast<std::size_t>(k)].push_back(ms_since(t0));
          if (r.status != 200) ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    std::vector<double> all;
    for (auto& v : per) all.insert(all.end(), v.begin(), v.end());
    auto p = percentiles(all);
    long rss_after = rss_kb(daemon.pid());
    std::printf("GET /api/v1/branches, %2d clients x %d: p50 %7.2f ms  p99 %7.2f ms  failures %d  daemon RSS %ld -> %ld KiB\n",
                clients, per_client, p.p50, p.p99, failures.load(), rss_before, rss_after);
    if (clients == 50) ok = ok && p.p50 <= 20 && p.p99 <= 100 && failures == 0;
  }
  std::printf("%s: p50 <= 20 ms, p99 <= 100 ms at 50 clients; in-process faster than git\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
