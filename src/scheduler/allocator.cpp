#include <pushgate/scheduler.hpp>

#include <algorithm>
#include <set>

namespace pushgate::scheduler {
namespace {

bool has_flags(const store::Host& h, const std::vector<std::string>& flags) {
  return std::all_of(flags.begin(), flags.end(), [&](const std::string& f) {
    if (f.rfind(kHostFlagPrefix, 0) == 0) return h.host == f.substr(std::string(kHostFlagPrefix).size());
    return f == "equiv-*" || std::find(h.flags.begin(), h.flags.end(), f) != h.flags.end();
  });
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "(none)" : out;
}

bool wants_equiv(const std::vector<std::string>& flags) {
  return std::find(flags.begin(), flags.end(), "equiv-*") != flags.end();
}

/// Distinct hosts from `hosts` for as many roles as they can fill, `extra`
/// flag required of equiv roles.
Allocation fill(const std::vector<const store::Host*>& hosts, const RoleFlags& roles, const std::string& extra) {
  Allocation out;
  std::set<std::string> used;
  for (const auto& [role, flags] : roles) {
    std::vector<std::string> need = flags;
    if (!extra.empty() && wants_equiv(flags)) need.push_back(extra);
    for (const store::Host* h : hosts) {
      if (!used.count(h->host) && has_flags(*h, need)) {
        used.insert(h->host);
        out[role] = h->host;
        break;
      }
    }
  }
  return out;
}

/// Hosts for every role, or empty when impossible.
Allocation pick(const std::vector<const store::Host*>& hosts, const RoleFlags& roles, const std::string& extra) {
  Allocation out = fill(hosts, roles, extra);
  return out.size() == roles.size() ? out : Allocation{};
}

/// The `extra` flags to try for `roles`: {""} when no role wants an equiv-*
/// pair, else every equiv-X flag of `hosts` (none: no group can serve).
std::vector<std::string> equiv_groups(const std::vector<const store::Host*>& hosts, const RoleFlags& roles) {
  if (std::none_of(roles.begin(), roles.end(), [](const auto& r) { return wants_equiv(r.second); })) return {""};
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto* h : hosts) {
    for (const auto& f : h->flags) {
      if (f.starts_with("equiv-") && seen.insert(f).second) out.push_back(f);
    }
  }
  return out;
}

/// The free hosts a waiting job claims: as many of its roles as `hosts` can
/// fill now, in the one equiv-* group that fills most. A partial claim is a
/// reservation: a pair job waiting for its second host of a group keeps the
/// first, or jobs needing one host would take every host as it frees and
/// the pair would wait until two of a group happened to free at once.
Allocation claim(const std::vector<const store::Host*>& hosts, const RoleFlags& roles) {
  Allocation best;
  for (const auto& e : equiv_groups(hosts, roles)) {
    Allocation a = fill(hosts, roles, e);
    if (a.size() > best.size()) best = a;
  }
  return best;
}

}  // namespace

std::string encode_roles(const RoleFlags& roles) {
  std::string out;
  for (const auto& [role, flags] : roles) {
    if (!out.empty()) out += ";";
    out += role + "=";
    for (std::size_t i = 0; i < flags.size(); ++i) out += (i ? "," : "") + flags[i];
  }
  return out;
}

