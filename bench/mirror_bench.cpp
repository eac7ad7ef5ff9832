// Claim (issue 13 item 1): a first mirror and a one-commit incremental
// fetch come within 1.5x of `git clone --mirror --no-local` and `git fetch`
// on the same repository, in time and in peak memory, for a local upstream
// (git fetch as the transport) and over git:// (libgit2's smart transport).
//
// Generates a repository of COMMITS commits (default 100000) with an
// annotated tag every 300 commits and a merged side branch every 1000,
// through `git fast-import`; every measured command runs in a child
// process, so peak RSS is that child's (wait4).
//
//   build/bench/mirror_bench [commits=100000]

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <pushgate/git.hpp>

#include "support.hpp"

using namespace pushgate;
using Clock = std::chrono::steady_clock;

namespace {

struct Cost {
  double seconds = 0;
  long max_rss_kb = 0;
  int status = 0;
};

/// Runs `fn` in a forked child; its wall time and peak RSS.
Cost in_child(const std::function<int()>& fn) {
  auto t0 = Clock::now();
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  return {std::chrono::duration<double>(Clock::now() - t0).count(), ru.ru_maxrss, status};
}

Cost command(const std::vector<std::string>& argv) {
  return in_child([&] {
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execvp(a[0], a.data());
    return 127;
  });
}

Cost pushgate_fetch(const std::string& url, const std::string& mirror) {
  return in_child([&] {
    auto repo = git::Repository::open_or_create_bare(mirror);
    if (!repo) return 1;
    return (*repo)->fetch(url) ? 0 : 2;
  });
}

void row(const char* what, const Cost& ours, const Cost& git) {
  std::printf("%-34s pushgate %7.2f s %7ld KiB | git %7.2f s %7ld KiB | time %.2fx  rss %.2fx%s\n", what, ours.seconds,
              ours.max_rss_kb, git.seconds, git.max_rss_kb, ours.seconds / git.seconds,
              static_cast<double>(ours.max_rss_kb) / static_cast<double>(git.max_rss_kb),
              ours.status || git.status ? "  (a command FAILED)" : "");
}

}  // namespace

int main(int argc, char** argv) {
  int commits = argc > 1 ? std::atoi(argv[1]) : 100000;
  test::TempDir dir;
  const std::string up = dir.str("up.git");
  auto t0 = Clock::now();
  test::generate_history(up, commits);
  std::printf("generated %d commits (+%d merges, %d tags) in %.1f s\n", commits, commits / 1000, commits / 300,
              std::chrono::duration<double>(Clock::now() - t0).count());
  test::GitDaemon daemon(dir.str());
  if (!daemon.ok()) {
    std::fprintf(stderr, "git daemon did not start\n");
    return 1;
  }
  struct Transport {
    const char* name;
    std::string url;
  };
  std::vector<Transport> transports = {{"local path", up}, {"git://", daemon.url("up.git")}};
  bool ok = true;
  int n = 0;
  for (const auto& tr : transports) {
    std::string ours = dir.str("ours" + std::to_string(n) + ".git"), theirs = dir.str("git" + std::to_string(n) + ".git");
    ++n;
    Cost a = pushgate_fetch(tr.url, ours);
    Cost b = command({"git", "clone", "-q", "--mirror", "--no-local", tr.url, theirs});
    row((std::string("first mirror, ") + tr.name).c_str(), a, b);
    ok = ok && a.status == 0 && b.status == 0 && a.seconds <= 1.5 * b.seconds && a.max_rss_kb <= 1.5 * b.max_rss_kb;
    // One new commit upstream, then an incremental fetch each (best of 3 rounds).
    Cost best_a{1e9, 0, 0}, best_b{1e9, 0, 0};
    for (int round = 0; round < 3; ++round) {
      {
        test::GitRepoBuilder b(up);
        b.commit_on("master", "one more " + std::to_string(n) + "." + std::to_string(round), {{"new-file", std::to_string(round)}});
      }
      Cost x = pushgate_fetch(tr.url, ours);
      Cost y = command({"git", "-C", theirs, "fetch", "-q", "--prune"});
      if (x.seconds < best_a.seconds) best_a = x;
      if (y.seconds < best_b.seconds) best_b = y;
    }
    row((std::string("one-commit fetch, ") + tr.name).c_str(), best_a, best_b);
    ok = ok && best_a.status == 0 && best_b.status == 0 && best_a.seconds <= 1.5 * best_b.seconds;
  }
  std::printf("%s: within 1.5x of git for every transport\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
