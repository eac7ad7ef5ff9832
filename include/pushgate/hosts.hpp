#pragma once
/// Test hosts: one interface, three backends (local child processes,
/// bare metal over ssh with power/PXE commands, libvirt connections), and
/// the registry made from the config. Steps are coroutines on the caller's
/// io_context; blocking library calls go to a worker pool.

#include <utility>  // before Asio: Boost 1.74 Asio needs std::exchange under GCC 12

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <pushgate/config.hpp>
#include <pushgate/ids.hpp>
#include <pushgate/status.hpp>

namespace pushgate::hosts {

namespace asio = boost::asio;

/// Process groups of running steps, so a cancel (Ctrl-C, SIGTERM) can kill
/// them all at once. Thread-safe.
class Cancellation {
 public:
  /// Drain (SIGTERM): no new job or normal step starts; running steps go on,
  /// `always` (cleanup) steps still run; jobs cut short are re-queued.
  void drain();
  /// End of the drain's grace period: kill every running process group now
  /// (SIGKILL); cleanup steps may still start processes. Implies drain().
  void cut();
  /// Hard stop: kill every registered group and refuse new processes.
  void cancel();
  bool cancelled() const;
  /// True once drain(), cut() or cancel() was called.
  bool draining() const;
  /// True once cut() or cancel() killed the running processes.
  bool killed_running() const;
  /// false when already cancelled: the caller must not start the process.
  bool add(int pgid);
  /// true when the group was killed by cut() or cancel(), not by itself.
  bool remove(int pgid);

 private:
  mutable std::mutex mutex_;
  std::set<int> groups_;  // GUARDED_BY(mutex_)
  std::set<int> killed_;  // GUARDED_BY(mutex_)
  bool cancelled_ = false;  // GUARDED_BY(mutex_)
  bool draining_ = false;   // GUARDED_BY(mutex_)
  bool killed_running_ = false;  // GUARDED_BY(mutex_)
};

/// Where a step's processes are kept so that all of them, including those
/// that left its process group (setsid, a daemonized helper), can be found
/// and killed: at the step's end, on timeout and cancel, and by restart
/// recovery after pushgate itself was killed (SPEC section 9).
///  - a cgroup v2 directory per step under pushgate's own cgroup
///    (`.../pushgate-<digest of the state dir>/flight-N/JOB.STEPNO`) where a
///    cgroup2 hierarchy is writable (pure cgroup2 or the hybrid layout's
///    /sys/fs/cgroup/unified);
///  - everywhere: the environment variable PUSHGATE_STEP_TAG
///    (`<digest>/N/JOB/STEPNO`), found through /proc/PID/environ.
struct Placement {
  std::string tag;         ///< PUSHGATE_STEP_TAG value; empty: untagged
  std::string cgroup_dir;  ///< cgroup v2 directory to run in; empty: none
};

/// FNV-1a, 64 bit, as 16 hex digits: a stable digest (build inputs, state
/// directories), not a security hash.
std::string digest(const std::string& s);

/// Kill every process of a placement (its cgroup, else its tag) and remove
/// the cgroup; returns how many processes were killed.
int kill_placement(const Placement& p);

/// Step containment for one state directory.
class Containment {
 public:
  explicit Containment(const std::string& state_dir);
  /// The placement of one step attempt (its cgroup directory is made when
  /// a process starts there).
  Placement place(FlightId flight, const std::string& job, int stepno) const;
  /// Kill the leftovers of every flight for which `keep` is false (restart
  /// recovery: flights no live process runs); returns how many processes.
  int kill_flights_except(const std::function<bool(FlightId)>& keep) const;
  /// The cgroup v2 base directory in use, empty when only tags are used.
  const std::string& cgroup_base() const { return base_; }

