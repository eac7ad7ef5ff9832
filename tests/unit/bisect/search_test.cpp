// The search of a bisection (SPEC section 7) on hand-made graphs.

#include <gtest/gtest.h>

#include <pushgate/bisect.hpp>

namespace pushgate::bisect {
namespace {

/// basis 0 - 1 - 2 - ... - n (a line).
Graph line(int n) {
  Graph g;
  g.nodes.push_back({});
  for (int i = 1; i <= n; ++i) g.nodes.push_back({{i - 1}, false});
  g.basis = 0;
  g.failure = n;
  return g;
}

std::vector<Tally> start(const Graph& g) {
  std::vector<Tally> t(g.nodes.size());
  t[static_cast<std::size_t>(g.failure)].fail = 2;
  t[static_cast<std::size_t>(g.basis)].pass = 1;
  return t;
}

TEST(BisectSearch, ReproducesTheBasisFirstThenHalves) {
  Graph g = line(8);
  auto t = start(g);
  Decision d = decide(g, t);
  EXPECT_EQ(d.status, State::running);
  EXPECT_EQ(d.probe, 0);
  EXPECT_EQ(d.why, "reproduce the basis");
  t[0].pass = 2;
  d = decide(g, t);
  ASSERT_EQ(d.status, State::running);
  // Candidates 1..8; node 4 has 4 of them below it (1..4), 4 above.
  EXPECT_EQ(d.probe, 4);
  EXPECT_EQ(d.candidates.size(), 8u);
}

TEST(BisectSearch, CompleteOnlyAfterTheFinalPairIsReproduced) {
  Graph g = line(2);
  auto t = start(g);
  t[0].pass = 2;
  Decision d = decide(g, t);
  ASSERT_EQ(d.probe, 1);
  t[1].fail = 1;
  d = decide(g, t);
  ASSERT_EQ(d.status, State::running);
  EXPECT_EQ(d.probe, 1);  // reproduce the first failure
  t[1].fail = 2;
  d = decide(g, t);
  EXPECT_EQ(d.status, State::complete);
  EXPECT_EQ(d.culprit, 1);
  EXPECT_EQ(d.not_present, 0);
}

TEST(BisectSearch, CulpritOnASideBranchWithAParentOutsideTheRange) {
  // 0 basis; 1 boundary (an ancestor of the basis); side 2 (parent 1);
  // main 3 (parent 0); merge 4 (3, 2) = failure. Culprit: 2.
  Graph g;
  g.nodes = {{{}, false}, {{}, true}, {{1}, false}, {{0}, false}, {{3, 2}, false}};
  g.basis = 0;
  g.failure = 4;
  auto t = start(g);
  t[0].pass = 2;
  auto fails = [](int n) { return n == 2 || n == 4; };
  Decision d;
  for (int i = 0; i < 20; ++i) {
    d = decide(g, t);
    if (d.status != State::running) break;
    auto& x = t[static_cast<std::size_t>(d.probe)];
    ++x.probes;
    (fails(d.probe) ? x.fail : x.pass) += 1;
  }
  EXPECT_EQ(d.status, State::complete) << d.why;
  EXPECT_EQ(d.culprit, 2);
  EXPECT_EQ(d.not_present, 1);  // the boundary parent, tested twice
  EXPECT_EQ(t[1].pass, 2);
}

TEST(BisectSearch, EndsThatDoNotReproduceAndContradictions) {
  Graph g = line(4);
  auto t = start(g);
  t[0].fail = 1;
  EXPECT_EQ(decide(g, t).status, State::unreproducible);
  t = start(g);
  t[4].pass = 1;
  EXPECT_EQ(decide(g, t).status, State::unreproducible);
  t = start(g);
  t[0].pass = 2;
  t[2].pass = 1;
  t[2].fail = 1;
  EXPECT_EQ(decide(g, t).status, State::inconsistent);
  t = start(g);
  t[0].pass = 2;
  t[1].fail = 1;
  t[3].pass = 1;  // passes on top of a failure
  EXPECT_EQ(decide(g, t).status, State::inconsistent);
}

TEST(BisectSearch, UntestableCandidatesMakeItInconclusive) {
  Graph g = line(3);
  auto t = start(g);
  t[0].pass = 2;
  t[1].untestable = 1;
  t[2].untestable = 1;
  Decision d = decide(g, t);
  EXPECT_EQ(d.status, State::inconclusive) << d.why;
  EXPECT_EQ(d.candidates, (std::vector<int>{1, 2, 3}));
}

TEST(BisectSearch, FlailGuardStopsANodeProbedAgainAndAgain) {
  Graph g = line(2);
  auto t = start(g);
  t[0].probes = 3;  // three probes of the basis gave no result (broken every time)
  Decision d = decide(g, t);
  EXPECT_EQ(d.status, State::doubtful);
  EXPECT_NE(d.why.find("flailing"), std::string::npos) << d.why;
}

TEST(BisectSearch, StatesRoundTrip) {
  for (State s : {State::running, State::complete, State::inconclusive, State::inconsistent, State::unreproducible,
                  State::doubtful, State::cancelled}) {
    EXPECT_EQ(parse_state(to_string(s)).value(), s);
  }
  EXPECT_FALSE(parse_state("done"));
}

}  // namespace
}  // namespace pushgate::bisect
