#pragma once
/// The configuration: JSON files (with includes) validated against
/// schemas/config.schema.json, then checked for meaning. Errors carry the
/// JSON pointer (and line/column for syntax errors) of what is wrong.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <pushgate/status.hpp>

namespace pushgate::config {

struct Tree {
  std::string name;
  std::string upstream;        ///< URL, or absolute path
  std::string mirror;          ///< absolute path of the bare mirror
  std::string push_url;        ///< where tested refs are pushed
  std::string frozen_pattern;  ///< e.g. "osstest/frozen/{branch}"
  std::string gate;            ///< branch whose tested ref others use; may be empty

  /// Frozen ref name for one consumer branch.
  std::string frozen_ref(const std::string& branch) const;
};

/// Where a branch takes a tree that is not under test.
struct Source {
  enum class Kind { tested_of, ref };
  Kind kind = Kind::ref;
  std::string value;  ///< a branch name or a ref name
};

/// Where reports go when a flight or a bisection ends (issue 15 item 5).
struct Channels {
  std::vector<std::string> mail;      ///< recipients, one message to all
  std::vector<std::string> webhooks;  ///< http(s) URLs a JSON body is POSTed to
  std::vector<std::string> commands;  ///< shell commands run with the JSON body on stdin
  std::vector<std::string> blessings{"real"};  ///< flights of these blessings notify
  bool bisections = true;             ///< a bisection's end notifies
  bool empty() const { return mail.empty() && webhooks.empty() && commands.empty(); }
};

/// How notifications are delivered (config "notify"), and the channels of
/// branches that name none of their own.
struct Notify {
  std::string from;      ///< the From address; default pushgate@HOSTNAME
  std::string sendmail = "/usr/sbin/sendmail -t -oi";  ///< mail goes here (message on stdin) unless smtp is set
  std::string smtp;      ///< smtp://HOST[:PORT] or smtps://...: mail goes there instead
  std::string smtp_user, smtp_password_file;
  int attempts = 10;            ///< tries of one notification before it is given up (state failed)
  int retry_seconds = 60;       ///< wait after the first failure, doubled after each, up to max_retry_seconds
  int max_retry_seconds = 3600;
  int timeout_seconds = 30;     ///< of one attempt (connection, transfer, command)
  Channels defaults;
};

struct Branch {
  std::string name;
  std::string tree;  ///< the tree under test
  std::string input;
  std::string tested;
  bool push = true;
  std::string push_url;  ///< default: the tree's push_url
  bool always_run = false;
  int priority = 0;
  std::vector<std::string> trees;  ///< other trees it needs (resolved: never empty of defaults)
  std::map<std::string, Source> sources;
  std::vector<std::string> jobs;  ///< resolved: all jobs when not configured
  std::vector<std::string> allow;
  std::string cron;
  int poll_seconds = 0;
  Channels notify;  ///< resolved: the branch's own, else notify's defaults
};

struct Step {
  std::string testid;
  std::string run;  ///< command, or empty for a built-in op
  std::string op;   ///< "libvirt:start", ... or empty
  std::string role = "host";
  bool role_set = false;  ///< role was written in the config (else the default, see step_role)
  int timeout = 3600;
  std::string on_failure = "fail";  ///< fail or broken
  bool always = false;
  bool non_fatal = false;  ///< a failure is judged but neither fails the job nor skips later steps
  std::int64_t log_max_bytes = 0;  ///< cap of this step's log; 0: daemon.step_log_max_bytes
};

struct Recipe {
  std::string name;
  std::vector<Step> steps;
};

struct Job {
  std::string name;
  std::string kind = "test";  ///< build or test; default build when the name starts with "build-"
  std::string recipe;
  std::vector<std::string> depends;
  std::map<std::string, std::vector<std::string>> hosts;  ///< role -> flags
  std::map<std::string, std::string> runvars;
};

struct Host {
  std::string name;
  std::string kind;  ///< local, baremetal, libvirt
  std::vector<std::string> flags;
  std::string uri;
  std::string address;
  std::string ssh_user = "root";
  int ssh_port = 22;
  std::string ssh_key, known_hosts;
  std::string power_command, console_command, pxe_template, pxe_dir;
  std::string password_file, password_env;
  /// libvirt: keepalive probes every interval seconds; the connection is
  /// closed after count unanswered ones (interval 0: no keepalive).
  int keepalive_interval = 5, keepalive_count = 3;
};

struct Daemon {
  std::string database;   ///< absolute path
  std::string state_dir;  ///< absolute path
  std::string listen = "127.0.0.1:8480";
  /// Where people reach the web pages (links in reports and mails), without a
  /// trailing slash. Resolved: http://LISTEN when not configured.
  std::string public_url;
  std::string log_level = "info";
  /// auto (journal under systemd, else text), text (UTC timestamps), journal
  /// (no timestamp, <N> priority prefixes journald reads), json (one object per line).
  std::string log_format = "auto";
  /// `pushgate gc` removes logs and work directories of flights older than
  /// this many days (never a current baseline's evidence); 0: keep all.
  int retention_days = 0;
  std::string api_token_file, api_token_env;
  bool read_requires_token = false;
  int api_workers = 4;  ///< threads serving API requests, each with its own database connection
  std::string time_zone = "UTC";
  int starve_after_seconds = 3600;
  int quarantine_after = 3;
  bool retest_regressions = true;
  /// SPEC section 7: bisect every regression of a real flight automatically.
  bool bisect = true;
  /// Bisection probes run on the failure's own hosts (false: equivalent hosts).
  bool bisect_same_hosts = true;
  /// Probe flights of one bisection at once on equivalent hosts.
  int bisect_parallel = 3;
  int max_parallel_jobs = 4;
  int stale_ref_lock_seconds = 60;  ///< a ref lock at a local push target this old is a dead writer's
  std::int64_t step_log_max_bytes = 64ll << 20;  ///< per step log: head and tail kept, the cut marked
  int retry_broken = 1;  ///< a job that ends broken runs again this often before the verdict
  int api_max_connections = 256;  ///< open HTTP connections at once; more get 503
  int api_busy_timeout_seconds = 30;  ///< an API request waits this long for a busy database, then 503
  int push_attempts = 3;            ///< tries of a push that failed with the ref unchanged
  int reconcile_seconds = 60;
  std::vector<std::string> step_env;  ///< controller variables steps inherit besides PATH, HOME, LANG, TZ...       ///< how often the daemon finishes pending push intents of dead owners
};

struct Config {
  std::string path;  ///< the main file
  std::string dir;   ///< its directory; relative paths are resolved against it
  Daemon daemon;
  std::vector<Tree> trees;
  std::vector<Branch> branches;
  std::map<std::string, Recipe> recipes;
  std::vector<Job> jobs;
  std::vector<Host> hosts;
  std::vector<std::string> allow;
  Notify notify;

