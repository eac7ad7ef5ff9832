#pragma once
// Private to src/cli: what every command needs — the global options, the
// loaded config and the open store, each made once on first use — and the
// one place where a Status becomes a message and an exit code.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <pushgate/config.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>

namespace pushgate::cli {

enum Exit { kOk = 0, kFailure = 1, kUsage = 2, kNotTolerable = 3, kInterrupted = 4, kNotPushed = 5 };

/// Thrown by commands to leave with an exit code after printing.
struct ExitError {
  int code;
};

class Context {
 public:
  std::string config_path;
  std::string db_path;
  std::string who;  ///< for audit records: --as, else $SUDO_USER/$USER

  /// The validated config; on errors prints them all and throws ExitError{2}.
  const config::Config& config();
  /// The open store (migrated); on failure prints and throws ExitError{1}.
  store::Store& store();
  /// Database path: --db, else daemon.database of the config.
  std::string database_path();

 private:
  std::optional<config::Config> config_;
  std::unique_ptr<store::Store> store_;
};

/// Print "pushgate: error: ..." (and the hint) to stderr.
void print_error(const Status& s);
/// Exit code for a Status: invalid_argument/not_found of user input -> 2 is
/// decided by the caller; this maps everything else to 1.
[[noreturn]] void fail(const Status& s, int code = kFailure);
/// Exit 2 with "unknown WHAT \"NAME\"" and a did-you-mean among `known`,
/// else the hint `see`.
[[noreturn]] void fail_unknown(const std::string& what, const std::string& name, const std::vector<std::string>& known,
                               const std::string& see);
/// Unwrap a Result or fail with its status.
template <typename T>
T must(Result<T> r, int code = kFailure) {
  if (!r) fail(r.error(), code);
  return std::move(r).value();
}
inline void must(Result<void> r, int code = kFailure) {
  if (!r) fail(r.error(), code);
}

/// "--rev TREE=REV" options as tree -> revision; a malformed one exits 2.
std::map<std::string, std::string> parse_overrides(const std::vector<std::string>& revs);
/// Exit code for a module's Status: bad names and values are usage
/// errors (2), everything else a failure (1).
int code_of(const Status& s);

/// Print JSON (pretty) to stdout.
void print_json(const nlohmann::json& j);

/// "3h ago", "2d ago" from a unix time.
std::string age(std::int64_t when);
/// "2026-12-02 18:03 UTC (5m ago)".
std::string human_time(std::int64_t when);

void add_config_commands(CLI::App& app, Context& ctx);
void add_revision_commands(CLI::App& app, Context& ctx);
void add_abi_commands(CLI::App& app, Context& ctx);
void add_flight_commands(CLI::App& app, Context& ctx);
void add_branch_commands(CLI::App& app, Context& ctx);
void add_history_commands(CLI::App& app, Context& ctx);
void add_daemon_command(CLI::App& app, Context& ctx);
void add_gc_command(CLI::App& app, Context& ctx);
void add_bisect_commands(CLI::App& app, Context& ctx);

/// A configured branch or job by name, or exit 2 with a did-you-mean.
const config::Branch& branch_of(Context& ctx, const std::string& name);
const config::Job& job_of(Context& ctx, const std::string& name);

/// The configured hosts written to the store (new ones enabled).
void sync_hosts(Context& ctx);

/// One try at the notifications an ended flight or bisection queued, each
/// outcome on stderr; what fails stays queued for the daemon's retries and
/// never changes the exit status.
void notify_once(Context& ctx, const std::string& event, std::int64_t id);

}  // namespace pushgate::cli
