// `pushgate history job|step|host`: the same views as /api/v1/history.

#include <algorithm>
#include <iomanip>
#include <iostream>

#include <pushgate/api.hpp>

#include "context.hpp"

namespace pushgate::cli {
namespace {

struct HistoryArgs {
  std::string branch, job, testid, host;
  int limit = 20;
  bool json = false;
};

void job_history(Context& ctx, const HistoryArgs& a, bool step) {
  const config::Config& cfg = ctx.config();
  must(api::check_names(cfg, {a.branch, a.job, step ? a.testid : "", ""}), kUsage);
  auto rows = must(api::job_history_json(ctx.store(), a.branch, a.job, step ? a.testid : "", a.limit));
  if (a.json) {
    print_json(rows);
    return;
  }
  const std::string tree = cfg.find_branch(a.branch)->tree;
  std::cout << (step ? "step " + a.testid + " of " : "") << a.job << " on " << a.branch << ", newest first\n";
  if (rows.empty()) std::cout << "  (no runs)\n";
  else std::cout << "  flight  when      status   host          " << tree << "\n";
  for (const auto& r : rows) {
    std::string rev = r.value("built_revision_" + tree, r.value("revision_" + tree, ""));
    std::cout << "  " << std::left << std::setw(8) << r["flight"].get<std::int64_t>() << std::setw(10)
              << age(r["created"].get<std::int64_t>()) << std::setw(9)
              << (step ? r["status"].get<std::string>() : r["job_status"].get<std::string>()) << std::setw(14)
              << r.value("host", "-") << rev.substr(0, 12) << std::right << "\n";
  }
}

void host_history(Context& ctx, const HistoryArgs& a) {
  const config::Config& cfg = ctx.config();
  must(api::check_names(cfg, {.host = a.host}), kUsage);
  auto events = must(ctx.store().host_history(a.host, a.limit));
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : events) out.push_back(api::host_event_json(e));
    print_json(out);
    return;
  }
  std::cout << a.host << ", newest first\n";
  if (events.empty()) std::cout << "  (no uses yet)\n";
  for (const auto& e : events) {
    std::cout << "  " << std::left << std::setw(10) << age(e.at) << std::setw(11) << e.event << std::right
              << (e.flight ? "flight " + e.flight->str() + " " + e.job + (e.role.empty() ? "" : " as " + e.role) : "")
              << (e.detail.empty() ? "" : " (" + e.detail + ")") << "\n";
  }
}

}  // namespace

void add_history_commands(CLI::App& app, Context& ctx) {
  static HistoryArgs ha;
  auto* h = app.add_subcommand("history", "Past runs: of a job, of one step of a job, or of a host");
  h->require_subcommand(1);
  auto common = [](CLI::App* c) {
    c->add_option("--limit", ha.limit, "at most this many flights (events for host)")->check(CLI::PositiveNumber);
    c->add_flag("--json", ha.json, "machine-readable output (as GET /api/v1/history/...)");
  };
  auto* job = h->add_subcommand("job", "The last runs of JOB on BRANCH: status, host, revision tested");
  job->add_option("branch", ha.branch, "branch name")->required();
  job->add_option("job", ha.job, "job name")->required();
  common(job);
  job->callback([&ctx] { job_history(ctx, ha, false); });
  auto* step = h->add_subcommand("step", "One step (TESTID) of JOB on BRANCH over time");
  step->add_option("branch", ha.branch, "branch name")->required();
  step->add_option("job", ha.job, "job name")->required();
  step->add_option("testid", ha.testid, "step testid, e.g. guest-start")->required();
  common(step);
  step->callback([&ctx] { job_history(ctx, ha, true); });
  auto* host = h->add_subcommand("host", "Allocations, releases and state changes of HOST");
  host->add_option("host", ha.host, "host name")->required();
  common(host);
  host->callback([&ctx] { host_history(ctx, ha); });
}

}  // namespace pushgate::cli
