// Reading flights and the evidence the verdict compares against. Candidate
// flights come from the runvars (name, value) index, never a scan.

#include <pushgate/verdict.hpp>

#include <algorithm>
#include <set>

namespace pushgate::verdict {

Result<FlightData> load_flight(const store::Store& store, FlightId id) {
  auto f = store.get_flight(id);
  if (!f) return f.error();
  auto jobs = store.list_jobs(id);
  if (!jobs) return jobs.error();
  auto steps = store.list_steps(id);
  if (!steps) return steps.error();
  auto vars = store.list_runvars(id);
  if (!vars) return vars.error();
  FlightData d;
  d.id = id;
  d.branch = f->branch;
  d.blessing = f->blessing;
  std::set<std::string> build_jobs;
  std::map<std::string, std::string> built, input;
  for (const auto& v : *vars) {
    if (v.name == "build_inputs") build_jobs.insert(v.job);
    // Built revisions (build jobs, including reused builds copied into this
    // flight) win over input revisions.
    if (v.name.starts_with("built_revision_")) built[v.name.substr(15)] = v.value;
    else if (v.name.starts_with("revision_")) input[v.name.substr(9)] = v.value;
  }
  d.revisions = input;
  for (const auto& [t, r] : built) d.revisions[t] = r;
  for (const auto& j : *jobs) {
    FlightData::Job job{j.job, j.status, build_jobs.count(j.job) > 0 || j.job.starts_with("build-"), {}};
    for (const auto& s : *steps) {
      if (s.job == j.job) job.steps.push_back({s.stepno, s.testid, s.status});
    }
    d.jobs.push_back(std::move(job));
  }
  return d;
}

namespace {

/// Real flights of the branch (before `before` when set) whose revisions
/// equal `revs`, newest first, at most `limit`.
Result<std::vector<FlightData>> flights_matching(const store::Store& store, const std::string& branch,
                                                 const std::string& tree, const std::map<std::string, std::string>& revs,
                                                 FlightId exclude, std::optional<FlightId> before, std::size_t limit) {
  auto it = revs.find(tree);
  if (it == revs.end() || it->second.empty()) return std::vector<FlightData>{};
  std::set<std::int64_t> ids;
  for (const char* prefix : {"built_revision_", "revision_"}) {
    auto c = store.flights_with_runvar(branch, prefix + tree, it->second);
    if (!c) return c.error();
    for (auto f : *c) ids.insert(f.value);
  }
  std::vector<FlightData> out;
  for (auto i = ids.rbegin(); i != ids.rend() && out.size() < limit; ++i) {
    FlightId id{*i};
    if (id == exclude || (before && !(id < *before))) continue;
    auto d = load_flight(store, id);
    if (!d) return d.error();
    bool same = std::all_of(revs.begin(), revs.end(), [&](const auto& kv) {
      auto r = d->revisions.find(kv.first);
      return r != d->revisions.end() && r->second == kv.second;
    });
    if (same) out.push_back(std::move(*d));
  }
  return out;
}

}  // namespace

Result<Evidence> gather(const store::Store& store, const FlightData& flight, const std::string& tree_under_test,
                        const std::string& basis) {
  Evidence ev;
  std::map<std::string, std::string> baseline = flight.revisions;
  if (!basis.empty()) {
    baseline[tree_under_test] = basis;
    auto b = flights_matching(store, flight.branch, tree_under_test, baseline, flight.id, flight.id, 20);
    if (!b) return b.error();
    ev.baselines = std::move(*b);
  }
  auto same = flights_matching(store, flight.branch, tree_under_test, flight.revisions, flight.id, std::nullopt, 20);
  if (!same) return same.error();
  ev.same_revisions = std::move(*same);
  std::set<std::string> asked;
  auto ask = [&](const FlightData& f) -> Status {
    for (const auto& j : f.jobs) {
      for (const auto& s : j.steps) {
        if (s.status == "pass" || !asked.insert(j.name + "\n" + s.testid).second) continue;
        auto p = store.step_ever_passed(flight.branch, j.name, s.testid);
        if (!p) return p.error();
        if (*p) ev.ever_passed.push_back(j.name + "\n" + s.testid);
      }
    }
    return {};
  };
  if (Status s = ask(flight); !s.ok()) return s;
  for (const auto& h : ev.same_revisions) {
    if (Status s = ask(h); !s.ok()) return s;
  }
  return ev;
}

}  // namespace pushgate::verdict
