#pragma once
/// The embedded SQLite store: every flight, job, step, runvar, host use,
/// frozen-ref change and push. All SQL lives behind this header.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pushgate/ids.hpp>
#include <pushgate/status.hpp>

namespace pushgate::store {

struct StoreOptions {
  std::string path;               ///< database file; its directory must exist
  bool create_if_missing = true;  ///< false: not_found when the file is absent
  /// How long a write waits for another connection's lock, with backoff
  /// (SPEC section 9: a busy database is waited for, never a reason to
  /// abandon a flight). The API server uses a shorter wait and answers 503.
  int busy_timeout_ms = 600000;
  /// Push intents and outcomes, verdicts and frozen-ref audit rows are always
  /// committed with synchronous = FULL (on disk when the call returns; WAL
  /// with NORMAL can lose the last commits on power loss). true: every other
  /// commit too. bench/store_sync_bench measures both (FULL throughout costs
  /// about 7x per commit).
  bool synchronous_full = false;
};

/// Seconds since the epoch, UTC.
std::int64_t now();

struct Flight {
  FlightId id;
  std::string branch;
  std::string blessing;  ///< real, real-retest, real-bisect, adhoc, play
  std::string intended;
  std::int64_t created = 0;
  std::optional<std::int64_t> started, finished;
  std::string outcome;  ///< empty until decided
  /// Why it ran (SPEC section 8): cron, poll, webhook, manual, retest,
  /// bisection, baseline; '' for flights older than the record.
  std::string trigger_kind;
  std::string trigger_detail;  ///< the cron expression, tree, user, flight or bisection
};

struct Job {
  FlightId flight;
  std::string job;
  std::string recipe;
  std::string status = "queued";
  std::string status_reason;
};

struct Step {
  FlightId flight;
  std::string job;
  int stepno = 0;
  std::string testid;
  std::string status;
  std::optional<std::int64_t> started, finished;
  std::string log_path;
};

struct Runvar {
  std::string job;
  std::string name;
  std::string value;
  bool synth = false;
};

/// A new flight with its jobs and their input runvars, written in one transaction.
struct NewFlight {
  std::string branch;
  std::string blessing = "real";
  std::string intended = "real";
  std::string trigger_kind, trigger_detail;  ///< see Flight
  std::vector<Job> jobs;         ///< flight field ignored
  std::vector<Runvar> runvars;   ///< job names must be among `jobs`
};

struct Host {
  std::string host;
  std::string kind;
  std::string state = "enabled";
  std::string state_reason;
  int consecutive_broken = 0;
  std::optional<FlightId> held_flight;
  std::string held_job;
  std::vector<std::string> flags;
};

struct FrozenChange {
  std::int64_t id = 0;
  std::string tree, branch, ref;
  std::string action;  ///< add, move, force-move, remove
  std::string old_rev, new_rev, describe;
  std::string who, reason;
  std::int64_t at = 0;
  /// intent (recorded before the push upstream; outcome not known yet),
  /// done, failed (nothing changed upstream), refused (upstream moved
  /// elsewhere meanwhile; nothing changed by us).
  std::string state = "done";
  std::string note;  ///< how the outcome was learnt, or why it failed
};

struct FlightFilter {
  std::string branch;                 ///< empty: all
  std::vector<std::string> blessings; ///< empty: all
  std::string outcome;                ///< empty: all
  int limit = 50;
  std::optional<std::int64_t> before;  ///< flight number, for paging
};

class Store {
 public:
  /// Open (creating if allowed) and migrate to the latest schema in one
  /// transaction. A database newer than this binary is refused.
  static Result<std::unique_ptr<Store>> open(const StoreOptions& options);
  /// Schema version this binary writes.
  static int latest_schema_version();

  virtual ~Store() = default;
  virtual int schema_version() const = 0;
  /// The SQL of the statements this connection keeps prepared (each is
  /// compiled once per connection): for diagnostics, and for the test that
  /// checks the query plan of everything a request ran.
  virtual std::vector<std::string> prepared_statements() const = 0;
  virtual const std::string& path() const = 0;

