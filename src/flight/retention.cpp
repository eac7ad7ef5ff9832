// `pushgate gc`: remove the step logs and work directories of old flights,
// never the evidence of a current baseline (issue 16 item 1). The database
// rows stay: results are never lost, only the files behind them.

#include <pushgate/flight.hpp>

#include <filesystem>
#include <set>

namespace pushgate::flight {
namespace {

/// "F.job" (a reused build, a build job of another flight) -> F.
std::optional<FlightId> flight_of_ref(const std::string& ref) {
  auto dot = ref.find('.');
  if (dot == std::string::npos || dot == 0) return std::nullopt;
  auto id = FlightId::parse(ref.substr(0, dot));
  if (!id) return std::nullopt;
  return *id;
}

}  // namespace

Result<Retention> collect_garbage(const config::Config& config, store::Store& store, revisions::Mirrors& mirrors,
                                  const RetentionOptions& options) {
  Retention out;
  out.cutoff = options.now - static_cast<std::int64_t>(options.older_than_days) * 86400;

  // The evidence of each branch's current baseline: every flight that ran
  // its tested revision (the verdict's baseline candidates), its newest
  // tolerable flight, and the builds those flights reused from others.
  std::set<std::int64_t> keep;
  auto keep_flight = [&](FlightId f, const std::string& why) {
    if (keep.insert(f.value).second) out.kept.push_back({f, why});
  };
  for (const auto& b : config.branches) {
    auto repo = mirrors.repo(b.tree);
    if (!repo) return repo.error();
    auto tested = (*repo)->ref_target(b.tested);
    if (!tested) return tested.error();
    if (tested->has_value()) {
      for (const char* var : {"revision_", "built_revision_"}) {
        auto fs = store.flights_with_runvar(b.name, var + b.tree, **tested);
        if (!fs) return fs.error();
        for (FlightId f : *fs) keep_flight(f, "tested revision of branch " + b.name);
      }
    }
    auto tol = store.last_tolerable_revision(b.name, b.tree);
    if (!tol) return tol.error();
    if (*tol) keep_flight((*tol)->first, "last tolerable flight of branch " + b.name);
  }
  // Running bisections: their failing, basis and probe flights.
  auto running = store.list_bisections({"running", "", 1000});
  if (!running) return running.error();
  for (const auto& b : *running) {
    keep_flight(b.flight, "bisection " + std::to_string(b.id));
    keep_flight(b.basis_flight, "bisection " + std::to_string(b.id));
    auto probes = store.bisection_probes(b.id);
    if (!probes) return probes.error();
    for (const auto& p : *probes) keep_flight(p.flight, "bisection " + std::to_string(b.id));
  }
  // Builds a kept flight uses from other flights.
  std::vector<std::int64_t> kept_now(keep.begin(), keep.end());
  for (std::int64_t k : kept_now) {
    auto vars = store.list_runvars(FlightId{k});
    if (!vars) return vars.error();
    for (const auto& v : *vars) {
      if (v.name != "reused_from" && !v.name.ends_with("buildjob")) continue;
      if (auto f = flight_of_ref(v.value); f && f->value != k) keep_flight(*f, "build used by flight " + std::to_string(k));
    }
  }

  // Old finished flights, newest first, a page at a time.
  std::optional<std::int64_t> before;
  for (;;) {
    store::FlightFilter filter;
    filter.limit = 500;
    filter.before = before;
    auto page = store.list_flights(filter);
    if (!page) return page.error();
    if (page->empty()) break;
    for (const auto& f : *page) {
      before = f.id.value;
      if (!f.finished || f.outcome.empty() || f.created >= out.cutoff || keep.count(f.id.value)) continue;
      std::error_code ec;
      for (const char* kind : {"/logs/", "/work/"}) {
        std::filesystem::path dir = config.daemon.state_dir + kind + f.id.str();
        if (!std::filesystem::exists(dir, ec)) continue;
        std::uintmax_t bytes = 0;
        for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
             !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
          if (it->is_regular_file(ec)) bytes += it->file_size(ec);
        }
        out.bytes += bytes;
        out.removed.push_back({f.id, dir.string()});
        if (!options.dry_run) {
          std::filesystem::remove_all(dir, ec);
          if (ec) return Status::internal("cannot remove " + dir.string() + ": " + ec.message());
        }
      }
    }
  }
  return out;
}

}  // namespace pushgate::flight
