// `pushgate daemon [--once]`.

#include <spdlog/spdlog.h>

#include <pushgate/daemon.hpp>

#include "context.hpp"

namespace pushgate::cli {

void add_daemon_command(CLI::App& app, Context& ctx) {
  static daemon::Options opts;
  static int poll_floor = 1;
  auto* d = app.add_subcommand("daemon",
                               "Run the scheduler: cron and polling triggers for every branch, flights over the\n"
                               "shared hosts, verdicts and pushes. Recovers interrupted flights and pending pushes\n"
                               "at start; SIGTERM/SIGINT drain (no new flights, running steps get --drain-seconds).");
  d->add_flag("--once", opts.once, "run every due trigger once, wait for those flights, exit (for cron-driven installs)");
  d->add_option("--drain-seconds", opts.drain_seconds, "grace for running steps after SIGTERM")
      ->check(CLI::NonNegativeNumber);
  d->add_option("--poll-floor", poll_floor, "shortest polling interval honoured, seconds")->check(CLI::PositiveNumber);
  d->callback([&ctx] {
    const config::Config& cfg = ctx.config();
    daemon::setup_logging(cfg.daemon);
    opts.poll_floor_seconds = poll_floor;
    // Lines the daemon marks "warning: " are logged at warning level.
    opts.log = [](const std::string& line) {
      if (line.starts_with("warning: ")) spdlog::warn("{}", line.substr(9));
      else spdlog::info("{}", line);
    };
    std::string db = ctx.database_path();
    spdlog::info("pushgate daemon starting: {} branches, {} hosts, database {}", cfg.branches.size(),
                 cfg.hosts.size(), db);
    auto r = daemon::run(cfg, db, opts);
    if (!r) fail(r.error(), r.error().code() == StatusCode::invalid_argument ? kUsage : kFailure);
  });
}

}  // namespace pushgate::cli