  // Flights, jobs, steps, runvars.
  virtual Result<FlightId> create_flight(const NewFlight& flight) = 0;
  virtual Result<Flight> get_flight(FlightId id) const = 0;
  virtual Result<std::vector<Flight>> list_flights(const FlightFilter& filter) const = 0;
  virtual Result<void> set_flight_times(FlightId id, std::optional<std::int64_t> started,
                                        std::optional<std::int64_t> finished) = 0;
  virtual Result<void> set_flight_outcome(FlightId id, const std::string& outcome) = 0;
  virtual Result<std::vector<Job>> list_jobs(FlightId id) const = 0;
  virtual Result<void> set_job_status(FlightId id, const std::string& job, const std::string& status,
                                      const std::string& reason) = 0;
  virtual Result<std::vector<Step>> list_steps(FlightId id) const = 0;
  /// Insert or replace one step row.
  virtual Result<void> put_step(const Step& step) = 0;
  /// Step results of job attempts interrupted by a daemon restart (the
  /// re-queued job's steps run again; these keep what the first run saw).
  struct StepAttempt {
    int attempt = 1;
    Step step;
  };
  virtual Result<std::vector<StepAttempt>> list_step_attempts(FlightId id) const = 0;
  /// The output runvars (synth) an interrupted attempt had written; the
  /// re-queued job starts again from its inputs.
  struct RunvarAttempt {
    int attempt = 1;
    Runvar var;
  };
  virtual Result<std::vector<RunvarAttempt>> list_runvar_attempts(FlightId id) const = 0;
  /// All runvars of a flight; `job` empty: every job.
  virtual Result<std::vector<Runvar>> list_runvars(FlightId id, const std::string& job = {}) const = 0;
  virtual Result<void> set_runvar(FlightId id, const Runvar& var) = 0;

  /// True when a finished flight of `branch` with a real blessing (real,
  /// real-retest, real-bisect) tested `revision` of `tree` (runvar
  /// revision_<tree>); one that never finished tested nothing.
  virtual Result<bool> revision_tested(const std::string& branch, const std::string& tree,
                                       const std::string& revision) const = 0;
  /// The revision of `tree` used by the newest real flight of `branch`
  /// whose outcome is perfect or tolerable; nullopt when there is none.
  virtual Result<std::optional<std::pair<FlightId, std::string>>> last_tolerable_revision(
      const std::string& branch, const std::string& tree) const = 0;

  /// Flights of `branch` with a real blessing (real, real-retest,
  /// real-bisect) having runvar `name` = `value` on some job (index-backed).
  virtual Result<std::vector<FlightId>> flights_with_runvar(const std::string& branch, const std::string& name,
                                                            const std::string& value) const = 0;
  /// Flights that ran a commit: runvars named one of `names` (revision_T,
  /// built_revision_T) whose value starts with `prefix` (lower-case hex),
  /// newest first, at most `limit`; each with the runvar that matched
  /// (index range scans on runvars(name, value)).
  struct RevisionHit {
    FlightId flight;
    std::string job, name, value;
  };
  virtual Result<std::vector<RevisionHit>> flights_with_revision(const std::vector<std::string>& names,
                                                                 const std::string& prefix, int limit) const = 0;
  /// The oldest finished flight of `branch` with a real blessing in which
  /// step `testid` of `job` passed (index-backed); nullopt when none did.
  virtual Result<std::optional<FlightId>> first_pass(const std::string& branch, const std::string& job,
                                                     const std::string& testid) const = 0;

  // The notification outbox (issue 15): reports waiting to be sent.
  struct Notification {
    std::int64_t id = 0;
    std::string event;       ///< flight or bisection
    std::int64_t subject_id = 0;
    std::string channel;     ///< mail, webhook, command
    std::string target;      ///< recipients (comma-separated), URL, command line
    std::string title;       ///< mail subject
    std::string headers = "[]";  ///< JSON array of [name, value]: extra mail headers, in order
    std::string body;
    std::string state = "pending";  ///< pending, sent, failed (given up)
    int attempts = 0;
    std::int64_t next_at = 0, created = 0;
    std::optional<std::int64_t> sent_at;
    std::string last_error;
  };

  // Verdicts (SPEC section 5): given once when a flight finishes, kept.
  struct StoredVerdict {
    std::int64_t id = 0;
    FlightId flight;
    std::int64_t judged = 0;
    std::string who, reason;
    std::string outcome;  ///< perfect, tolerable, regressions, problems
    std::string body;     ///< JSON written by push::
    /// Queued with the verdict (enqueue_notifications' rules), in its
    /// transaction: a judged flight's report is queued exactly once.
    std::vector<Notification> notifications;
  };
  /// Store a verdict, set the flight's outcome to it and queue its
  /// notifications, in one transaction.
  virtual Result<std::int64_t> record_verdict(const StoredVerdict& verdict) = 0;
  /// Every verdict of a flight, oldest first (the last one is current).
  virtual Result<std::vector<StoredVerdict>> verdicts(FlightId flight) const = 0;

