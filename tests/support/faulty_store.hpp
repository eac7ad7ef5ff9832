#pragma once
// A Store that forwards to a real one and can die at a chosen point, to
// test crash recovery (google/leveldb's FaultInjectionTestEnv, for our store).

#include <unistd.h>

#include <memory>

#include <pushgate/store.hpp>

namespace pushgate::test {

class FaultyStore final : public store::Store {
 public:
  explicit FaultyStore(store::Store& real) : s_(real) {}
  explicit FaultyStore(std::unique_ptr<store::Store> owned) : owned_(std::move(owned)), s_(*owned_) {}

  // Crash points: kill the process (as kill -9 would, no clean-up) ...
  int die_after_step_result = 0;         ///< ... once step N of a job has a committed result
  std::int64_t only_in_flight = 0;       ///< ... (that step: only in this flight, when set)
  bool die_before_push_intent = false;   ///< ... after the verdict, before the push intent
  bool die_after_push_intent = false;    ///< ... right after the push intent is committed
  bool die_after_push_finished = false;  ///< ... after the push and its outcome, before the flight's outcome
  bool die_after_release_hosts = false;  ///< ... once a job has given back its hosts
  bool die_after_frozen_intent = false;  ///< ... once a frozen-ref change's intent is committed
  bool die_before_frozen_finish = false; ///< ... after the frozen change was pushed, before its outcome