  const Tree* find_tree(const std::string& name) const;
  const Branch* find_branch(const std::string& name) const;
  /// Where `branch`'s tested ref is pushed: its push_url, else its tree's
  /// (empty when the tree is unknown).
  std::string push_url(const Branch& branch) const;
  const Job* find_job(const std::string& name) const;
  const Host* find_host(const std::string& name) const;
  /// The branch whose tested ref stands for `tree` when a branch names no
  /// source for it: trees[].gate, else a branch named like the tree testing it.
  const Branch* gate_of(const std::string& tree) const;
};

/// One problem found in the configuration.
struct Diagnostic {
  std::string file;     ///< the file it is in (for syntax errors and include problems)
  std::string pointer;  ///< JSON pointer in the merged document, "" for the whole document
  int line = 0, column = 0;
  std::string message;
  bool warning = false;
  /// "config: FILE:LINE:COL: /pointer: message"
  std::string to_string() const;
};

struct LoadResult {
  std::optional<Config> config;  ///< set only when there are no errors
  std::vector<Diagnostic> errors;
  std::vector<Diagnostic> warnings;
};

/// Read, merge includes, validate against the schema and check meaning.
LoadResult load(const std::string& path);
/// The same from text already in memory (`path` names it in messages and
/// anchors relative paths; includes are read relative to it).
LoadResult load_text(const std::string& text, const std::string& path);

/// The part of an environment variable name that a tree, role, job or
/// runvar name becomes: every character other than a letter, digit or `_`
/// turns into `_` (`revision_qemu-xen` -> `revision_qemu_xen`); `upper` also
/// upper-cases it (`qemu-xen` -> `QEMU_XEN`). Names a POSIX shell drops
/// otherwise never reach a step.
std::string env_name(std::string_view name, bool upper = false);

/// The host role a step of `job` runs on, "" for the controller: the
/// step's role when written in the config ("controller" means the
/// controller); else `host` when the job has it, the job's only role when it
/// has one, the controller when it has none. A job with several roles, none
/// named `host`, has no default: config checks refuse a step without a role
/// there (it returns the default "host", which the job does not have).
std::string step_role(const Job& job, const Step& step);

/// "did you mean \"x\"?" when one of `known` is close to `name`, else "".
std::string did_you_mean(const std::string& name, const std::vector<std::string>& known);

/// The API bearer token from daemon.api_token_env or api_token_file ("" when
/// neither is set); invalid_argument when unreadable, empty or shorter than
/// 16 characters. `config check` and the daemon's start make the same check.
Result<std::string> api_token(const Config& config);

/// The JSON Schema the config is validated against (schemas/config.schema.json).
const std::string& schema_text();

/// A Status summarising a failed LoadResult (first errors, count).
Status to_status(const LoadResult& result);

}  // namespace pushgate::config