 private:
  std::string digest_;
  std::string base_;
};

/// A child process run for a step: `argv` in its own process group (and the
/// placement's cgroup), stdout and stderr read by pushgate through a pipe
/// and appended to `log_path` (capped at `log_max_bytes`: the head and the
/// tail are kept, the cut is marked), killed with everything it started at
/// `timeout_seconds` or on cancel, and when the main process exits.
struct ProcessSpec {
  std::vector<std::string> argv;
  /// The child's whole environment, with kInheritedEnv and `inherit` taken
  /// from the controller's: never the rest of it (SPEC section 4: secrets
  /// the daemon holds, an API token, IPMI passwords, do not reach steps).
  std::map<std::string, std::string> env;
  std::string cwd;
  std::string log_path;
  int timeout_seconds = 3600;
  std::vector<std::string> inherit;  ///< more variables passed through by name (daemon.step_env)
  Placement place;
  std::int64_t log_max_bytes = 0;    ///< 0: no cap
};

/// Variables every step process gets from the controller when set there.
inline const std::vector<std::string> kInheritedEnv{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR"};

struct ProcessResult {
  int exit_code = -1;  ///< -1 when it did not exit normally
  int signal = 0;
  bool timed_out = false;
  bool cancelled = false;
  /// Set when pushgate could not do its part (start the process, write the
  /// log, a full disk on the controller): the step is broken, not failed.
  std::string error;
  std::int64_t log_bytes_cut = 0;  ///< output left out of the log by the cap
  bool ok() const { return exit_code == 0 && error.empty(); }
  std::string describe() const;
};

asio::awaitable<ProcessResult> run_process(ProcessSpec spec, Cancellation& cancel);

struct StepContext;
struct StepOutcome;
/// Run a step's command on the controller (local hosts, and libvirt hosts
/// whose URI is in the environment): exit 0 passes, another exit or a
/// timeout is `fail_status`, a command that cannot start or is cancelled is
/// broken.
asio::awaitable<StepOutcome> run_on_controller(const std::string& command, const std::string& fail_status,
                                               StepContext& ctx);

/// What a step needs to run on a host.
struct StepContext {
  FlightId flight;
  std::string job;
  int stepno = 0;
  std::string testid;
  std::string log_path;  ///< the step's log; backends append to it
  std::string workdir;   ///< the job's work directory on the controller
  std::map<std::string, std::string> env;  ///< runvars and PUSHGATE_* variables
  std::vector<std::string> inherit;        ///< controller variables passed through (daemon.step_env)
  int timeout_seconds = 3600;
  std::map<std::string, class Host*> roles;  ///< role -> host held by the job
  std::string role = "host";                 ///< the role this step acts on
  Cancellation* cancel = nullptr;
  asio::thread_pool* pool = nullptr;  ///< for blocking library calls
  Placement place;                    ///< where the step's processes run
  std::int64_t log_max_bytes = 0;     ///< cap of the step's log, 0: none
};

/// A step's result: pass, fail or broken, and why.
struct StepOutcome {
  std::string status = "pass";
  std::string message;
  static StepOutcome pass(std::string m = {}) { return {"pass", std::move(m)}; }
  static StepOutcome fail(std::string m) { return {"fail", std::move(m)}; }
  static StepOutcome broken(std::string m) { return {"broken", std::move(m)}; }
};

/// One test machine. Abstract because there are three backends: local
/// (this machine), baremetal (ssh + power/PXE commands) and libvirt.
class Host {
 public:
  explicit Host(config::Host cfg) : cfg_(std::move(cfg)) {}
  virtual ~Host() = default;
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const std::string& name() const { return cfg_.name; }
  const config::Host& config() const { return cfg_; }
  /// Address steps use to reach the host (ssh address, libvirt URI, "localhost").
  virtual std::string address() const = 0;

  /// Run a step's shell command (on this machine, or on the host over ssh).
  /// A non-zero exit is `fail_status`; a host that cannot be reached is broken.
  virtual asio::awaitable<StepOutcome> run_command(const std::string& command, const std::string& fail_status,
                                                   StepContext& ctx) = 0;
  /// Run a built-in operation ("host:boot-check", "libvirt:start", ...).
  /// Unsupported operations are broken with a message saying so.
  virtual asio::awaitable<StepOutcome> run_op(const std::string& op, StepContext& ctx) = 0;

 protected:
  config::Host cfg_;
};

/// The hosts of the config, by name.
class Registry {
 public:
  static Result<std::unique_ptr<Registry>> create(const config::Config& config);
  Host* find(const std::string& name) const;
  const std::vector<std::unique_ptr<Host>>& all() const { return hosts_; }
  /// Add a host made elsewhere (tests: a backend with a fake power control).
  void add(std::unique_ptr<Host> host) { hosts_.push_back(std::move(host)); }

 private:
  std::vector<std::unique_ptr<Host>> hosts_;
};

std::unique_ptr<Host> make_local(const config::Host& cfg);
std::unique_ptr<Host> make_baremetal(const config::Host& cfg);
std::unique_ptr<Host> make_libvirt(const config::Host& cfg);

/// Append a line to a log file (step logs are written by several parties).
/// "2026-12-03 07:30:01Z ": what starts every line of a step log.
std::string log_stamp();
void append_log(const std::string& path, const std::string& line);

}  // namespace pushgate::hosts
