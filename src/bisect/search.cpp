// The search (SPEC section 7) on a graph of revision tuples: which node to
// test next, and when the bisection ends. Ancestor sets are bitsets built
// once per decision in topological order, so a decision costs
// O(nodes^2 / 64) words: 4096 nodes take a few milliseconds.

#include <pushgate/bisect.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>

namespace pushgate::bisect {

const char* to_string(State s) {
  switch (s) {
    case State::running: return "running";
    case State::complete: return "complete";
    case State::inconclusive: return "inconclusive";
    case State::inconsistent: return "inconsistent";
    case State::unreproducible: return "unreproducible";
    case State::doubtful: return "doubtful";
    case State::cancelled: return "cancelled";
  }
  return "running";
}

pushgate::Result<State> parse_state(const std::string& s) {
  for (State v : {State::running, State::complete, State::inconclusive, State::inconsistent,
                   State::unreproducible, State::doubtful, State::cancelled}) {
    if (s == to_string(v)) return v;
  }
  return pushgate::Status::invalid_argument("unknown bisection status \"" + s + "\"",
                                            "one of running, complete, inconclusive, inconsistent, unreproducible, "
                                            "doubtful, cancelled");
}

bool finished(State s) { return s != State::running; }

namespace {

class Bits {
 public:
  explicit Bits(std::size_t n = 0) : w_((n + 63) / 64, 0) {}
  void set(std::size_t i) { w_[i / 64] |= std::uint64_t{1} << (i % 64); }
  bool test(std::size_t i) const { return (w_[i / 64] >> (i % 64)) & 1; }
  void unite(const Bits& o) {
    for (std::size_t i = 0; i < w_.size(); ++i) w_[i] |= o.w_[i];
  }
  void intersect(const Bits& o) {
    for (std::size_t i = 0; i < w_.size(); ++i) w_[i] &= o.w_[i];
  }
  void subtract(const Bits& o) {
    for (std::size_t i = 0; i < w_.size(); ++i) w_[i] &= ~o.w_[i];
  }
  std::size_t count() const {
    std::size_t c = 0;
    for (auto w : w_) c += static_cast<std::size_t>(__builtin_popcountll(w));
    return c;
  }
  std::size_t count_and(const Bits& o) const {
    std::size_t c = 0;
    for (std::size_t i = 0; i < w_.size(); ++i) c += static_cast<std::size_t>(__builtin_popcountll(w_[i] & o.w_[i]));
    return c;
  }

