#pragma once
/// The long-running daemon: triggers (cron, polling, manual), flights of
/// many branches over the shared host pool, restart recovery, graceful
/// drain; and cron expressions.

#include <bitset>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <pushgate/config.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>

namespace date {
class time_zone;
}

namespace pushgate::daemon {

/// A 5-field cron expression, evaluated in one time zone of the tz
/// database (never the process's TZ: the daemon is multithreaded and
/// setenv("TZ") would race with every other thread reading the time).
class CronExpr {
 public:
  /// `zone`: a tz database name ("UTC", "Europe/London"); unknown: an error.
  static Result<CronExpr> parse(const std::string& expr, const std::string& zone = "UTC");
  /// The first fire time strictly after `after` (seconds since the epoch).
  std::optional<std::int64_t> next_after(std::int64_t after) const;
  bool matches(const std::tm& local) const;
  const std::string& text() const { return text_; }
  const std::string& zone_name() const { return zone_name_; }

 private:
  std::string text_, zone_name_;
  const date::time_zone* zone_ = nullptr;
  std::bitset<60> fields_[5];
  bool dom_star_ = false, dow_star_ = false;
};

/// Whether `zone` names a time zone of the tz database; the error says why not.
Status check_time_zone(const std::string& zone);

struct Options {
  bool once = false;                 ///< run every due trigger once, wait for the flights, exit
  int poll_floor_seconds = 1;        ///< tests: shortest poll interval honoured
  int drain_seconds = 60;            ///< SIGTERM: how long running steps may take to finish
  std::function<void(const std::string&)> log;
  /// Opens a connection to the database (one for the loop, one per flight
  /// thread, one per API worker); empty: store::Store::open. Tests wrap the
  /// real store here to place crashes.
  std::function<Result<std::unique_ptr<store::Store>>(const std::string& path)> open_store;
};

/// What the daemon refuses at start beyond config::load: cron expressions,
/// the time zone (in the tz database), the API token. `config check` runs
/// the same checks, so it refuses everything the daemon would.
std::vector<config::Diagnostic> startup_checks(const config::Config& config);

/// Whether stderr is the journal stream systemd connected ($JOURNAL_STREAM).
bool stderr_is_journal();
/// daemon.log_format with "auto" decided: journal under systemd, else text.
std::string log_format(const config::Daemon& daemon);
/// spdlog's default logger: stderr, daemon.log_level, lines as log_format says.
void setup_logging(const config::Daemon& daemon);

/// Run the daemon until SIGTERM/SIGINT (or, with `once`, until the due work
/// is done). Refuses to start when another daemon holds the database.
Result<void> run(const config::Config& config, const std::string& database, const Options& options);

}  // namespace pushgate::daemon
