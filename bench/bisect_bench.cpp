// Claim (issue 14): a bisection names the right commit in at most
// ceil(log2 N) + 4 flights (median), every reproduction included, on
// histories with merges; osstest's scheme (both ends twice, the final pair
// three times each, binary search between) is printed beside it.
//
// Each run generates a history of N commits after the basis: a main line
// with side branches merged into it (some forked before the basis, so the
// culprit may sit on a side branch whose parent is outside the range), and
// a random culprit (a plain commit, a side-branch commit or a merge). The
// step fails iff the culprit is an ancestor-or-self of the tested commit.
// The real decide() picks every probe; each probe is one flight. The run
// starts with what a regression leaves: the failure and its retest failed,
// the basis passed once.
//
// Beside it, the same histories with 3 probes at once (bisect::plan, used
// on equivalent hosts): rounds of waiting and flights spent.
//
//   build/bench/bisect_bench [runs=40] [seed=1]

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <pushgate/bisect.hpp>

using namespace pushgate;

namespace {

struct History {
  bisect::Graph graph;
  std::vector<std::vector<bool>> ancestors;  // ancestors-or-self, for the simulated step
};

// Node 0: the basis. Boundary nodes (ancestors of the basis) come first
// after it; then N commits in topological order; the last is the failure.
History generate(int n, std::mt19937& rng) {
  History h;
  auto& nodes = h.graph.nodes;
  nodes.push_back({});  // basis
  h.graph.basis = 0;
  std::vector<int> main{0};
  std::uniform_int_distribution<int> pct(0, 99);
  int made = 0;
  while (made < n) {
    int r = pct(rng);
    if (r < 12 && n - made >= 3) {
      // A side branch of 1-4 commits, merged back.
      int len = std::min(n - made - 1, 1 + pct(rng) % 4);
      int fork;
      if (pct(rng) < 30) {
        nodes.push_back({{}, true});  // forked before the basis: its parent is a boundary node
        fork = static_cast<int>(nodes.size()) - 1;
      } else {
        fork = main[static_cast<std::size_t>(pct(rng)) % main.size()];
      }
      int tip = fork;
      for (int k = 0; k < len; ++k) {
        nodes.push_back({{tip}, false});
        tip = static_cast<int>(nodes.size()) - 1;
        ++made;
      }
      nodes.push_back({{main.back(), tip}, false});  // the merge
      main.push_back(static_cast<int>(nodes.size()) - 1);
      ++made;
    } else {
      nodes.push_back({{main.back()}, false});
      main.push_back(static_cast<int>(nodes.size()) - 1);
      ++made;
    }
  }
  h.graph.failure = main.back();
  std::size_t total = nodes.size();
  h.ancestors.assign(total, std::vector<bool>(total, false));
  for (std::size_t i = 0; i < total; ++i) {
    h.ancestors[i][i] = true;
    for (int p : nodes[i].parents) {
      for (std::size_t k = 0; k < total; ++k) {
        if (h.ancestors[static_cast<std::size_t>(p)][k]) h.ancestors[i][k] = true;
      }
    }
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 40;
  unsigned seed = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 1;
  if (runs < 1) {
    std::fprintf(stderr, "usage: bisect_bench [runs>=1] [seed]\n");
    return 2;
  }
  std::mt19937 rng(seed);
  bool ok = true;
  std::printf("%6s %6s %8s %8s %10s %14s %8s %10s   %s\n", "N", "runs", "median", "worst", "log2N+4", "osstest(est.)",
              "wrong", "ms/decide", "3 at once: median rounds / flights");
  for (int n : {8, 64, 512, 4096}) {
    std::vector<int> used, rounds3, flights3;
    int wrong = 0;
    double decide_ms = 0;
    int decisions = 0;
    for (int run = 0; run < runs; ++run) {
      History h = generate(n, rng);
      const auto& nodes = h.graph.nodes;
      // The culprit: any commit of the range except the basis and boundary nodes.
      std::vector<int> pool;
      for (std::size_t i = 1; i < nodes.size(); ++i) {
        if (!nodes[i].boundary) pool.push_back(static_cast<int>(i));
      }
      int culprit = pool[static_cast<std::size_t>(rng()) % pool.size()];
      auto fails = [&](int node) {
        return static_cast<bool>(h.ancestors[static_cast<std::size_t>(node)][static_cast<std::size_t>(culprit)]);
      };
      std::vector<bisect::Tally> t(nodes.size());
      t[static_cast<std::size_t>(h.graph.failure)].fail = 2;  // the failure and its retest
      t[static_cast<std::size_t>(h.graph.basis)].pass = 1;    // the basis flight
      int flights = 0;
      for (;;) {
        auto t0 = std::chrono::steady_clock::now();
        bisect::Decision d = bisect::decide(h.graph, t);
        decide_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        ++decisions;
        if (d.status != bisect::State::running) {
          if (d.status != bisect::State::complete || d.culprit != culprit) {
            ++wrong;
            std::printf("  N=%d run %d: %s (%s), culprit %d, true culprit %d\n", n, run, bisect::to_string(d.status),
                        d.why.c_str(), d.culprit, culprit);
          }
          break;
        }
        ++flights;
        auto& x = t[static_cast<std::size_t>(d.probe)];
        ++x.probes;
        (fails(d.probe) ? x.fail : x.pass) += 1;
      }
      used.push_back(flights);

      // Three at once, on the same history and culprit.
      std::vector<bisect::Tally> t3(nodes.size());
      t3[static_cast<std::size_t>(h.graph.failure)].fail = 2;
      t3[static_cast<std::size_t>(h.graph.basis)].pass = 1;
      int rounds = 0, spent = 0;
      for (;;) {
        bisect::Decision d = bisect::decide(h.graph, t3);
        if (d.status != bisect::State::running) {
          if (d.status != bisect::State::complete || d.culprit != culprit) {
            ++wrong;
            std::printf("  N=%d run %d, 3 at once: %s (%s)\n", n, run, bisect::to_string(d.status), d.why.c_str());
          }
          break;
        }
        ++rounds;
        for (int node : bisect::plan(h.graph, t3, 3)) {
          ++spent;
          auto& x = t3[static_cast<std::size_t>(node)];
          ++x.probes;
          (fails(node) ? x.fail : x.pass) += 1;
        }
      }
      rounds3.push_back(rounds);
      flights3.push_back(spent);
    }
    std::sort(rounds3.begin(), rounds3.end());
    std::sort(flights3.begin(), flights3.end());
    std::sort(used.begin(), used.end());
    int median = used[used.size() / 2];
    int worst = used.back();
    int log2n = static_cast<int>(std::ceil(std::log2(n)));
    // osstest (issue 14): 4 end reproductions, binary search, then the
    // final pair three times each (6).
    int osstest = 4 + log2n + 6;
    bool pass = median <= log2n + 4 && wrong == 0;
    ok = ok && pass;
    std::printf("%6d %6d %8d %8d %10d %14d %8d %10.3f   %d / %d %s\n", n, runs, median, worst, log2n + 4, osstest, wrong,
                decide_ms / decisions, rounds3[rounds3.size() / 2], flights3[flights3.size() / 2], pass ? "PASS" : "FAIL");
  }
  std::printf("%s: median flights <= ceil(log2 N) + 4, never a wrong culprit\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
