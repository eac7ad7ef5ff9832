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

/// Try to take hosts for every role at once.
/// - a value: all roles allocated (recorded in the store);
/// - nullopt: eligible hosts exist but are busy now: try again later;
/// - not_found: no enabled host could ever satisfy a role; the message names
///   the flags (the job is starved).
/// Jobs waiting (store::Store::set_waiting) that rank above this one
/// (`priority`, `build`) keep first claim on the free hosts they could use.
/// `alive` says whether a flight's runner still lives (SPEC section 4: every
/// waiter and holder has an owner): waiters of dead flights are ignored and
/// purged, hosts they hold are released. Empty: every owner is alive.
using OwnerAlive = std::function<bool(FlightId)>;
/// `avoid`: hosts to give the job only when no other free host fits (the
/// hosts a broken attempt ran on, issue 12 item 5).
Result<std::optional<Allocation>> try_allocate(store::Store& store, FlightId flight, const std::string& job,
                                               const RoleFlags& roles, int priority = 0, bool build = false,
                                               const OwnerAlive& alive = {}, const std::set<std::string>& avoid = {});

/// "role=flag,flag;role=flag" for store::Store::Waiter::roles, and back.
std::string encode_roles(const RoleFlags& roles);
RoleFlags decode_roles(const std::string& text);

/// Jobs ready to run, in allocation order: higher branch priority, older
/// flight, build jobs before test jobs, then by name.
struct Candidate {
  FlightId flight;
  std::string job;
  bool build = false;
  int priority = 0;
};
void order(std::vector<Candidate>& ready);

}  // namespace pushgate::scheduler
