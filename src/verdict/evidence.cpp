// Reading flights and the evidence the verdict compares against. Candidate
// flights come from the runvars (name, value) index, never a scan.

#include <pushgate/verdict.hpp>

#include <algorithm>
#include <set>
#include <sstream>

namespace pushgate::verdict {

std::vector<std::pair<FlightId, std::string>> build_refs(FlightId here, const std::map<std::string, std::string>& vars) {
  std::vector<std::string> names;
  for (const auto& [k, v] : vars) {
    if (k.ends_with("buildjob")) names.push_back(v);
    if (k == "buildjobs") {
      std::stringstream ss(v);
      std::string one;
      while (std::getline(ss, one, ',')) names.push_back(one);
    }
  }
  std::vector<std::pair<FlightId, std::string>> out;
  for (const std::string& n : names) {
    if (n.empty()) continue;
    auto dot = n.find('.');
    bool other = dot != std::string::npos && dot > 0 && dot < 18 &&
                 std::all_of(n.begin(), n.begin() + static_cast<long>(dot), [](char c) { return c >= '0' && c <= '9'; });
    if (other) out.push_back({FlightId{std::stoll(n.substr(0, dot))}, n.substr(dot + 1)});
    else out.push_back({here, n});
  }
  return out;
}

namespace {

void collect_built(const FlightRunvars& all, FlightId f, const std::string& job,
                   std::map<std::string, std::set<std::string>>& built, std::set<std::string>& visited) {
  if (is_prev_job(job) || !visited.insert(f.str() + "." + job).second) return;
  auto fl = all.find(f.value);
  if (fl == all.end()) return;
  auto it = fl->second.find(job);
  if (it == fl->second.end()) return;
  for (const auto& [k, v] : it->second) {
    if (k.starts_with("built_revision_") && !v.empty()) built[k.substr(15)].insert(v);
  }
  for (const auto& [bf, bj] : build_refs(f, it->second)) collect_built(all, bf, bj, built, visited);
}

}  // namespace

std::map<std::string, std::set<std::string>> built_revisions(FlightId f, const FlightRunvars& all) {
  std::map<std::string, std::set<std::string>> built;
  std::set<std::string> visited;
  auto fl = all.find(f.value);
  if (fl == all.end()) return built;
  for (const auto& [job, vars] : fl->second) collect_built(all, f, job, built, visited);
  return built;
}

namespace {

/// Read flight `id`'s runvars and those of every flight its build references reach.
Result<FlightRunvars> read_runvars(const store::Store& store, FlightId id) {
  FlightRunvars all;
  std::vector<FlightId> todo{id};
  while (!todo.empty()) {
    FlightId f = todo.back();
    todo.pop_back();
    if (all.count(f.value)) continue;
    auto vars = store.list_runvars(f);
    if (!vars) {
      if (f == id || vars.error().code() != StatusCode::not_found) return vars.error();
      continue;
    }
    auto& m = all[f.value];
    for (const auto& v : *vars) m[v.job][v.name] = v.value;
    for (const auto& [job, named] : m) {
      for (const auto& [bf, bj] : build_refs(f, named)) {
        if (!all.count(bf.value)) todo.push_back(bf);
      }
    }
  }
  return all;
}

}  // namespace

Result<FlightData> load_flight(const store::Store& store, FlightId id) {
  auto f = store.get_flight(id);
  if (!f) return f.error();
  auto jobs = store.list_jobs(id);
  if (!jobs) return jobs.error();
  auto steps = store.list_steps(id);
  if (!steps) return steps.error();
  auto all = read_runvars(store, id);
  if (!all) return all.error();
  auto records = store.list_artifacts(id);
  if (!records) return records.error();
  FlightData d;
  d.id = id;
  d.branch = f->branch;
  d.blessing = f->blessing;
  d.finished = f->finished.has_value();
  std::set<std::string> build_jobs;
  for (const auto& [job, named] : (*all)[id.value]) {
    if (named.count("build_inputs")) build_jobs.insert(job);
    for (const auto& [k, v] : named) {
      if (k.starts_with("revision_")) d.revisions.emplace(k.substr(9), v);
      if (k == "retest_of" && !v.empty() && v.size() < 18 &&
          std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        d.retest_of = FlightId{std::stoll(v)};
      }
    }
  }
  d.built = built_revisions(id, *all);
  for (const auto& j : *jobs) {
    FlightData::Job job{j.job, j.status, build_jobs.count(j.job) > 0 || j.job.starts_with("build-"), {}};
    for (const auto& s : *steps) {
      if (s.job == j.job) job.steps.push_back({s.stepno, s.testid, s.status});
    }
    for (const auto& r : *records) {
      if (r.job == j.job) job.abi[r.key] = {r.digest, r.stepno};
    }
    d.jobs.push_back(std::move(job));
  }
  return d;
}

namespace {

/// Flights of the branch with a real blessing having built_revision_<tree>
/// or revision_<tree> = `rev`, newest first, at most `limit`.
Result<std::vector<FlightId>> candidates(const store::Store& store, const std::string& branch, const std::string& tree,
                                         const std::string& rev, std::size_t limit) {
  std::set<std::int64_t> ids;
  if (rev.empty()) return std::vector<FlightId>{};
  for (const char* prefix : {"built_revision_", "revision_"}) {
    auto c = store.flights_with_runvar(branch, prefix + tree, rev);
    if (!c) return c.error();
    for (auto f : *c) ids.insert(f.value);
  }
  std::vector<FlightId> out;
  for (auto i = ids.rbegin(); i != ids.rend() && out.size() < limit; ++i) out.push_back(FlightId{*i});
  return out;
}

}  // namespace

Result<Evidence> gather(const store::Store& store, const FlightData& flight, const std::string& tree_under_test,
                        const std::string& basis) {
  constexpr std::size_t kLimit = 30;  // per revision: plenty for the strongest comparison and a heisenbug
  std::vector<FlightId> ids;
  for (const std::string& rev : {basis, flight.tested(tree_under_test)}) {
    auto c = candidates(store, flight.branch, tree_under_test, rev, kLimit + 1);
    if (!c) return c.error();
    ids.insert(ids.end(), c->begin(), c->end());
  }
  std::sort(ids.begin(), ids.end(), [](FlightId a, FlightId b) { return b < a; });
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::vector<FlightData> loaded;
  for (FlightId id : ids) {
    if (id == flight.id) continue;
    auto d = load_flight(store, id);
    if (!d) return d.error();
    loaded.push_back(std::move(*d));
  }
  // Rule 4 asks, for every non-pass step of ours and of the flights that may
  // become heisenbug flights, whether it ever passed before.
  std::map<std::string, FlightId> first_pass;
  std::set<std::string> asked;
  auto ask = [&](const FlightData& f) -> Status {
    for (const auto& j : f.jobs) {
      for (const auto& s : j.steps) {
        std::string key = j.name + "\n" + s.testid;
        if (s.status == "pass" || !asked.insert(key).second) continue;
        auto p = store.first_pass(flight.branch, j.name, s.testid);
        if (!p) return p.error();
        if (*p) first_pass[key] = **p;
      }
    }
    return {};
  };
  Evidence ev = select_evidence(flight, loaded, tree_under_test, basis);
  if (Status s = ask(flight); !s.ok()) return s;
  for (const auto& h : ev.same_revisions) {
    if (Status s = ask(h); !s.ok()) return s;
  }
  ev.first_pass = std::move(first_pass);
  bool any_record = std::any_of(flight.jobs.begin(), flight.jobs.end(), [](const auto& j) { return !j.abi.empty(); });
  if (any_record) {
    auto accepted = store.abi_acceptances(flight.branch);
    if (!accepted) return accepted.error();
    for (const auto& a : *accepted) ev.abi_accepted[a.job + "\n" + a.key] = {a.flight, a.digest};  // oldest first: the newest wins
  }
  return ev;
}

}  // namespace pushgate::verdict