  // Pushes (SPEC section 6).
  struct Push {
    std::int64_t id = 0;
    std::optional<FlightId> flight;
    std::string branch, url, ref, old_rev, new_rev;
    std::string state;  ///< intent, done, refused, failed
    std::string message, who;
    std::int64_t created = 0;
    std::optional<std::int64_t> finished;
  };
  /// Record the intent before pushing; returns its id.
  virtual Result<std::int64_t> record_push_intent(const Push& push) = 0;
  /// Record the outcome (done, refused, failed) of an intent.
  virtual Result<void> finish_push(std::int64_t id, const std::string& state, const std::string& message) = 0;
  virtual Result<std::vector<Push>> pending_pushes() const = 0;
  /// Newest first; empty branch: all.
  virtual Result<std::vector<Push>> pushes(const std::string& branch, int limit) const = 0;
  /// branch -> failed or refused pushes since its last done one (branches
  /// whose last push was done are absent).
  virtual Result<std::map<std::string, int>> consecutive_push_failures() const = 0;
  /// The push a flight made (its newest), if any.
  virtual Result<std::optional<Push>> push_of_flight(FlightId id) const = 0;

  // Operator controls per branch.
  struct BranchAudit {
    std::int64_t id = 0;
    std::string branch, action, detail, who, reason;
    std::int64_t at = 0;
  };
  virtual Result<void> set_branch_blocked(const std::string& branch, bool blocked, const std::string& who,
                                          const std::string& reason) = 0;
  /// nullopt: not blocked; else the reason.
  virtual Result<std::optional<std::string>> branch_blocked(const std::string& branch) const = 0;
  virtual Result<void> record_branch_audit(const BranchAudit& entry) = 0;
  virtual Result<std::vector<BranchAudit>> branch_audit(const std::string& branch, int limit) const = 0;

  // Hosts.
  /// Make the hosts table match the configured hosts: insert new ones,
  /// update kind and flags, keep state; hosts no longer configured are disabled.
  virtual Result<void> sync_hosts(const std::vector<Host>& configured) = 0;
  virtual Result<std::vector<Host>> list_hosts() const = 0;
  virtual Result<void> set_host_state(const std::string& host, const std::string& state,
                                      const std::string& reason) = 0;

  /// Take `host` for one job if it is enabled and free. Atomic in the
  /// database: of two processes racing, exactly one gets true.
  virtual Result<bool> try_allocate_host(const std::string& host, FlightId flight, const std::string& job,
                                         const std::string& role) = 0;
  /// Jobs waiting for hosts (see scheduler::try_allocate).
  struct Waiter {
    FlightId flight;
    std::string job;
    int priority = 0;
    bool build = false;
    std::string roles;  ///< "role=flag,flag;role=flag"
    /// Expected seconds from this job's start to its flight's end
    /// (scheduler::remaining_paths): the longer path ranks first.
    std::int64_t remaining = 0;
    std::int64_t since = 0;  ///< when it started waiting (read back; set_waiting records now)
  };
  virtual Result<void> set_waiting(const Waiter& waiter) = 0;
  virtual Result<void> clear_waiting(FlightId flight, const std::string& job) = 0;
  virtual Result<std::vector<Waiter>> waiters() const = 0;
  /// Give back every host held by this job.
  virtual Result<void> release_hosts(FlightId flight, const std::string& job) = 0;
  /// Record a job's end on a host: broken adds to the host's streak and
  /// quarantines it at `quarantine_after`; pass/fail resets the streak.
  /// Returns true when this call quarantined the host.
  virtual Result<bool> record_host_result(const std::string& host, const std::string& job_status,
                                          int quarantine_after) = 0;
  /// The last `limit` events of one host (allocate, release, quarantine...), newest first.
  struct HostEvent {
    std::int64_t id = 0;
    std::string host;
    std::optional<FlightId> flight;
    std::string job, role, event, detail;
    std::int64_t at = 0;
  };
  virtual Result<std::vector<HostEvent>> host_history(const std::string& host, int limit) const = 0;

  /// One run of a job in a branch's history.
  struct JobRun {
    FlightId flight;
    std::int64_t created = 0;
    std::string job_status;
    std::string step_status;  ///< of the asked step; empty without one
    std::map<std::string, std::string> runvars;  ///< host, revision_*, built_revision_*
  };
  /// The last `limit` flights of `branch` that ran `job` (with `testid`:
  /// that ran that step of it), newest first. A few indexed queries, the
  /// same cost whatever the history's size.
  virtual Result<std::vector<JobRun>> job_history(const std::string& branch, const std::string& job,
                                                  const std::string& testid, int limit) const = 0;
  /// How long `job` took in its last `limit` runs that ran steps and ended
  /// pass or fail (first step's start to last step's end, seconds), newest
  /// first: the duration history behind critical-path-first allocation.
  virtual Result<std::vector<std::int64_t>> job_durations(const std::string& job, int limit) const = 0;
  /// A passing job named `job` of an earlier flight whose runvar
  /// `build_inputs` equals `inputs`, newest first, with its synth runvars.
  virtual Result<std::vector<std::pair<FlightId, std::vector<Runvar>>>> find_builds(
      const std::string& job, const std::string& inputs, FlightId before) const = 0;