RoleFlags decode_roles(const std::string& text) {
  RoleFlags out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(';', start);
    std::string part = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    auto eq = part.find('=');
    std::vector<std::string> flags;
    std::string list = eq == std::string::npos ? "" : part.substr(eq + 1);
    for (std::size_t a = 0; a < list.size();) {
      std::size_t b = list.find(',', a);
      flags.push_back(list.substr(a, b == std::string::npos ? std::string::npos : b - a));
      if (b == std::string::npos) break;
      a = b + 1;
    }
    out[part.substr(0, eq)] = flags;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

Result<std::optional<Allocation>> try_allocate(store::Store& store, const Candidate& me, const RoleFlags& roles,
                                               const OwnerAlive& alive, const std::set<std::string>& avoid) {
  const FlightId flight = me.flight;
  const std::string& job = me.job;
  if (roles.empty()) return std::optional<Allocation>(Allocation{});
  auto all = store.list_hosts();
  if (!all) return all.error();
  auto owner_alive = [&](FlightId f) { return f == flight || !alive || alive(f); };
  // A host held by a flight nobody runs any more is free: give it back.
  for (auto& h : *all) {
    if (h.held_flight && !owner_alive(*h.held_flight)) {
      auto rel = store.release_hosts(*h.held_flight, h.held_job);
      if (!rel) return rel.error();
      h.held_flight.reset();
      h.held_job.clear();
    }
  }
  std::vector<const store::Host*> enabled, free;
  for (const auto& h : *all) {
    if (h.state != "enabled") continue;
    enabled.push_back(&h);
    if (!h.held_flight) free.push_back(&h);
  }
  // Could any enabled hosts ever serve every role? If not, say which role.
  bool any_equiv = std::any_of(roles.begin(), roles.end(), [](const auto& r) { return wants_equiv(r.second); });
  std::vector<std::string> equiv_flags = equiv_groups(enabled, roles);
  bool possible = false;
  for (const auto& e : equiv_flags) possible = possible || !pick(enabled, roles, e).empty();
  if (!possible) {
    for (const auto& [role, flags] : roles) {
      bool some = std::any_of(enabled.begin(), enabled.end(), [&](const auto* h) { return has_flags(*h, flags); });
      if (!some) {
        return Status::not_found("no enabled host has flags " + join(flags) + " (role " + role + ")");
      }
    }
    return Status::not_found(any_equiv ? "no set of enabled hosts shares one equiv-* flag for roles of job " + job
                                       : "not enough distinct enabled hosts for the roles of job " + job);
  }
  // Waiting jobs that rank above this one claim, in rank order, the free
  // hosts they could use; this job takes only what is left.
  auto waiting = store.waiters();
  if (!waiting) return waiting.error();
  auto candidate = [](const store::Store::Waiter& w) { return Candidate{w.flight, w.job, w.build, w.priority, w.remaining}; };
  std::vector<store::Store::Waiter> above;
  for (const auto& w : *waiting) {
    if (w.flight == flight && w.job == job) continue;
    if (!owner_alive(w.flight)) {  // left by a dead process: no claim, and gone
      auto c = store.clear_waiting(w.flight, w.job);
      if (!c) return c.error();
      continue;
    }
    std::vector<Candidate> pair{me, candidate(w)};
    order(pair);
    if (pair.front().job != job || pair.front().flight != flight) above.push_back(w);
  }
  std::sort(above.begin(), above.end(), [&](const auto& a, const auto& b) {
    std::vector<Candidate> pair{candidate(a), candidate(b)};
    order(pair);
    return pair.front().flight == a.flight && pair.front().job == a.job;
  });
  for (const auto& w : above) {
    for (const auto& [role, host] : claim(free, decode_roles(w.roles))) {
      free.erase(std::remove_if(free.begin(), free.end(), [&](const auto* h) { return h->host == host; }), free.end());
    }
  }
  // Hosts to avoid (where the job broke before) are a cost, not a filter:
  // the other free hosts first, then all of them.
  std::vector<const store::Host*> preferred;
  for (const auto* h : free) {
    if (!avoid.count(h->host)) preferred.push_back(h);
  }
  for (const auto* pool : {&preferred, &free}) {
    if (pool == &free && preferred.size() == free.size()) break;
    for (const auto& e : equiv_flags) {
      Allocation a = pick(*pool, roles, e);
      if (a.empty()) continue;
      bool all_taken = true;
      for (const auto& [role, host] : a) {
        auto took = store.try_allocate_host(host, flight, job, role);
        if (!took) {
          (void)store.release_hosts(flight, job);
          return took.error();
        }
        if (!*took) {  // another process was faster: give back what we took, retry later
          all_taken = false;
          break;
        }
      }
      if (all_taken) return std::optional<Allocation>(a);
      auto rel = store.release_hosts(flight, job);
      if (!rel) return rel.error();
      return std::optional<Allocation>{};
    }
  }
  return std::optional<Allocation>{};
}

void order(std::vector<Candidate>& ready) {
  std::stable_sort(ready.begin(), ready.end(), [](const Candidate& a, const Candidate& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    if (a.flight != b.flight) return a.flight < b.flight;
    if (a.build != b.build) return a.build;
    if (a.remaining != b.remaining) return a.remaining > b.remaining;
    return a.job < b.job;
  });
}

}  // namespace pushgate::scheduler
