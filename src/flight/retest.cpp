// The real-retest flight (SPEC section 5): before regressions are reported,
// the regressed jobs run again on the same revisions. A step that passes
// there makes the failure a heisenbug ("pass in N") in the original's verdict.

#include <pushgate/flight.hpp>

#include <set>

namespace pushgate::flight {

Result<FlightId> retest(const config::Config& config, store::Store& store, hosts::Registry& hosts,
                        FlightId original, const std::vector<std::string>& jobs, const RunOptions& options) {
  auto say = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  auto join = [](const auto& names) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    return list;
  };
  say("flight " + original.str() + ": regressions in " + join(jobs) + "; retesting on the same revisions");
  auto orig = store.get_flight(original);
  if (!orig) return orig.error();
  // Made once: after a restart the same retest flight is resumed, not made again.
  auto made = store::retest_flight_of(store, orig->branch, original);
  if (!made) return made.error();
  std::optional<FlightId> id;
  if (*made) id = (*made)->id;
  if (!id) {
    // The regressed jobs and every job they depend on (builds are reused by
    // their inputs, so they do not build again).
    std::set<std::string> names = with_dependencies(config, jobs);
    auto orig_jobs = store.list_jobs(original);
    if (!orig_jobs) return orig_jobs.error();
    store::NewFlight f;
    f.branch = orig->branch;
    f.blessing = "real-retest";
    f.intended = "real-retest";
    f.trigger_kind = "retest";
    f.trigger_detail = original.str();
    for (const auto& j : *orig_jobs) {
      if (!names.count(j.job)) continue;
      f.jobs.push_back({{}, j.job, j.recipe, "queued", ""});
      auto vars = store.list_runvars(original, j.job);
      if (!vars) return vars.error();
      for (const auto& v : *vars) {
        if (!v.synth) f.runvars.push_back({j.job, v.name, v.value, false});  // inputs only
      }
      f.runvars.push_back({j.job, "retest_of", original.str(), false});
    }
    if (f.jobs.empty()) return Status::invalid_argument("flight " + original.str() + " has none of the jobs to retest");
    auto created = store.create_flight(f);
    if (!created) return created.error();
    id = *created;
    say("flight " + id->str() + ": real-retest of flight " + original.str() + " (" + join(names) + ")");
  }
  auto lock = RunLock::acquire(config, *id);
  if (!lock) return lock.error();
  auto ran = run(config, store, hosts, *id, options);
  if (!ran) return ran.error();
  if (options.cancel && options.cancel->draining()) {
    return Status::unavailable("retest flight " + id->str() + " drained", "it resumes at the next start");
  }
  return *id;
}

}  // namespace pushgate::flight
