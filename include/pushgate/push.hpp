#pragma once
/// The push gate (SPEC section 6): only a tolerable, non-baseline real
/// flight of a push-enabled, unblocked branch fast-forwards the tested ref.
/// The intent is stored before the push and the outcome after, so a restart
/// in between neither loses nor repeats a push.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <pushgate/config.hpp>
#include <pushgate/revisions.hpp>
#include <pushgate/store.hpp>
#include <pushgate/verdict.hpp>

namespace pushgate::push {

struct Decision {
  bool push = false;
  std::string reason;  ///< why (not)
};

/// Whether a finished flight may push. Pure.
Decision decide(const config::Branch& branch, const std::string& blessing, const verdict::Verdict& verdict,
                bool baseline_flight, const std::optional<std::string>& blocked);

struct PushResult {
  std::string state;  ///< done, refused, failed; intent when the outcome is unknown (reconciled later)
  std::string message;
  std::int64_t intent_id = 0;
  std::vector<std::string> warnings;  ///< e.g. a stale ref lock removed at the target
  bool confirmed_by_reading = false;  ///< the attempt errored, yet the ref was found at the new value
  bool pushed() const { return state == "done"; }
};

/// Push `to` onto the branch's tested ref, which must still be `from`
/// (compare-and-swap on the remote) and an ancestor of `to`.
Result<PushResult> push_branch(const config::Config& config, store::Store& store, revisions::Mirrors& mirrors,
                               const std::string& branch, std::optional<FlightId> flight, const std::string& from,
                               const std::string& to, const std::string& who);

/// True while the process that recorded a pending intent still runs it.
using OwnerAlive = std::function<bool(const store::Store::Push&)>;

/// Finish every pending intent whose owner is gone: remote already at the
/// new value -> done; still at the old value -> pushed now, unless the
/// branch is blocked or its push disabled meanwhile (refused, with the
/// reason); elsewhere -> refused. An unreachable remote leaves the intent
/// pending; so does a live owner.
Result<std::vector<store::Store::Push>> reconcile(const config::Config& config, store::Store& store,
                                                  revisions::Mirrors& mirrors,
                                                  const std::function<void(const std::string&)>& progress = {},
                                                  const OwnerAlive& owner_alive = {});

/// Everything decided at the end of a flight.
struct Gate {
  verdict::FlightData flight;
  verdict::Evidence evidence;
  verdict::Verdict verdict;
  Decision decision;
  std::optional<PushResult> push;
  std::string tree;                 ///< the tree under test
  std::string basis;                ///< the tested ref when the flight was made
  std::string tested;               ///< the revision of the tree under test it tested
  bool baseline_flight = false;
  std::optional<FlightId> retest_flight;  ///< the real-retest flight run before this verdict
};

/// Runs the real-retest flight of a flight's regressed jobs (flight::retest
/// with the caller's hosts and options); returns the retest flight.
using Retester = std::function<Result<FlightId>(FlightId original, const std::vector<std::string>& jobs)>;

/// Verdict, then (when allowed) the push, then the outcome stored on the
/// flight. With `retest` (and daemon.retest_regressions), a real flight with
/// regressions first has its regressed non-build jobs rerun on the same
/// revisions and is judged again: passes there make heisenbugs. Safe to call
/// again after a crash: the retest flight is made once, a flight that already
/// pushed does not push twice, and a flight without an outcome is resumed.
Result<Gate> finish_flight(const config::Config& config, store::Store& store, revisions::Mirrors& mirrors,
                           FlightId flight, const std::string& who = "pushgate", const Retester& retest = {});

/// The report of a judged flight (after finish_flight, or a stored Gate).
Result<verdict::Report> report(const config::Config& config, const store::Store& store, revisions::Mirrors& mirrors,
                               const Gate& gate);

/// The report every reader sees (CLI, API, pages): a finished flight's
/// stored verdict, never judged again; a running or queued flight's
/// progress (Report::judged false). A flight that finished before verdicts
/// were stored is judged when viewed, and the report says so.
Result<verdict::Report> flight_report(const config::Config& config, const store::Store& store,
                                      revisions::Mirrors& mirrors, FlightId flight);

/// Judge a flight now from the store (SPEC section 5), with the push
/// decision, without pushing or storing anything.
Result<Gate> judge(const config::Config& config, const store::Store& store, FlightId flight);

/// The stored verdict of a flight, if it has one (the newest).
Result<std::optional<Gate>> stored_gate(const config::Config& config, const store::Store& store, FlightId flight);

/// `pushgate flight rejudge`: judge a finished flight again and store the new
/// verdict beside the old one, with who and why (the only way a verdict
/// changes). Never pushes. Returns the new gate.
Result<Gate> rejudge(const config::Config& config, store::Store& store, FlightId flight, const std::string& who,
                     const std::string& reason);

/// Where a branch stands: its tested revision as the mirror has it, last
/// flight, streak of (not) tolerable real flights, block and last push.
struct BranchStatus {
  std::string branch, tree, tested_ref;
  std::string tested_revision, tested_describe;  ///< empty: no tested ref in the mirror yet
  std::optional<std::int64_t> tested_commit_time;
  std::optional<store::Flight> last_flight;
  std::optional<store::Flight> last_tolerable;  ///< the newest real flight judged perfect or tolerable
  std::string streak_kind;  ///< "tolerable", "not tolerable" or "" when no finished real flight
  int streak = 0;
  std::optional<std::string> blocked;  ///< the reason, when blocked
  bool push_enabled = true;
  std::optional<store::Store::Push> last_push;
  int push_failures = 0;  ///< failed or refused pushes in a row since the last done one
};
Result<BranchStatus> branch_status(const config::Config& config, const store::Store& store,
                                   revisions::Mirrors& mirrors, const config::Branch& branch);

}  // namespace pushgate::push