  int schema_version() const override { return s_.schema_version(); }
  std::vector<std::string> prepared_statements() const override { return s_.prepared_statements(); }
  const std::string& path() const override { return s_.path(); }
  Result<FlightId> create_flight(const store::NewFlight& f) override { return s_.create_flight(f); }
  Result<store::Flight> get_flight(FlightId id) const override { return s_.get_flight(id); }
  Result<std::vector<store::Flight>> list_flights(const store::FlightFilter& f) const override { return s_.list_flights(f); }
  Result<void> set_flight_times(FlightId id, std::optional<std::int64_t> a, std::optional<std::int64_t> b) override {
    return s_.set_flight_times(id, a, b);
  }
  Result<void> set_flight_outcome(FlightId id, const std::string& o) override { return s_.set_flight_outcome(id, o); }
  Result<std::vector<store::Job>> list_jobs(FlightId id) const override { return s_.list_jobs(id); }
  Result<void> set_job_status(FlightId id, const std::string& j, const std::string& st, const std::string& r) override {
    return s_.set_job_status(id, j, st, r);
  }
  Result<std::vector<store::Step>> list_steps(FlightId id) const override { return s_.list_steps(id); }
  Result<void> put_step(const store::Step& st) override {
    auto r = s_.put_step(st);
    if (die_after_step_result && st.stepno == die_after_step_result && st.status != "running" &&
        (!only_in_flight || st.flight.value == only_in_flight)) {
      _exit(137);
    }
    return r;
  }
  Result<std::vector<StepAttempt>> list_step_attempts(FlightId id) const override { return s_.list_step_attempts(id); }
  Result<void> requeue_job(FlightId id, const std::string& j, const std::string& r) override {
    return s_.requeue_job(id, j, r);
  }
  Result<std::vector<RunvarAttempt>> list_runvar_attempts(FlightId id) const override {
    return s_.list_runvar_attempts(id);
  }
  Result<std::vector<store::Runvar>> list_runvars(FlightId id, const std::string& j) const override {
    return s_.list_runvars(id, j);
  }
  Result<void> set_runvar(FlightId id, const store::Runvar& v) override { return s_.set_runvar(id, v); }
  Result<bool> revision_tested(const std::string& b, const std::string& t, const std::string& r) const override {
    return s_.revision_tested(b, t, r);
  }
  Result<std::optional<std::pair<FlightId, std::string>>> last_tolerable_revision(const std::string& b,
                                                                                   const std::string& t) const override {
    return s_.last_tolerable_revision(b, t);
  }
  Result<std::vector<FlightId>> flights_with_runvar(const std::string& b, const std::string& n,
                                                    const std::string& v) const override {
    return s_.flights_with_runvar(b, n, v);
  }
  Result<std::optional<FlightId>> first_pass(const std::string& b, const std::string& j,
                                             const std::string& t) const override {
    return s_.first_pass(b, j, t);
  }
  Result<std::int64_t> record_verdict(const StoredVerdict& v) override { return s_.record_verdict(v); }
  Result<std::vector<StoredVerdict>> verdicts(FlightId f) const override { return s_.verdicts(f); }
  Result<std::int64_t> record_push_intent(const Push& p) override {
    if (die_before_push_intent) _exit(137);
    auto r = s_.record_push_intent(p);
    if (die_after_push_intent) _exit(137);
    return r;
  }
  Result<void> finish_push(std::int64_t id, const std::string& st, const std::string& m) override {
    auto r = s_.finish_push(id, st, m);
    if (die_after_push_finished) _exit(137);
    return r;
  }
  Result<std::optional<Push>> push_of_flight(FlightId id) const override { return s_.push_of_flight(id); }
  Result<std::map<std::string, int>> consecutive_push_failures() const override { return s_.consecutive_push_failures(); }
  Result<std::vector<Push>> pending_pushes() const override { return s_.pending_pushes(); }
  Result<std::vector<Push>> pushes(const std::string& b, int l) const override { return s_.pushes(b, l); }
  Result<void> set_branch_blocked(const std::string& b, bool x, const std::string& w, const std::string& r) override {
    return s_.set_branch_blocked(b, x, w, r);
  }
  Result<std::optional<std::string>> branch_blocked(const std::string& b) const override { return s_.branch_blocked(b); }
  Result<void> record_branch_audit(const BranchAudit& e) override { return s_.record_branch_audit(e); }
  Result<std::vector<BranchAudit>> branch_audit(const std::string& b, int l) const override {
    return s_.branch_audit(b, l);
  }
  Result<void> sync_hosts(const std::vector<store::Host>& h) override { return s_.sync_hosts(h); }
  Result<std::vector<store::Host>> list_hosts() const override { return s_.list_hosts(); }
  Result<void> set_host_state(const std::string& h, const std::string& st, const std::string& r) override {
    return s_.set_host_state(h, st, r);
  }
  Result<bool> try_allocate_host(const std::string& h, FlightId f, const std::string& j, const std::string& r) override {
    return s_.try_allocate_host(h, f, j, r);
  }
  Result<void> set_waiting(const Waiter& w) override { return s_.set_waiting(w); }
  Result<void> clear_waiting(FlightId f, const std::string& j) override { return s_.clear_waiting(f, j); }
  Result<std::vector<Waiter>> waiters() const override { return s_.waiters(); }
  Result<std::vector<std::int64_t>> job_durations(const std::string& j, int l) const override {
    return s_.job_durations(j, l);
  }
  Result<void> release_hosts(FlightId f, const std::string& j) override {
    auto r = s_.release_hosts(f, j);
    if (die_after_release_hosts) _exit(137);
    return r;
  }
  Result<bool> record_host_result(const std::string& h, const std::string& st, int q) override {
    return s_.record_host_result(h, st, q);
  }
  Result<std::vector<HostEvent>> host_history(const std::string& h, int l) const override { return s_.host_history(h, l); }
  Result<std::vector<JobRun>> job_history(const std::string& b, const std::string& j, const std::string& t,
                                          int l) const override {
    return s_.job_history(b, j, t, l);
  }
  Result<std::vector<std::pair<FlightId, std::vector<store::Runvar>>>> find_builds(const std::string& j,
                                                                                   const std::string& i,
                                                                                   FlightId b) const override {
    return s_.find_builds(j, i, b);
  }
  Result<Recovery> recover_after_restart(const std::string& r, const std::function<bool(FlightId)>& u) override {
    return s_.recover_after_restart(r, u);
  }
  Result<Counts> counts() const override { return s_.counts(); }
  Result<std::int64_t> record_frozen_change(const store::FrozenChange& c) override {
    auto r = s_.record_frozen_change(c);
    if (c.state == "intent") at(die_after_frozen_intent);
    return r;
  }
  Result<void> finish_frozen_change(std::int64_t id, const std::string& state, const std::string& note) override {
    at(die_before_frozen_finish);
    return s_.finish_frozen_change(id, state, note);
  }
  Result<std::vector<store::FrozenChange>> pending_frozen_changes() const override {
    return s_.pending_frozen_changes();
  }
  Result<std::vector<store::FrozenChange>> frozen_history(const std::string& t, const std::string& b,
                                                          int l) const override {
    return s_.frozen_history(t, b, l);
  }

