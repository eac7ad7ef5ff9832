#pragma once
/// The shared host allocator: which free, enabled hosts a job's roles get.
/// Exclusivity is enforced in the store, so two processes never hold the
/// same host.

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <pushgate/ids.hpp>
#include <pushgate/status.hpp>
#include <pushgate/store.hpp>

namespace pushgate::scheduler {

/// role -> required flags. A flag "equiv-*" in several roles means those
/// roles must get hosts sharing one equiv-X flag (alike hardware).
using RoleFlags = std::map<std::string, std::vector<std::string>>;

/// role -> host name.
using Allocation = std::map<std::string, std::string>;

/// A job asking for hosts, and what ranks it (SPEC section 4): higher
/// branch priority, older flight, build jobs before test jobs, the longer
/// remaining path (critical path first), then by name.
struct Candidate {
  FlightId flight;
  std::string job;
  bool build = false;
  int priority = 0;
  /// Expected seconds from this job's start to its flight's end (remaining_paths).
  std::int64_t remaining = 0;
};
/// A role flag "host:NAME" is met by host NAME only (a pinned role).
inline const char* kHostFlagPrefix = "host:";

/// Sort into allocation order.
void order(std::vector<Candidate>& ready);

/// Try to take hosts for every role of `me` at once.
/// - a value: all roles allocated (recorded in the store);
/// - nullopt: eligible hosts exist but are busy now: try again later;
/// - not_found: no enabled host could ever satisfy a role; the message names
///   the flags (the job is starved).
/// Jobs waiting (store::Store::set_waiting) that rank above this one
/// (`order`) keep first claim on the free hosts they could use.
/// `alive` says whether a flight's runner still lives (SPEC section 4: every
/// waiter and holder has an owner): waiters of dead flights are ignored and
/// purged, hosts they hold are released. Empty: every owner is alive.
using OwnerAlive = std::function<bool(FlightId)>;
/// `avoid`: hosts to give the job only when no other free host fits (the
/// hosts a broken attempt ran on, issue 12 item 5).
Result<std::optional<Allocation>> try_allocate(store::Store& store, const Candidate& me, const RoleFlags& roles,
                                               const OwnerAlive& alive = {}, const std::set<std::string>& avoid = {});

/// Critical-path-first allocation (issue 13 item 5): a job's duration and
/// the jobs of its flight that depend on it.
struct JobShape {
  std::int64_t seconds = 0;
  std::vector<std::string> depends;  ///< names outside the map are ignored (earlier flights)
};
/// For every job: its own seconds plus the longest chain of jobs waiting
/// for it, to the end of the flight (a dependency cycle counts once).
std::map<std::string, std::int64_t> remaining_paths(const std::map<std::string, JobShape>& jobs);

/// Expected seconds of each job (name -> is it a build job): the median of
/// its last `history` runs (store::Store::job_durations); a job never run
/// gets the median of the estimates of its kind in `jobs`, else
/// `default_seconds`.
Result<std::map<std::string, std::int64_t>> expected_durations(const store::Store& store,
                                                               const std::map<std::string, bool>& jobs,
                                                               int history = 5, std::int64_t default_seconds = 1800);

/// "role=flag,flag;role=flag" for store::Store::Waiter::roles, and back.
std::string encode_roles(const RoleFlags& roles);
RoleFlags decode_roles(const std::string& text);

}  // namespace pushgate::scheduler