  /// After a daemon restart, in one transaction: running steps become
  /// broken; running/preparing jobs are re-queued once (their step results
  /// move to step_attempts; a second interruption makes them broken); every
  /// held host is released. Flights for which `in_use` says true (another
  /// live process runs them) are left as they are.
  struct Recovery {
    std::vector<Step> interrupted_steps;
    std::vector<std::pair<FlightId, std::string>> requeued, given_up;
    /// Flights without an outcome, oldest first: queued jobs to run, or
    /// every job done but the verdict and push not yet recorded.
    std::vector<FlightId> unfinished;
    std::vector<FlightId> in_use;  ///< left alone: another process runs them
  };
  /// A job cut short by a drain goes back to the queue, not to the verdict:
  /// its steps and output runvars move to the attempt tables (as recovery
  /// does), status queued with `reason`. Not counted as a restart.
  virtual Result<void> requeue_job(FlightId flight, const std::string& job, const std::string& reason) = 0;
  virtual Result<Recovery> recover_after_restart(const std::string& reason,
                                                 const std::function<bool(FlightId)>& in_use = {}) = 0;

  /// Counts for /metrics.
  struct Counts {
    /// Counters (never fall): flights judged by outcome, jobs ended by
    /// status, pushes ended by state.
    std::map<std::string, std::int64_t> flights_by_outcome, jobs_ended_by_status, pushes_by_state;
    /// Gauges, zeros included: jobs queued/preparing/running, hosts by state.
    std::map<std::string, std::int64_t> jobs_by_status, hosts_by_state;
    std::int64_t flights_unfinished = 0;
    std::vector<std::pair<double, std::int64_t>> step_seconds_buckets;  ///< (le, cumulative count); +Inf last
    std::int64_t step_seconds_count = 0, step_seconds_sum = 0;
  };
  virtual Result<Counts> counts() const = 0;

  // Frozen-ref audit. A change is recorded as an intent before it is
  // pushed upstream and finished after; both are durable.
  /// Inserts `change` as it is (state included); returns its id.
  virtual Result<std::int64_t> record_frozen_change(const FrozenChange& change) = 0;
  /// The outcome of an intent: state done, failed or refused. not_found
  /// when `id` is not a pending intent (it was finished already).
  virtual Result<void> finish_frozen_change(std::int64_t id, const std::string& state, const std::string& note) = 0;
  /// Intents not finished yet, oldest first.
  virtual Result<std::vector<FrozenChange>> pending_frozen_changes() const = 0;
  /// Newest first, every state; empty tree/branch: all.
  virtual Result<std::vector<FrozenChange>> frozen_history(const std::string& tree, const std::string& branch,
                                                           int limit) const = 0;