 private:
  std::vector<std::uint64_t> w_;
};

Decision end(State s, std::string why) {
  Decision d;
  d.status = s;
  d.why = std::move(why);
  return d;
}

Decision probe(int node, std::string why, std::optional<bool> expect_pass = std::nullopt) {
  Decision d;
  d.probe = node;
  d.expect_pass = expect_pass;
  d.why = std::move(why);
  return d;
}

std::string name(int i) { return "node " + std::to_string(i); }

}  // namespace

Decision decide(const Graph& g, const std::vector<Tally>& t, const Rules& rules) {
  const std::size_t n = g.nodes.size();
  if (n == 0 || g.basis < 0 || g.failure < 0 || t.size() != n) return end(State::doubtful, "no usable graph");
  if (n > rules.max_nodes) {
    return end(State::doubtful, "the range has " + std::to_string(n) + " revision tuples, more than the " +
                                     std::to_string(rules.max_nodes) + " a bisection searches");
  }
  const Tally& basis = t[static_cast<std::size_t>(g.basis)];
  const Tally& failure = t[static_cast<std::size_t>(g.failure)];
  if (basis.fail > 0) return end(State::unreproducible, "the basis failed when tested again: not a regression of this range");
  if (failure.pass > 0) return end(State::unreproducible, "the failure passed when tested again: it does not reproduce");
  for (std::size_t i = 0; i < n; ++i) {
    if (t[i].pass > 0 && t[i].fail > 0) {
      return end(State::inconsistent, name(static_cast<int>(i)) + " both passed and failed (" +
                                           std::to_string(t[i].pass) + " passes, " + std::to_string(t[i].fail) +
                                           " failures): the step is flaky there");
    }
  }

  // Ancestors-or-self of every node.
  std::vector<Bits> anc(n, Bits(n));
  for (std::size_t i = 0; i < n; ++i) {
    anc[i].set(i);
    for (int p : g.nodes[i].parents) anc[i].unite(anc[static_cast<std::size_t>(p)]);
  }
  // A failing node below a passing one breaks the assumption that a
  // regression, once in, stays in.
  Bits good(n), bad(n);
  bool any_bad = false;
  Bits in_bad(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (t[i].pass > 0 || g.nodes[i].boundary) good.unite(anc[i]);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (t[i].fail == 0) continue;
    if (good.test(i)) {
      return end(State::inconsistent, name(static_cast<int>(i)) + " failed, yet a node built on it passed");
    }
    if (!any_bad) {
      in_bad = anc[i];
      any_bad = true;
    } else {
      in_bad.intersect(anc[i]);
    }
  }

  auto starved = [&](const Tally& x) { return x.probes >= rules.flail_limit; };
  // Both ends, reproduced.
  if (failure.fail < rules.repeats) {
    if (starved(failure)) return end(State::doubtful, "flailing: the failure was probed " + std::to_string(failure.probes) + " times without a result");
    return probe(g.failure, "reproduce the failure", false);
  }
  if (basis.pass < rules.repeats) {
    if (starved(basis)) return end(State::doubtful, "flailing: the basis was probed " + std::to_string(basis.probes) + " times without a result");
    return probe(g.basis, "reproduce the basis", true);
  }

  Bits cand = in_bad;
  cand.subtract(good);
  std::size_t nc = cand.count();
  Decision d;
  for (std::size_t i = 0; i < n; ++i) {
    if (cand.test(i)) d.candidates.push_back(static_cast<int>(i));
  }
  if (nc == 0) return end(State::inconsistent, "no commit can explain the results");
  if (nc == 1) {
    int c = d.candidates[0];
    const Tally& ct = t[static_cast<std::size_t>(c)];
    // The passing parent to pair with: a tested one first, the first parent on ties.
    int parent = -1;
    for (int p : g.nodes[static_cast<std::size_t>(c)].parents) {
      if (t[static_cast<std::size_t>(p)].untestable > 0 && t[static_cast<std::size_t>(p)].pass == 0) continue;
      if (parent < 0 || t[static_cast<std::size_t>(p)].pass > t[static_cast<std::size_t>(parent)].pass) parent = p;
    }
    if (ct.untestable > 0 && ct.fail == 0) {
      d.status = State::inconclusive;
      d.why = "the only remaining candidate, " + name(c) + ", could not be tested";
      return d;
    }
    if (ct.fail < rules.repeats) {
      if (starved(ct)) return end(State::doubtful, "flailing: " + name(c) + " was probed " + std::to_string(ct.probes) + " times");
      Decision p = probe(c, ct.fail == 0 ? "test the last candidate" : "reproduce the first failure", false);
      p.candidates = d.candidates;
      return p;
    }
    if (parent < 0) {
      d.status = State::doubtful;
      d.why = "no usable pair: no parent of " + name(c) + " could be tested";
      return d;
    }
    const Tally& pt = t[static_cast<std::size_t>(parent)];
    if (pt.pass < rules.repeats) {
      if (starved(pt)) {
        d.status = State::doubtful;
        d.why = "no usable pair: " + name(parent) + " was probed " + std::to_string(pt.probes) + " times";
        return d;
      }
      Decision p = probe(parent, "reproduce the last pass", true);
      p.candidates = d.candidates;
      return p;
    }
    d.status = State::complete;
    d.culprit = c;
    d.not_present = parent;
    d.why = "first failure " + name(c) + ", last pass " + name(parent) + ", both reproduced";
    return d;
  }

  // Halve the candidates: the testable candidate whose ancestors among
  // the candidates come closest to half of them.
  int best = -1;
  std::size_t best_score = 0;
  std::size_t skipped = 0;
  for (int c : d.candidates) {
    const Tally& ct = t[static_cast<std::size_t>(c)];
    if (ct.untestable > 0 || ct.fail > 0 || starved(ct)) {
      ++skipped;
      continue;
    }
    std::size_t below = anc[static_cast<std::size_t>(c)].count_and(cand);
    std::size_t score = std::min(below, nc - below);
    if (score > best_score) {
      best_score = score;
      best = c;
    }
  }
  if (best < 0) {
    d.status = State::inconclusive;
    d.why = std::to_string(nc) + " candidates remain and " + std::to_string(skipped) +
            " of them could not be tested: no single commit";
    return d;
  }
  Decision p = probe(best, "search: " + std::to_string(nc) + " candidates, this splits them " +
                               std::to_string(best_score) + "/" + std::to_string(nc - best_score));
  p.candidates = d.candidates;
  return p;
}

std::vector<int> plan(const Graph& g, const std::vector<Tally>& t, int k, const Rules& rules) {
  std::vector<int> out;
  std::deque<std::vector<Tally>> hypotheses{t};
  // Each hypothesis adds one result; a bound on how many are explored keeps
  // a plan cheap whatever k is.
  int explored = 0;
  while (!hypotheses.empty() && static_cast<int>(out.size()) < k && explored < 4 * k + 4) {
    std::vector<Tally> cur = std::move(hypotheses.front());
    hypotheses.pop_front();
    ++explored;
    Decision d = decide(g, cur, rules);
    if (d.status != State::running) continue;
    if (std::find(out.begin(), out.end(), d.probe) == out.end()) out.push_back(d.probe);
    auto with = [&](bool pass) {
      std::vector<Tally> next = cur;
      Tally& x = next[static_cast<std::size_t>(d.probe)];
      ++x.probes;
      (pass ? x.pass : x.fail) += 1;
      return next;
    };
    if (d.expect_pass) {
      hypotheses.push_back(with(*d.expect_pass));
    } else {
      hypotheses.push_back(with(true));
      hypotheses.push_back(with(false));
    }
  }
  return out;
}

}  // namespace pushgate::bisect
