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

namespace pushgate::daemon {

/// A 5-field cron expression, evaluated in the process's time zone (TZ).
class CronExpr {
 public:
  static Result<CronExpr> parse(const std::string& expr);
  /// The first fire time strictly after `after` (seconds since the epoch).
  std::optional<std::int64_t> next_after(std::int64_t after) const;
  bool matches(const std::tm& local) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::bitset<60> fields_[5];
  bool dom_star_ = false, dow_star_ = false;
};

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

/// Run the daemon until SIGTERM/SIGINT (or, with `once`, until the due work
/// is done). Refuses to start when another daemon holds the database.
Result<void> run(const config::Config& config, const std::string& database, const Options& options);

}  // namespace pushgate::daemon
