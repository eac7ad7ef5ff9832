#pragma once
/// Bisection (SPEC section 7): which commit made a regression, found by
/// probe flights over a graph of revision tuples.
///
/// Two layers. The search works on a Graph alone (no git, no store): given
/// what is known about each node, decide() says which node to test next or
/// how the bisection ends; bench/bisect_bench drives it directly. The
/// bisection layer builds the graph from the mirrors, reads every result of
/// the job and testid on each node from the store, makes `real-bisect`
/// probe flights and records its state (a row in `bisections`), so that it
/// resumes after a restart without repeating a probe.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <pushgate/config.hpp>
#include <pushgate/hosts.hpp>
#include <pushgate/ids.hpp>
#include <pushgate/revisions.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>

namespace pushgate::bisect {

// ---------------------------------------------------------------- search

/// Revision tuples as a DAG, parents before children (topological order).
/// Each edge changes one tree. `basis` passed, `failure` failed; every
/// other node is an ancestor of the failure that is not an ancestor of the
/// basis (`git rev-list failure ^basis`), except boundary nodes: parents of
/// those that are ancestors of the basis, so known to pass; they are there
/// to be the "last pass" of a culprit whose parent lies outside the range.
struct Graph {
  struct Node {
    std::vector<int> parents;  ///< indices of earlier nodes
    bool boundary = false;
  };
  std::vector<Node> nodes;
  int basis = -1;
  int failure = -1;
};

/// What is known about one node for one (job, testid).
struct Tally {
  int pass = 0;
  int fail = 0;
  int untestable = 0;  ///< the job could not run the step there (a build failed, the step was not reached)
  int probes = 0;      ///< probe flights this bisection made on the node (flail guard)
};

enum class State { running, complete, inconclusive, inconsistent, unreproducible, doubtful, cancelled };
const char* to_string(State s);
pushgate::Result<State> parse_state(const std::string& s);
bool finished(State s);

struct Rules {
  int repeats = 2;      ///< results each end and the final pair need (SPEC section 7: reproduced)
  int flail_limit = 3;  ///< probe flights on one node before the bisection gives up
  std::size_t max_nodes = 16384;
};

struct Decision {
  State status = State::running;
  int probe = -1;           ///< running: the node to test next
  /// running: the result a reproduction probe needs (true: pass); empty for
  /// a search probe, where either result teaches something.
  std::optional<bool> expect_pass;
  std::string why;          ///< running: why that node; otherwise why it ended
  int culprit = -1;         ///< complete: the first failing node
  int not_present = -1;     ///< complete: the passing parent it is paired with
  std::vector<int> candidates;  ///< nodes that may still be the culprit
};

/// SPEC section 7, in order: an end that gave the other result ->
/// unreproducible; pass and fail on one node, or a failing ancestor of a
/// passing node -> inconsistent; an end with fewer than `repeats` results
/// -> probe it; candidates = ancestors of every failing node that are not
/// ancestors of a passing one; one candidate -> the final pair (it and its
/// passing parent, `repeats` results each) -> complete; several -> the
/// testable candidate whose ancestors split the candidates most evenly;
/// none that splits -> inconclusive. A node probed `flail_limit` times
/// without the result it needs -> doubtful.
Decision decide(const Graph& graph, const std::vector<Tally>& tallies, const Rules& rules = {});

/// Up to `k` distinct nodes worth testing at once: decide()'s probe, then
/// the probes decide() would pick next under each result it may give (a
/// reproduction: the result it needs; a search probe: both), breadth
/// first. With equivalent hosts the probes run in parallel: fewer rounds
/// of waiting, at the cost of some flights whose answer is not needed.
std::vector<int> plan(const Graph& graph, const std::vector<Tally>& tallies, int k, const Rules& rules = {});

// ------------------------------------------------------------ bisection

/// One (job, testid) regression being bisected.
struct Target {
  std::string job;
  std::string testid;
  State status = State::running;
  std::string reason;
  std::optional<int> culprit, not_present;  ///< node indices
};

struct Node {
  std::map<std::string, std::string> revisions;  ///< tree -> commit (every tree of the job)
  std::string changed_tree;                      ///< the tree this node's edge from its parent changed
  std::string commit;                            ///< = revisions[changed_tree]
  std::vector<int> parents;
  bool boundary = false;
  /// per target index: pass/fail/untestable counts and the flights seen
  std::vector<Tally> tallies;
  std::vector<FlightId> flights;
};

struct Commit {
  std::string tree, id;
  std::string author;     ///< "Name <email>"; empty when only the id is known (the basis)
  std::int64_t time = 0;  ///< author time, seconds since the epoch
  std::string subject, message;
};
/// {tree, commit} and, when known, author, date, subject, message
/// (schemas/api/bisection.schema.json, "culprit").
nlohmann::json to_json(const Commit& c);

/// A bisection id in a URL or argument: decimal digits only.
std::optional<std::int64_t> parse_id(const std::string& text);

/// Everything `bisect show` and the API report.
struct Bisection {
  std::int64_t id = 0;
  std::string branch;
  FlightId flight;        ///< the failing flight
  FlightId basis_flight;  ///< its baseline: the last pass
  std::string who;
  State status = State::running;
  std::string reason;
  std::int64_t created = 0;
  std::optional<std::int64_t> finished;
  std::vector<Target> targets;
  std::vector<std::string> trees;  ///< the trees that changed, in graph order
  std::vector<Node> nodes;
  std::vector<FlightId> flights;   ///< probe flights, in order
  std::map<std::string, std::map<std::string, std::string>> pins;  ///< job -> role -> host
  std::optional<Commit> culprit, not_present;  ///< of the first complete target
  bool interrupted = false;  ///< advance(): its probe flight was stopped before its end
};

/// The regressions of a judged flight (stored verdict, after its retest)
/// grouped by range: one bisection per basis flight, carrying every
/// regressed (job, testid) against it. Never `broken` items, heisenbugs or
/// allow-listed ones.
struct Regression {
  FlightId basis;
  std::vector<std::pair<std::string, std::string>> targets;  ///< (job, testid)
};
Result<std::vector<Regression>> regressions_of(const config::Config& config, const store::Store& store, FlightId flight);

struct StartOptions {
  std::string who = "pushgate";
  std::optional<FlightId> basis;  ///< default: from the stored verdict
  bool same_hosts = true;         ///< false: equivalent hosts (config bisect.same_hosts)
};

/// Start a bisection of `targets` of failing `flight` against `options.basis`
/// (or the verdict's baseline). conflict when a running bisection of that
/// flight covers one of the targets already.
Result<std::int64_t> start(const config::Config& config, store::Store& store, FlightId flight,
                           const std::vector<std::pair<std::string, std::string>>& targets,
                           const StartOptions& options = {});

/// The daemon's trigger (SPEC section 7): a bisection for every regression
/// range of a judged flight that has none yet. Returns the ids started.
Result<std::vector<std::int64_t>> start_for_flight(const config::Config& config, store::Store& store, FlightId flight,
                                                   const StartOptions& options = {});

/// A bisection as last stored (its row, nodes and probes; no git work).
Result<Bisection> load(const config::Config& config, const store::Store& store, std::int64_t id);

struct AdvanceOptions {
  std::function<void(const std::string&)> progress;
  hosts::Cancellation* cancel = nullptr;
  int poll_ms = 100;
  bool handle_signals = false;  ///< SIGINT/SIGTERM stop the probe flight (it resumes later)
  /// Probe flights at once when the bisection runs on equivalent hosts
  /// (plan()); a bisection pinned to the failure's hosts runs one.
  int parallel = 1;
  Rules rules;
};

/// One step: decide; either record the end, or run the next probe flight
/// (an unfinished probe flight of this bisection is resumed, never made
/// again). Returns the bisection as it stands after the step.
Result<Bisection> advance(const config::Config& config, store::Store& store, revisions::Mirrors& mirrors,
                          hosts::Registry& hosts, std::int64_t id, const AdvanceOptions& options = {});

/// advance() until the bisection ends or is cancelled/drained.
Result<Bisection> run(const config::Config& config, store::Store& store, revisions::Mirrors& mirrors,
                      hosts::Registry& hosts, std::int64_t id, const AdvanceOptions& options = {});

Result<void> cancel(store::Store& store, std::int64_t id, const std::string& who);

/// The bisection as JSON (schemas/api/bisection.schema.json).
nlohmann::json to_json(const Bisection& b);
/// The revision graph in Graphviz `dot` language: node colour = result,
/// culprit marked, nodes linked to `flight_url` + flight id.
std::string to_dot(const Bisection& b, const std::string& flight_url = "/flights/");
/// to_dot rendered by Graphviz (`dot -Tsvg`); unavailable when dot is missing.
Result<std::string> to_svg(const Bisection& b, const std::string& flight_url = "/flights/");
/// The text report (`bisect show`).
std::string report(const Bisection& b);

}  // namespace pushgate::bisect