  Result<std::int64_t> create_bisection(const BisectionRow& r) override { return s_.create_bisection(r); }
  Result<BisectionRow> get_bisection(std::int64_t id) const override { return s_.get_bisection(id); }
  Result<std::vector<BisectionRow>> list_bisections(const BisectionFilter& f) const override {
    return s_.list_bisections(f);
  }
  Result<std::vector<BisectionRow>> bisections_of_flight(FlightId f) const override { return s_.bisections_of_flight(f); }
  Result<void> update_bisection(std::int64_t id, const std::string& st, const std::string& r, const std::string& state,
                                const std::vector<BisectionNode>& n) override {
    return s_.update_bisection(id, st, r, state, n);
  }
  Result<std::vector<BisectionNode>> bisection_nodes(std::int64_t id) const override { return s_.bisection_nodes(id); }
  Result<FlightId> create_probe_flight(std::int64_t b, const store::NewFlight& f, const std::string& n,
                                       const std::string& w) override {
    return s_.create_probe_flight(b, f, n, w);
  }
  Result<std::vector<BisectionProbe>> bisection_probes(std::int64_t id) const override {
    return s_.bisection_probes(id);
  }
  Result<std::vector<FlightId>> finished_flights_with_job_runvar(const std::string& j, const std::string& n,
                                                                const std::string& v) const override {
    return s_.finished_flights_with_job_runvar(j, n, v);
  }

  Result<int> enqueue_notifications(const std::vector<Notification>& n) override { return s_.enqueue_notifications(n); }
  Result<std::vector<Notification>> due_notifications(std::int64_t now, int limit) const override {
    return s_.due_notifications(now, limit);
  }
  Result<std::vector<RevisionHit>> flights_with_revision(const std::vector<std::string>& names, const std::string& prefix,
                                                         int limit) const override {
    return s_.flights_with_revision(names, prefix, limit);
  }
  Result<bool> claim_notification(const Notification& n, std::int64_t until) override {
    return s_.claim_notification(n, until);
  }
  Result<void> finish_notification(std::int64_t id, const std::string& st, const std::string& e, std::int64_t at) override {
    return s_.finish_notification(id, st, e, at);
  }
  Result<std::vector<Notification>> notifications_of(const std::string& e, std::int64_t id) const override {
    return s_.notifications_of(e, id);
  }

  Result<void> put_artifact(const store::Store::Artifact& a) override { return s_.put_artifact(a); }
  Result<std::vector<store::Store::Artifact>> list_artifacts(FlightId f, const std::string& j) const override {
    return s_.list_artifacts(f, j);
  }
  Result<std::vector<store::Store::Artifact>> artifact_history(const std::string& b, const std::string& j,
                                                               const std::string& k, int n) const override {
    return s_.artifact_history(b, j, k, n);
  }
  Result<void> accept_abi(const std::vector<store::Store::AbiAcceptance>& a) override { return s_.accept_abi(a); }
  Result<std::vector<store::Store::AbiAcceptance>> abi_acceptances(const std::string& b,
                                                                   const std::string& k) const override {
    return s_.abi_acceptances(b, k);
  }

 private:
  static void at(bool crash) {
    if (crash) _exit(137);
  }
  std::unique_ptr<store::Store> owned_;
  store::Store& s_;
};

}  // namespace pushgate::test
