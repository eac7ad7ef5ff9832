// Claim (issue 3): resolving every tree of every branch in-process through
// libgit2 is at least 20x faster than one `git rev-parse` subprocess per
// ref, the way shell-based harnesses do it. Same repositories, same run.
//
//   build/bench/resolve_bench [branches=50] [trees=6] [rounds=20]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <pushgate/revisions.hpp>

#include "support.hpp"

using namespace pushgate;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int branches = argc > 1 ? std::atoi(argv[1]) : 50;
  int trees = argc > 2 ? std::atoi(argv[2]) : 6;
  int rounds = argc > 3 ? std::atoi(argv[3]) : 20;
  test::TempDir dir;

  // One repository per tree; every branch has an input and a tested ref in
  // its own tree, every tree has master.
  std::string cfg = "{\"trees\": [";
  for (int t = 0; t < trees; ++t) {
    std::string path = dir.str("t" + std::to_string(t) + ".git");
    test::GitRepoBuilder b(path);
    for (int i = 0; i < 20; ++i) b.commit_on("master", "commit " + std::to_string(i));
    std::string head = b.head_of("master");
    for (int br = t; br < branches; br += trees) {
      b.set_branch("in-" + std::to_string(br), head);
      b.set_branch("out-" + std::to_string(br), head);
    }
    b.annotated_tag("v1.0", head);
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

  // In-process: the product's own resolve(), mirrors opened once.
  revisions::Mirrors mirrors(c);
  std::size_t resolved = 0;
  auto t0 = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (const auto& b : c.branches) {
      auto res = revisions::resolve(c, mirrors, nullptr, b.name);
      if (!res) {
        std::cerr << res.error().to_string() << "\n";
        return 1;
      }
      resolved += res->trees.size();
    }
  }
  double in_process = std::chrono::duration<double>(Clock::now() - t0).count() / rounds;
  resolved /= rounds;
  // For reference: the same with `describe` of every revision, as the CLI shows it.
  auto t2 = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (const auto& b : c.branches) {
      auto res = revisions::resolve(c, mirrors, nullptr, b.name);
      revisions::describe(*res, mirrors);
    }
  }
  double with_describe = std::chrono::duration<double>(Clock::now() - t2).count() / rounds;

  // Subprocess: one `git rev-parse` per ref, as a shell harness would.
  std::size_t spawned = 0;
  auto t1 = Clock::now();
  for (const auto& b : c.branches) {
    for (const auto& tree : revisions::trees_of(c, b)) {
      std::string ref = tree == b.tree ? b.input : "master";
      auto r = test::run({"git", "-C", c.find_tree(tree)->mirror, "rev-parse", "refs/heads/" + ref});
      if (r.exit_code != 0) {
        std::cerr << "git rev-parse failed: " << r.err << "\n";
        return 1;
      }
      ++spawned;
    }
  }
  double subprocess = std::chrono::duration<double>(Clock::now() - t1).count();

  std::printf("resolve %d branches x %d trees (%zu revisions, each with its frozen-ref check)\n", branches, trees,
              resolved);
  std::printf("  in-process (libgit2):     %9.3f ms per full pass (mean of %d)\n", in_process * 1e3, rounds);
  std::printf("  in-process + describe:     %9.3f ms per full pass (shown by `pushgate revisions`)\n",
              with_describe * 1e3);
  std::printf("  git rev-parse subprocess: %9.3f ms for %zu spawns\n", subprocess * 1e3, spawned);
  std::printf("  ratio: in-process is %.1fx faster (target >= 20x)\n", subprocess / in_process);
  return 0;
}
