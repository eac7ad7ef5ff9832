// Critical-path-first allocation (SPEC section 4, issue 13 item 5): among
// waiting jobs of one flight and priority, the one with the longest expected
// path to the flight's end goes first. Builds head the longest paths; a long
// test before a short one keeps the flight's tail short.

#include <pushgate/scheduler.hpp>

#include <algorithm>
#include <functional>

namespace pushgate::scheduler {
namespace {

std::int64_t median(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

std::map<std::string, std::int64_t> remaining_paths(const std::map<std::string, JobShape>& jobs) {
  // Who waits for whom, inside this flight.
  std::map<std::string, std::vector<std::string>> dependents;
  for (const auto& [name, shape] : jobs) {
    for (const auto& d : shape.depends) {
      if (jobs.count(d)) dependents[d].push_back(name);
    }
  }
  std::map<std::string, std::int64_t> out;
  std::map<std::string, int> state;  // 1: on the current path, 2: done
  std::function<std::int64_t(const std::string&)> visit = [&](const std::string& name) -> std::int64_t {
    if (state[name] == 2) return out[name];
    if (state[name] == 1) return 0;  // a cycle (config check refuses them): count it once
    state[name] = 1;
    std::int64_t after = 0;
    for (const auto& k : dependents[name]) after = std::max(after, visit(k));
    state[name] = 2;
    return out[name] = jobs.at(name).seconds + after;
  };
  for (const auto& [name, shape] : jobs) visit(name);
  return out;
}

Result<std::map<std::string, std::int64_t>> expected_durations(const store::Store& store,
                                                               const std::map<std::string, bool>& jobs, int history,
                                                               std::int64_t default_seconds) {
  std::map<std::string, std::int64_t> out;
  std::map<bool, std::vector<std::int64_t>> known;  // by kind (build?)
  for (const auto& [name, build] : jobs) {
    auto runs = store.job_durations(name, history);
    if (!runs) return runs.error();
    if (runs->empty()) continue;
    out[name] = median(*runs);
    known[build].push_back(out[name]);
  }
  for (const auto& [name, build] : jobs) {
    if (out.count(name)) continue;
    out[name] = known[build].empty() ? default_seconds : median(known[build]);
  }
  return out;
}

}  // namespace pushgate::scheduler