  // Bisections (SPEC section 7). A bisection is a row, its nodes (the
  // revision graph as last computed, with each node's results) and its
  // probes (each probe flight, made in the same transaction as its row, so
  // a crash can never leave a probe flight the bisection does not know).
  struct BisectionRow {
    std::int64_t id = 0;
    std::string branch;
    FlightId flight;        ///< the failing flight
    FlightId basis_flight;  ///< the last pass it is bisected against
    std::string who;
    std::string targets;    ///< JSON [[job, testid], ...]
    std::string pins;       ///< JSON {job: {role: host}}; {} for equivalent hosts
    std::string status = "running";
    std::string reason;
    std::string state;      ///< JSON: trees, per-target outcome, culprit (bisect::to_json)
    std::int64_t created = 0;
    std::optional<std::int64_t> finished;
  };
  struct BisectionNode {
    int node = 0;
    std::string revisions;  ///< JSON {tree: commit}
    std::string changed_tree, commit;
    std::string parents;    ///< JSON [node, ...]
    bool boundary = false;
    std::string results;    ///< JSON per target [{pass, fail, untestable, probes}]
    std::string flights;    ///< JSON [flight, ...]
  };
  struct BisectionProbe {
    int seq = 0;
    FlightId flight;
    std::string node;  ///< the node's revisions, as BisectionNode::revisions
    std::string why;
  };
  struct BisectionFilter {
    std::string status;  ///< empty: any
    std::string branch;  ///< empty: any
    int limit = 100;
  };
  /// `row.id`, `created` and `finished` are ignored; returns the new id.
  virtual Result<std::int64_t> create_bisection(const BisectionRow& row) = 0;
  virtual Result<BisectionRow> get_bisection(std::int64_t id) const = 0;
  /// Newest first.
  virtual Result<std::vector<BisectionRow>> list_bisections(const BisectionFilter& filter) const = 0;
  /// Bisections of one failing flight, any status.
  virtual Result<std::vector<BisectionRow>> bisections_of_flight(FlightId flight) const = 0;
  /// Status, reason, state and the node list at once; `finished` is set
  /// when status is not running. not_found for an unknown id.
  virtual Result<void> update_bisection(std::int64_t id, const std::string& status, const std::string& reason,
                                        const std::string& state, const std::vector<BisectionNode>& nodes) = 0;
  virtual Result<std::vector<BisectionNode>> bisection_nodes(std::int64_t id) const = 0;
  /// The probe flight and its probe row, in one transaction.
  virtual Result<FlightId> create_probe_flight(std::int64_t bisection, const NewFlight& flight, const std::string& node,
                                               const std::string& why) = 0;
  /// In order.
  virtual Result<std::vector<BisectionProbe>> bisection_probes(std::int64_t id) const = 0;
  /// Finished flights of any branch with a real blessing in which `job`
  /// has runvar `name` = `value` (index-backed), newest first.
  virtual Result<std::vector<FlightId>> finished_flights_with_job_runvar(const std::string& job, const std::string& name,
                                                                        const std::string& value) const = 0;

  /// Queue each notification unless one for the same (event, subject_id,
  /// channel, target) exists: queuing twice never sends twice. Returns how
  /// many were new.
  virtual Result<int> enqueue_notifications(const std::vector<Notification>& notifications) = 0;
  /// Pending notifications due at `now`, oldest first.
  virtual Result<std::vector<Notification>> due_notifications(std::int64_t now, int limit) const = 0;
  /// Take a pending notification for one attempt, until `until`: false when
  /// another process took it first (its next_at or attempts moved), so two
  /// deliverers (the daemon, `flight run`) never send one twice at once.
  virtual Result<bool> claim_notification(const Notification& n, std::int64_t until) = 0;
  /// Record one delivery attempt: sent, or pending again at `next_at`, or failed.
  virtual Result<void> finish_notification(std::int64_t id, const std::string& state, const std::string& error,
                                           std::int64_t next_at) = 0;
  virtual Result<std::vector<Notification>> notifications_of(const std::string& event, std::int64_t subject_id) const = 0;

  // ABI records (issue 18, SPEC section 10): JSON a step wrote, kept as a
  // file under the state directory and described here.
  struct Artifact {
    FlightId flight;
    std::string job;
    int stepno = 0;
    std::string key;     ///< "machine/pc-i440fx-7.2", "alias/pc"
    std::string digest;  ///< git blob id of the canonical JSON
    std::string path;    ///< the file
    std::int64_t created = 0;
  };
  /// Insert or replace the record of (flight, job, key).
  virtual Result<void> put_artifact(const Artifact& artifact) = 0;
  /// A flight's records (one job's, when given), by job then key.
  virtual Result<std::vector<Artifact>> list_artifacts(FlightId flight, const std::string& job = {}) const = 0;
  /// The newest records of `key` for `job` in finished flights of `branch`, newest first.
  virtual Result<std::vector<Artifact>> artifact_history(const std::string& branch, const std::string& job,
                                                         const std::string& key, int limit) const = 0;
  struct AbiAcceptance {
    std::int64_t id = 0;
    std::string branch, key, job;
    FlightId flight;      ///< whose record was accepted
    std::string digest;
    std::optional<FlightId> old_flight;  ///< the reference it replaced
    std::string old_digest;
    std::string who, reason;
    std::int64_t at = 0;
  };
  /// Record acceptances (one per job), in one transaction; `id` and `at` are set here.
  virtual Result<void> accept_abi(const std::vector<AbiAcceptance>& acceptances) = 0;
  /// Every acceptance of the branch (of one key, when given), oldest first.
  virtual Result<std::vector<AbiAcceptance>> abi_acceptances(const std::string& branch,
                                                             const std::string& key = {}) const = 0;

 protected:
  Store() = default;
};

/// The real-retest flight made for `original` of `branch` (runvar retest_of), if any.
Result<std::optional<Flight>> retest_flight_of(const Store& store, const std::string& branch, FlightId original);

}  // namespace pushgate::store
