// Claim (issues 3 and 13): resolving every tree of every branch in-process
// through libgit2, and describing each revision as `pushgate revisions`
// shows it, is faster than the git subprocesses a shell harness runs for
// the same facts (`git rev-parse` per ref, `git describe --tags` per
// revision), on real-size repositories: the main tree has 100k commits, a
// tag every 300 commits and merges; the other trees are local mirrors of
// it. The subprocess side is timed warm (one untimed pass first, so the
// page cache and git's own files are hot), like the in-process side.
//
//   build/bench/resolve_bench [branches=50] [trees=6] [rounds=20] [commits=100000]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <pushgate/revisions.hpp>

#include "support.hpp"

using namespace pushgate;
using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

int main(int argc, char** argv) {
  int branches = argc > 1 ? std::atoi(argv[1]) : 50;
  int trees = argc > 2 ? std::atoi(argv[2]) : 6;
  int rounds = argc > 3 ? std::atoi(argv[3]) : 20;
  int commits = argc > 4 ? std::atoi(argv[4]) : 100000;
  if (branches < 1 || trees < 1 || rounds < 1 || commits < 1000) {
    std::fprintf(stderr, "usage: resolve_bench [branches>=1] [trees>=1] [rounds>=1] [commits>=1000]\n");
    return 2;
  }
  test::TempDir dir;

  // One repository per tree. Branch br's input is br*7 commits behind
  // master (between two tags, as a branch is), its tested ref 40 further
  // back; the other trees follow master.
  const std::string big = dir.str("t0.git");
  auto t_gen = Clock::now();
  test::generate_history(big, commits);
  std::printf("generated %d commits (tag every 300, merge every 1000) in %.1f s\n", commits, seconds_since(t_gen));
  std::string cfg = "{\"trees\": [";
  for (int t = 0; t < trees; ++t) {
    std::string path = dir.str("t" + std::to_string(t) + ".git");
    if (t > 0) test::run({"git", "clone", "-q", "--mirror", "--local", big, path});
    for (int br = t; br < branches; br += trees) {
      test::run({"git", "-C", path, "update-ref", "refs/heads/in-" + std::to_string(br),
                 "master~" + std::to_string(br * 7)});
      test::run({"git", "-C", path, "update-ref", "refs/heads/out-" + std::to_string(br),
                 "master~" + std::to_string(br * 7 + 40)});
    }
    cfg += std::string(t ? "," : "") + "{\"name\": \"t" + std::to_string(t) + "\", \"upstream\": \"" + path +
           "\", \"mirror\": \"" + path + "\"}";
  }
  cfg += "], \"branches\": [";
  for (int br = 0; br < branches; ++br) {
    int t = br % trees;
    cfg += std::string(br ? "," : "") + "{\"name\": \"b" + std::to_string(br) + "\", \"tree\": \"t" + std::to_string(t) +
           "\", \"input\": \"in-" + std::to_string(br) + "\", \"tested\": \"out-" + std::to_string(br) +
           "\", \"sources\": {";
    bool first = true;
    for (int o = 0; o < trees; ++o) {
      if (o == t) continue;
      cfg += std::string(first ? "" : ",") + "\"t" + std::to_string(o) + "\": {\"ref\": \"master\"}";
      first = false;
    }
    cfg += "}}";
  }
  cfg += "]}";
  auto loaded = config::load_text(cfg, dir.str("c.json"));
  if (!loaded.config) {
    std::cerr << loaded.errors[0].to_string() << "\n";
    return 1;
  }
  const config::Config& c = *loaded.config;

  // In-process: the product's own resolve(), mirrors opened once (as the
  // daemon and an API worker keep them).
  revisions::Mirrors mirrors(c);
  std::size_t resolved = 0;
  auto resolve_all = [&](bool with_describe) -> bool {
    for (const auto& b : c.branches) {
      auto res = revisions::resolve(c, mirrors, nullptr, b.name);
      if (!res) {
        std::cerr << res.error().to_string() << "\n";
        return false;
      }
      if (with_describe) revisions::describe(*res, mirrors);
      resolved += res->trees.size();
    }
    return true;
  };
  // The first pass with describe: nothing cached yet, every describe walks
  // history back to its tag (what the first `pushgate revisions` costs).
  auto t_cold = Clock::now();
  if (!resolve_all(true)) return 1;
  double describe_cold = seconds_since(t_cold);
  resolved = 0;
  auto t0 = Clock::now();
  for (int r = 0; r < rounds; ++r)
    if (!resolve_all(false)) return 1;
  double in_process = seconds_since(t0) / rounds;
  const std::size_t revisions = resolved / static_cast<std::size_t>(rounds);
  auto t2 = Clock::now();
  for (int r = 0; r < rounds; ++r)
    if (!resolve_all(true)) return 1;
  double describe_warm = seconds_since(t2) / rounds;

  // Subprocesses: `git rev-parse` per ref, then `git describe --tags` of
  // each revision, as a shell harness would. One untimed pass warms them.
  std::size_t spawned = 0;
  auto git_pass = [&](bool with_describe) -> bool {
    for (const auto& b : c.branches) {
      for (const auto& tree : revisions::trees_of(c, b)) {
        std::string ref = "refs/heads/" + (tree == b.tree ? b.input : std::string("master"));
        const std::string& mirror = c.find_tree(tree)->mirror;
        auto r = test::run({"git", "-C", mirror, "rev-parse", ref});
        ++spawned;
        if (r.exit_code != 0) {
          std::cerr << "git rev-parse failed: " << r.err << "\n";
          return false;
        }
        if (!with_describe) continue;
        auto d = test::run({"git", "-C", mirror, "describe", "--tags", ref});
        ++spawned;
        if (d.exit_code != 0) {
          std::cerr << "git describe failed: " << d.err << "\n";
          return false;
        }
      }
    }
    return true;
  };
  if (!git_pass(true)) return 1;
  spawned = 0;
  auto t1 = Clock::now();
  if (!git_pass(false)) return 1;
  double subprocess = seconds_since(t1);
  std::size_t spawned_rev = spawned;
  spawned = 0;
  auto t3 = Clock::now();
  if (!git_pass(true)) return 1;
  double subprocess_describe = seconds_since(t3);

  std::printf("resolve %d branches x %d trees (%zu revisions, each with its frozen-ref check), %d-commit trees\n",
              branches, trees, revisions, commits);
  std::printf("  in-process (libgit2):              %9.3f ms per full pass (mean of %d)\n", in_process * 1e3, rounds);
  std::printf("  git rev-parse, warm:               %9.3f ms for %zu spawns\n", subprocess * 1e3, spawned_rev);
  std::printf("  in-process + describe, first pass: %9.3f ms (describe cache empty)\n", describe_cold * 1e3);
  std::printf("  in-process + describe, cached:     %9.3f ms per full pass (mean of %d)\n", describe_warm * 1e3, rounds);
  std::printf("  git rev-parse + describe, warm:    %9.3f ms for %zu spawns\n", subprocess_describe * 1e3, spawned);
  double r_resolve = subprocess / in_process;
  double r_cold = subprocess_describe / describe_cold;
  double r_warm = subprocess_describe / describe_warm;
  std::printf("  ratio resolve:                 in-process %.1fx faster (target >= 20x)\n", r_resolve);
  std::printf("  ratio with describe, cold:     in-process %.1fx faster (target >= 1x)\n", r_cold);
  std::printf("  ratio with describe, cached:   in-process %.1fx faster (target >= 20x)\n", r_warm);
  bool ok = r_resolve >= 20 && r_cold >= 1 && r_warm >= 20;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
