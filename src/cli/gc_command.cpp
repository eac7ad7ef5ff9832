// `pushgate gc`: retention of old flights' logs and work directories.

#include <iostream>

#include <pushgate/api.hpp>
#include <pushgate/flight.hpp>

#include "context.hpp"

namespace pushgate::cli {

void add_gc_command(CLI::App& app, Context& ctx) {
  static int days = -1;
  static bool dry_run = false, json = false;
  auto* gc = app.add_subcommand("gc",
                                "Remove step logs and work directories of finished flights older than\n"
                                "daemon.retention_days (or --older-than), never the evidence of a current\n"
                                "baseline; database rows stay. Run daily by pushgate-gc.timer.");
  gc->add_option("--older-than", days, "days (default: daemon.retention_days)")->check(CLI::NonNegativeNumber);
  gc->add_flag("--dry-run", dry_run, "say what would be removed, remove nothing");
  gc->add_flag("--json", json, "machine-readable output (schemas/cli/gc.schema.json)");
  gc->callback([&ctx] {
    const config::Config& cfg = ctx.config();
    int age = days >= 0 ? days : cfg.daemon.retention_days;
    if (age == 0 && days < 0) {
      if (json) print_json({{"removed", nlohmann::json::array()}, {"kept", nlohmann::json::array()}, {"bytes", 0},
                            {"dry_run", dry_run}, {"retention", "off"}});
      else std::cout << "retention is off (daemon.retention_days is 0): nothing removed\n";
      return;
    }
    revisions::Mirrors mirrors(cfg);
    flight::RetentionOptions o{age, store::now(), dry_run};
    auto r = must(flight::collect_garbage(cfg, ctx.store(), mirrors, o));
    if (json) {
      nlohmann::json j{{"cutoff", r.cutoff}, {"bytes", r.bytes}, {"dry_run", dry_run}, {"retention", "on"}};
      j["removed"] = nlohmann::json::array();
      for (const auto& x : r.removed) j["removed"].push_back({{"flight", x.flight.value}, {"path", x.path}});
      j["kept"] = nlohmann::json::array();
      for (const auto& k : r.kept) j["kept"].push_back({{"flight", k.flight.value}, {"why", k.why}});
      print_json(j);
      return;
    }
    std::cerr << "flights created before " << human_time(r.cutoff) << "\n";
    for (const auto& x : r.removed) std::cout << (dry_run ? "would remove " : "removed ") << x.path << "\n";
    for (const auto& k : r.kept) std::cout << "kept flight " << k.flight.str() << ": " << k.why << "\n";
    std::cout << (dry_run ? "would free " : "freed ") << r.bytes / (1024 * 1024) << " MiB in " << r.removed.size()
              << " directories\n";
  });
}

}  // namespace pushgate::cli
