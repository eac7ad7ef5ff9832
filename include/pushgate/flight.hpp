#pragma once
/// Flights: made from a branch's job matrix and a revision resolution, then
/// run — jobs in dependency order on allocated hosts, steps with timeouts
/// and logs, blocked jobs, build reuse, cancellation.

#include <functional>
#include <set>
#include <string>

#include <pushgate/config.hpp>
#include <pushgate/hosts.hpp>
#include <pushgate/ids.hpp>
#include <pushgate/revisions.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>

namespace pushgate::flight {

/// The version recorded in build inputs: a new harness rebuilds everything.
const char* harness_version();

/// The build_inputs runvar of a build job with these input runvars (every
/// one but build_inputs, basis_revision_*, pin_* and bookkeeping such as
/// retest_of and bisection): equal inputs, equal digest, reused build.
std::string build_inputs(const std::map<std::string, std::string>& vars);

/// `jobs` and every job they depend on, transitively (a retest or a
/// bisection probe runs them with the build jobs they need).
std::set<std::string> with_dependencies(const config::Config& config, const std::vector<std::string>& jobs);

/// A runvar pin_<role> = HOST makes the job take HOST for that role (a
/// bisection probe runs where the failure happened).
inline const char* kPinPrefix = "pin_";

struct CreateOptions {
  std::string blessing = "real";  ///< real, real-retest, real-bisect, adhoc, play
  std::string intended;           ///< default: same as blessing
  std::vector<std::string> only_jobs;  ///< empty: the branch's whole matrix
  /// Why it runs (store::Flight::trigger_kind/detail): cron, poll, webhook, manual, ...
  std::string trigger_kind = "manual", trigger_detail;
};

/// Who runs a command: $SUDO_USER, else the login name of the uid.
std::string invoking_user();

/// A new flight of `resolution.branch`: every job of the branch's matrix,
/// status queued, with input runvars (tree_*, revision_*, revsrc_*, the
/// job's own runvars, all_hostflags, buildjob, build_inputs).
Result<FlightId> create(const config::Config& config, store::Store& store, const revisions::Resolution& resolution,
                        const CreateOptions& options = {});

struct RunOptions {
  std::function<void(const std::string&)> progress;  ///< one line per step start and end
  hosts::Cancellation* cancel = nullptr;              ///< null: a private one
  bool handle_signals = false;  ///< SIGINT/SIGTERM cancel the flight
  int poll_ms = 100;            ///< how often waiting jobs retry allocation
};

/// Run every queued job of the flight to completion (or cancellation).
/// Returns the flight's jobs as they ended.
Result<std::vector<store::Job>> run(const config::Config& config, store::Store& store, hosts::Registry& hosts,
                                    FlightId flight, const RunOptions& options = {});

/// SPEC section 5: the real-retest flight of `original` for `jobs` (and the
/// jobs they depend on), with the same input runvars, so the same revisions.
/// Made once (runvar retest_of) and run until its jobs are done; returns its
/// id. unavailable when cancelled (it resumes at the next start).
Result<FlightId> retest(const config::Config& config, store::Store& store, hosts::Registry& hosts,
                        FlightId original, const std::vector<std::string>& jobs, const RunOptions& options = {});

/// A piece of one step's log, for the web (/flights/N/JOB/STEP/log) and
/// `pushgate flight log`.
struct LogSlice {
  std::string job, testid, status;  ///< the step's; status "running" while it runs
  int stepno = 0;
  std::int64_t size = 0;     ///< the log file's size now
  std::int64_t offset = 0;   ///< where `text` starts
  std::string text;
  bool growing = false;      ///< the step (and so its log) may still grow: follow it
};

struct LogQuery {
  std::string job;
  std::string step;          ///< a step number or a testid
  int attempt = 0;           ///< 0: the current attempt; K: an attempt a restart interrupted
  std::int64_t offset = 0;   ///< bytes to skip (following a growing log)
  int tail_lines = 0;        ///< > 0: only the last this many lines (offset ignored)
  std::int64_t max_bytes = 1 << 20;  ///< at most this much text per slice
};

/// Read a step's log. Only files under STATE_DIR/logs are ever opened (the
/// store's path is resolved, symlinks included, and checked): not_found
/// for an unknown job or step, a log that is not (or no longer) there, or a
/// recorded path that leads outside the logs directory.
Result<LogSlice> read_log(const config::Config& config, const store::Store& store, FlightId flight,
                          const LogQuery& query);

/// Held by whoever runs a flight to its end (flight run, a daemon flight
/// thread, a retest): flock on STATE_DIR/locks/flight-N.lock, so the kernel
/// drops it when the process dies, however it dies. Two runners never share
/// a flight, and a daemon's restart recovery leaves alone the flights a live
/// process is running.
class RunLock {
 public:
  /// conflict when another runner holds it.
  static Result<RunLock> acquire(const config::Config& config, FlightId flight);
  /// True when a live runner (this process included) holds the flight's lock.
  static bool held(const config::Config& config, FlightId flight);
  RunLock(RunLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RunLock& operator=(RunLock&&) = delete;
  RunLock(const RunLock&) = delete;
  ~RunLock();

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

/// Where a step's log goes: STATE_DIR/logs/FLIGHT/JOB/STEPNO-TESTID.log.
/// Attempt N > 1 of a job (a re-run after an interruption) writes to
/// STATE_DIR/logs/FLIGHT/JOB.attempt-N/ instead: a leftover of the attempt
/// before can never write into the new attempt's log.
std::string log_path(const config::Config& config, FlightId flight, const std::string& job, int stepno,
                     const std::string& testid, int attempt = 1);
/// A job's work directory: STATE_DIR/work/FLIGHT/JOB, fresh for every
/// attempt (STATE_DIR/work/FLIGHT/JOB.attempt-N for N > 1).
std::string work_dir(const config::Config& config, FlightId flight, const std::string& job, int attempt = 1);
/// ABI records (issue 18): a step writes JSON files to $PUSHGATE_ARTIFACTS,
/// one per key, at DIR/KEY.json ("machine/pc-i440fx-7.2" is
/// DIR/machine/pc-i440fx-7.2.json). They are kept, canonical, under
/// STATE/records/FLIGHT/JOB[.attempt-N]/KEY.json with their git blob id.
std::string records_dir(const config::Config& config, FlightId flight, const std::string& job, int attempt = 1);
/// True for a record key: segments of [A-Za-z0-9._+:@=,-] joined by '/', no
/// segment starting with '.', at most 200 characters.
bool valid_record_key(const std::string& key);
/// Copy the records a step wrote to `from` into `to` (canonical JSON) and
/// describe them; the caller removes `from`. A file that is not a record (not
/// *.json, not a JSON object or array, a bad key, not a regular file) is
/// refused: the step is broken, because the recorder is harness, not code
/// under test.
Result<std::vector<store::Store::Artifact>> collect_records(const std::string& from, const std::string& to,
                                                            FlightId flight, const std::string& job, int stepno);
/// The record of `job` and `key` among a flight's records; nullptr: none.
const store::Store::Artifact* find_record(const std::vector<store::Store::Artifact>& records, const std::string& job,
                                          const std::string& key);
/// The record's JSON, read from its file.
Result<std::string> read_record(const store::Store::Artifact& record);

struct RetentionOptions {
  int older_than_days = 90;  ///< flights created before now minus this
  std::int64_t now = 0;      ///< Unix seconds
  bool dry_run = false;      ///< say what would go, remove nothing
};
struct Retention {
  std::int64_t cutoff = 0;
  struct Removed {
    FlightId flight;
    std::string path;
  };
  std::vector<Removed> removed;  ///< directories removed (or, dry run, that would be)
  std::uintmax_t bytes = 0;
  struct Kept {
    FlightId flight;
    std::string why;
  };
  std::vector<Kept> kept;  ///< evidence kept whatever its age
};

/// Remove STATE_DIR/logs/F and STATE_DIR/work/F of finished flights older
/// than the cutoff, except the evidence of each branch's current baseline:
/// flights that ran its tested revision, its last tolerable flight, the
/// builds those reused from other flights, and the flights of running
/// bisections. Unfinished flights are never touched; database rows stay.
Result<Retention> collect_garbage(const config::Config& config, store::Store& store, revisions::Mirrors& mirrors,
                                  const RetentionOptions& options);

}  // namespace pushgate::flight
