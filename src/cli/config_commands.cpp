// `pushgate config check|schema` and `pushgate db status`.

#include <iostream>

#include <pushgate/config.hpp>
#include <pushgate/daemon.hpp>
#include <pushgate/store.hpp>

#include "context.hpp"

namespace pushgate::cli {
namespace {

nlohmann::json to_json(const config::Diagnostic& d) {
  nlohmann::json j{{"file", d.file}, {"pointer", d.pointer}, {"message", d.message}};
  if (d.line) {
    j["line"] = d.line;
    j["column"] = d.column;
  }
  return j;
}

void config_check(Context& ctx, bool json) {
  if (ctx.config_path.empty()) fail(Status::invalid_argument("no configuration given", "pass --config PATH"), kUsage);
  config::LoadResult r = config::load(ctx.config_path);
  if (r.config) {
    // What the daemon would refuse at start, refused here too.
    auto more = daemon::startup_checks(*r.config);
    for (auto& d : more) {
      d.file = ctx.config_path;
      r.errors.push_back(d);
    }
    if (!more.empty()) r.config.reset();
  }
  if (json) {
    nlohmann::json out{{"file", ctx.config_path}, {"valid", r.config.has_value()}};
    out["errors"] = nlohmann::json::array();
    out["warnings"] = nlohmann::json::array();
    for (const auto& e : r.errors) out["errors"].push_back(to_json(e));
    for (const auto& w : r.warnings) out["warnings"].push_back(to_json(w));
    if (r.config) {
      out["summary"] = {{"trees", r.config->trees.size()}, {"branches", r.config->branches.size()},
                        {"jobs", r.config->jobs.size()}, {"hosts", r.config->hosts.size()},
                        {"database", r.config->daemon.database}};
    }
    print_json(out);
  } else {
    for (const auto& w : r.warnings) std::cerr << w.to_string() << "\n";
    for (const auto& e : r.errors) std::cerr << e.to_string() << "\n";
    if (r.config) {
      const config::Config& c = *r.config;
      std::cout << ctx.config_path << ": valid\n"
                << "  trees:    " << c.trees.size();
      for (const auto& t : c.trees) std::cout << " " << t.name;
      std::cout << "\n  branches: " << c.branches.size();
      for (const auto& b : c.branches) std::cout << " " << b.name;
      std::cout << "\n  jobs:     " << c.jobs.size() << "\n  hosts:    " << c.hosts.size();
      for (const auto& h : c.hosts) std::cout << " " << h.name << "(" << h.kind << ")";
      std::cout << "\n  database: " << c.daemon.database << "\n";
    } else {
      std::cerr << "pushgate: " << r.errors.size() << " configuration error" << (r.errors.size() == 1 ? "" : "s") << "\n";
    }
  }
  if (!r.config) throw ExitError{kUsage};
}

void db_status(Context& ctx, bool json) {
  store::Store& s = ctx.store();
  std::vector<store::Host> hosts;
  if (!ctx.config_path.empty()) {
    std::vector<store::Host> configured;
    for (const auto& h : ctx.config().hosts) configured.push_back({h.name, h.kind, "enabled", "", 0, {}, "", h.flags});
    must(s.sync_hosts(configured));
  }
  hosts = must(s.list_hosts());
  auto flights = must(s.list_flights({.limit = 1}));
  if (json) {
    print_json({{"database", s.path()},
                {"schema_version", s.schema_version()},
                {"latest_schema_version", store::Store::latest_schema_version()},
                {"hosts", hosts.size()},
                {"last_flight", flights.empty() ? nlohmann::json(nullptr) : nlohmann::json(flights[0].id.value)}});
    return;
  }
  std::cout << "database:       " << s.path() << "\n"
            << "schema version: " << s.schema_version() << " (this pushgate writes "
            << store::Store::latest_schema_version() << ")\n"
            << "hosts:          " << hosts.size() << "\n"
            << "last flight:    " << (flights.empty() ? std::string("none") : flights[0].id.str()) << "\n";
}

}  // namespace

void add_config_commands(CLI::App& app, Context& ctx) {
  auto* cfg = app.add_subcommand("config", "Check and show the configuration");
  cfg->require_subcommand(1);
  auto* check = cfg->add_subcommand("check", "Validate the configuration without starting anything; exit 2 if invalid");
  static bool check_json = false;
  check->add_flag("--json", check_json, "machine-readable output");
  check->callback([&ctx] { config_check(ctx, check_json); });
  auto* schema = cfg->add_subcommand("schema", "Print the JSON Schema the configuration is validated against");
  schema->callback([] { std::cout << config::schema_text(); });

  auto* db = app.add_subcommand("db", "The SQLite store");
  db->require_subcommand(1);
  auto* status = db->add_subcommand("status", "Open (creating and migrating) the database and show its state");
  static bool status_json = false;
  status->add_flag("--json", status_json, "machine-readable output");
  status->callback([&ctx] { db_status(ctx, status_json); });
}

}  // namespace pushgate::cli
