// SPEC section 5 as a table: each case is our flight, the branch's history
// (every candidate flight, with what it built), the basis and an allow list,
// with the expected outcome and classification of each item. Evidence is
// chosen by select_evidence(), as gather() does from the store.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <pushgate/verdict.hpp>

namespace pushgate::verdict {
namespace {

using Steps = std::vector<std::pair<std::string, std::string>>;  // testid, status

constexpr const char* kTree = "xen";
constexpr const char* kBasis = "A";   // the tested ref when our flight was made
constexpr const char* kTested = "B";  // what our flight tests

FlightData::Job job(const std::string& name, const std::string& status, const Steps& steps = {}) {
  FlightData::Job j{name, status, name.starts_with("build-"), {}};
  int n = 0;
  for (const auto& [t, s] : steps) j.steps.push_back({++n, t, s});
  return j;
}

/// A finished real flight of xen-unstable that built xen at `built`.
FlightData flight(std::int64_t id, std::vector<FlightData::Job> jobs, const std::string& built = kTested) {
  FlightData f;
  f.id = FlightId{id};
  f.branch = "xen-unstable";
  f.jobs = std::move(jobs);
  f.revisions = {{kTree, built}, {"qemu", "Q1"}};
  if (!built.empty()) f.built[kTree] = {built};
  f.built["qemu"] = {"Q1"};
  return f;
}
FlightData base(std::int64_t id, std::vector<FlightData::Job> jobs) { return flight(id, std::move(jobs), kBasis); }

FlightData with(FlightData f, const std::function<void(FlightData&)>& change) {
  change(f);
  return f;
}

struct Expect {
  std::string job, testid, summary, category;
  std::int64_t flight = 10;
  std::string status = {};  // checked when set
};

struct Case {
  const char* name;
  FlightData ours;
  std::vector<FlightData> history;
  std::vector<std::string> allow;
  Outcome outcome;
  std::vector<Expect> steps;
  std::string subject = {};  // with pushed = tolerable
  bool never_passed = false;  // no step ever passed before (rule 4)
};

const auto kPass = job("test-amd64-amd64-xl", "pass", {{"xen-boot", "pass"}, {"guest-start", "pass"}});
const auto kFail = job("test-amd64-amd64-xl", "fail", {{"xen-boot", "pass"}, {"guest-start", "fail"}});
const auto kBroken = job("test-amd64-amd64-xl", "broken", {{"xen-boot", "pass"}, {"guest-start", "broken"}});
const auto kBuildPass = job("build-amd64", "pass", {{"build", "pass"}});
const auto kBuildFail = job("build-amd64", "fail", {{"build", "fail"}});
const auto kLvPass = job("test-amd64-amd64-libvirt", "pass", {{"guest-start", "pass"}});
const auto kLvFail = job("test-amd64-amd64-libvirt", "fail", {{"guest-start", "fail"}});
const std::string kXl = "test-amd64-amd64-xl";
const std::string kLv = "test-amd64-amd64-libvirt";

std::vector<Case> cases() {
  return {
      // Outcomes and words.
      {"all_pass_is_perfect", flight(10, {kBuildPass, kPass}), {base(5, {kBuildPass, kPass})}, {}, Outcome::perfect, {},
       "[xen-unstable test] 10: all pass - PUSHED"},
      {"baseline_flight_subject", flight(10, {kBuildPass, kPass}, kBasis), {base(5, {kBuildPass, kPass})}, {},
       Outcome::perfect, {}, ""},
      {"fail_with_pass_jobs_word", flight(10, {kBuildPass, kFail}), {base(5, {kBuildPass, kFail})}, {},
       Outcome::tolerable, {{kXl, "guest-start", "like 5", "not blocking"}},
       "[xen-unstable test] 10: tolerable FAIL - PUSHED"},
      // Rule 5: comparisons with baseline flights.
      {"like_baseline", flight(10, {kFail}), {base(5, {kFail})}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "like 5", "not blocking"}}, "[xen-unstable test] 10: tolerable ALL FAIL - PUSHED"},
      {"regression_vs_baseline", flight(10, {kBuildPass, kFail}), {base(5, {kBuildPass, kPass})}, {},
       Outcome::regressions, {{kXl, "guest-start", "REGR. vs. 5", "blocking"}},
       "[xen-unstable test] 10: regressions - FAIL"},
      {"like_beats_regr_for_test_job", flight(10, {kFail}), {base(6, {kPass}), base(5, {kFail})}, {},
       Outcome::tolerable, {{kXl, "guest-start", "like 5", "not blocking"}}},
      {"regr_wins_for_build_job", flight(10, {kBuildFail}), {base(6, {kBuildFail}), base(5, {kBuildPass})}, {},
       Outcome::regressions, {{"build-amd64", "build", "REGR. vs. 5", "blocking"}}},
      {"baseline_untested", flight(10, {kFail}), {}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "baseline untested", "not blocking"}}},
      {"broken_vs_fail_is_failed_in", flight(10, {kBroken}), {base(5, {kFail})}, {}, Outcome::problems,
       {{kXl, "guest-start", "failed in 5", "not blocking"}, {kXl, "<job status>", "broken", "blocking"}}},
      {"fail_vs_broken_is_other_status", flight(10, {kFail}), {base(5, {kBroken})}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "broken in 5", "not blocking"}}},
      {"fail_vs_starved_is_starved_in", flight(10, {kFail}),
       {base(5, {job(kXl, "fail", {{"xen-boot", "pass"}, {"guest-start", "starved"}})})}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "starved in 5", "not blocking"}}},
      {"absent_in_baseline_is_blocked_in", flight(10, {kFail}), {base(5, {job(kXl, "fail", {{"xen-boot", "fail"}})})},
       {}, Outcome::tolerable, {{kXl, "guest-start", "blocked in 5", "not blocking"}}},
      {"job_absent_in_baseline_is_untested", flight(10, {kFail}), {base(5, {kBuildPass})}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "baseline untested", "not blocking"}}},
      {"regr_beats_blocked_in", flight(10, {kFail}),
       {base(6, {job(kXl, "fail", {{"xen-boot", "fail"}})}), base(5, {kPass})}, {}, Outcome::regressions,
       {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"failed_in_beats_other_status", flight(10, {kBroken}),
       {base(6, {job(kXl, "blocked", {{"xen-boot", "pass"}, {"guest-start", "blocked"}})}), base(5, {kFail})}, {},
       Outcome::problems,
       {{kXl, "guest-start", "failed in 5", "not blocking"}, {kXl, "<job status>", "broken", "blocking"}}},
      {"newest_baseline_wins_a_tie", flight(10, {kFail}), {base(5, {kFail}), base(7, {kFail})}, {},
       Outcome::tolerable, {{kXl, "guest-start", "like 7", "not blocking"}}},
      {"newest_regr_wins_a_tie", flight(10, {kFail}), {base(7, {kPass}), base(8, {kPass})}, {}, Outcome::regressions,
       {{kXl, "guest-start", "REGR. vs. 8", "blocking"}}},
      // SPEC rule 5: only the built revision of the tree under test decides a baseline.
      {"dependency_moved_is_still_a_regression", flight(10, {kBuildPass, kFail}),
       {with(base(5, {kBuildPass, kPass}), [](FlightData& f) { f.built["qemu"] = {"Q0"}; })}, {},
       Outcome::regressions, {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"frozen_dependency_moved_is_still_a_regression", with(flight(10, {kFail}), [](FlightData& f) {
         f.built["libvirt"] = {"L2"};
       }),
       {with(base(5, {kPass}), [](FlightData& f) { f.built["libvirt"] = {"L1"}; })}, {}, Outcome::regressions,
       {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"two_builds_of_different_revisions_are_no_baseline", flight(10, {kFail}),
       {with(base(5, {kPass}), [](FlightData& f) { f.built[kTree] = {kBasis, "C"}; })}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "baseline untested", "not blocking"}}},
      {"nothing_built_is_no_baseline", flight(10, {kFail}),
       {with(base(5, {kPass}), [](FlightData& f) { f.built.erase(kTree); })}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "baseline untested", "not blocking"}}},
      {"input_revision_alone_is_no_baseline", flight(10, {kFail}),
       {with(flight(5, {kPass}, "C"), [](FlightData& f) { f.revisions[kTree] = kBasis; })}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "baseline untested", "not blocking"}}},
      // Evidence flights: finished, real, created before ours.
      {"unfinished_flight_is_no_baseline", flight(10, {kFail}),
       {with(base(5, {kPass}), [](FlightData& f) { f.finished = false; })}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "baseline untested", "not blocking"}}},
      {"later_flight_is_no_baseline", flight(10, {kFail}), {base(12, {kPass})}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "baseline untested", "not blocking"}}},
      {"adhoc_flight_is_no_baseline", flight(10, {kFail}),
       {with(base(5, {kPass}), [](FlightData& f) { f.blessing = "adhoc"; })}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "baseline untested", "not blocking"}}},
      {"play_flight_is_no_heisenbug", flight(10, {kFail}),
       {base(5, {kPass}), with(flight(8, {kPass}), [](FlightData& f) { f.blessing = "play"; })}, {},
       Outcome::regressions, {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"retest_and_bisect_flights_are_evidence", flight(10, {kFail}),
       {with(base(5, {kPass}), [](FlightData& f) { f.blessing = "real-bisect"; }),
        with(base(4, {kFail}), [](FlightData& f) { f.blessing = "adhoc"; })}, {},
       Outcome::regressions, {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"other_branch_is_no_baseline", flight(10, {kFail}),
       {with(base(5, {kPass}), [](FlightData& f) { f.branch = "xen-4.7-testing"; })}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "baseline untested", "not blocking"}}},
      {"unfinished_flight_is_no_heisenbug", flight(10, {kFail}),
       {base(5, {kPass}), with(flight(9, {kPass}), [](FlightData& f) { f.finished = false; })}, {},
       Outcome::regressions, {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"unfinished_heisenbug_candidate_leaks_no_items", flight(10, {kFail}),
       {base(5, {kPass}),
        with(flight(9, {job(kXl, "queued"), kLvPass}), [](FlightData& f) { f.finished = false; })},
       {}, Outcome::regressions, {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      // Rules 1-4.
      {"never_pass", flight(10, {kFail}), {base(5, {kPass})}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "never pass", "not blocking"}}, "", true},
      {"blocked_is_na", flight(10, {kBuildFail, job(kXl, "blocked", {{"build-check", "blocked"}})}),
       {base(5, {kBuildFail, job(kXl, "blocked", {{"build-check", "blocked"}})})}, {}, Outcome::tolerable,
       {{"build-amd64", "build", "like 5", "not blocking"}, {kXl, "build-check", "n/a", "not blocking"}}},
      {"blocked_job_without_steps_is_na", flight(10, {kBuildFail, job(kXl, "blocked")}),
       {base(5, {kBuildPass, kPass})}, {}, Outcome::regressions,
       {{"build-amd64", "build", "REGR. vs. 5", "blocking"}, {kXl, "<job status>", "n/a", "not blocking"}}},
      {"starved_job_is_na_and_pushes", flight(10, {kBuildPass, kPass, job(kLv, "starved", {{"hosts-allocate", "starved"}})}),
       {base(5, {kBuildPass, kPass, kLvPass})}, {}, Outcome::tolerable,
       {{kLv, "hosts-allocate", "n/a", "not blocking"}},
       "[xen-unstable test] 10: tolerable trouble: pass/starved - PUSHED"},
      {"starved_dependents_are_na",
       flight(10, {job("build-amd64", "starved", {{"hosts-allocate", "starved"}}),
                   job(kXl, "starved", {{"build-check", "starved"}})}),
       {base(5, {kBuildPass, kPass})}, {}, Outcome::tolerable,
       {{"build-amd64", "hosts-allocate", "n/a", "not blocking"}, {kXl, "build-check", "n/a", "not blocking"}},
       "[xen-unstable test] 10: tolerable trouble: starved - PUSHED"},
      {"starved_job_without_steps_is_na", flight(10, {kPass, job(kLv, "starved")}), {base(5, {kPass, kLvPass})}, {},
       Outcome::tolerable, {{kLv, "<job status>", "n/a", "not blocking"}}},
      {"unfinished_blocks", flight(10, {job(kXl, "running", {{"xen-boot", "running"}})}), {base(5, {kPass})}, {},
       Outcome::problems, {{kXl, "xen-boot", "unfinished", "blocking"}}, "[xen-unstable test] 10: trouble: running"},
      {"queued_job_without_steps_blocks", flight(10, {kPass, job(kLv, "queued")}), {base(5, {kPass, kLvPass})}, {},
       Outcome::problems, {{kLv, "<job status>", "queued", "blocking"}}},
      {"cancelled_job_without_steps_blocks", flight(10, {kPass, job(kLv, "cancelled")}), {base(5, {kPass, kLvPass})},
       {}, Outcome::problems, {{kLv, "<job status>", "cancelled", "blocking"}}},
      {"broken_job_without_steps_blocks", flight(10, {job(kXl, "broken")}), {base(5, {kPass})}, {}, Outcome::problems,
       {{kXl, "<job status>", "broken", "blocking"}}},
      // A broken job always carries its <job status> item (SPEC section 4/5).
      {"broken_job_with_failed_step_has_job_status_item",
       flight(10, {job(kXl, "broken", {{"guest-start", "fail"}, {"logs-capture", "broken"}})}),
       {base(5, {job(kXl, "pass", {{"guest-start", "pass"}, {"logs-capture", "pass"}})})}, {}, Outcome::regressions,
       {{kXl, "guest-start", "REGR. vs. 5", "blocking"},
        {kXl, "logs-capture", "REGR. vs. 5", "blocking"},
        {kXl, "<job status>", "broken", "blocking"}}},
      {"broken_job_excused_step_still_blocks",
       flight(10, {job(kXl, "broken", {{"guest-start", "fail"}, {"logs-capture", "broken"}})}),
       {base(5, {job(kXl, "fail", {{"guest-start", "pass"}, {"logs-capture", "broken"}})})},
       {"test-amd64-amd64-xl guest-start"}, Outcome::problems,
       {{kXl, "guest-start", "REGR. vs. 5", "allowable"},
        {kXl, "logs-capture", "like 5", "not blocking"},
        {kXl, "<job status>", "broken", "blocking"}}},
      {"broken_job_heisenbug_step_still_blocks",
       flight(10, {job(kXl, "broken", {{"guest-start", "fail"}, {"logs-capture", "broken"}})}),
       {base(5, {job(kXl, "pass", {{"guest-start", "pass"}, {"logs-capture", "pass"}})}),
        flight(9, {job(kXl, "broken", {{"guest-start", "pass"}, {"logs-capture", "broken"}})})},
       {}, Outcome::problems,
       {{kXl, "guest-start", "pass in 9", "intermittent"},
        {kXl, "logs-capture", "REGR. vs. 5", "blocking"},
        {kXl, "<job status>", "broken", "blocking"}}},
      // Broken against a pass is trouble, not a code regression (outcome problems).
      {"broken_vs_pass_is_broken_blocker", flight(10, {kBroken}), {base(5, {kPass})}, {}, Outcome::problems,
       {{kXl, "guest-start", "REGR. vs. 5", "blocking"}, {kXl, "<job status>", "broken", "blocking"}},
       "[xen-unstable test] 10: trouble: broken"},
      {"broken_build_vs_pass_is_broken_blocker",
       flight(10, {job("build-amd64", "broken", {{"build", "broken"}})}), {base(5, {kBuildPass})}, {},
       Outcome::problems,
       {{"build-amd64", "build", "REGR. vs. 5", "blocking"}, {"build-amd64", "<job status>", "broken", "blocking"}}},
      {"regression_and_broken_is_regressions", flight(10, {kFail, job(kLv, "broken", {{"guest-start", "broken"}})}),
       {base(5, {kPass, kLvPass})}, {}, Outcome::regressions,
       {{kXl, "guest-start", "REGR. vs. 5", "blocking"},
        {kLv, "guest-start", "REGR. vs. 5", "blocking"},
        {kLv, "<job status>", "broken", "blocking"}}},
      {"regression_and_unfinished_is_regressions", flight(10, {kFail, job(kLv, "running", {{"guest-start", "running"}})}),
       {base(5, {kPass, kLvPass})}, {}, Outcome::regressions,
       {{kXl, "guest-start", "REGR. vs. 5", "blocking"}, {kLv, "guest-start", "unfinished", "blocking"}}},
      {"broken_pseudo_and_fail_like_is_problems", flight(10, {kFail, job(kLv, "broken")}), {base(5, {kFail, kLvPass})},
       {}, Outcome::problems,
       {{kXl, "guest-start", "like 5", "not blocking"}, {kLv, "<job status>", "broken", "blocking"}},
       "[xen-unstable test] 10: trouble: broken/fail"},
      // Non-fatal steps (osstest's *-support-check): judged, the job passes.
      {"non_fatal_never_pass_is_all_pass",
       flight(10, {job(kXl, "pass", {{"guest-start", "pass"}, {"migrate-support-check", "fail"}})}),
       {base(5, {job(kXl, "pass", {{"guest-start", "pass"}, {"migrate-support-check", "fail"}})})}, {},
       Outcome::tolerable, {{kXl, "migrate-support-check", "never pass", "not blocking"}},
       "[xen-unstable test] 10: tolerable all pass - PUSHED", true},
      {"non_fatal_like_baseline_is_all_pass",
       flight(10, {job(kXl, "pass", {{"guest-start", "pass"}, {"saverestore-support-check", "fail"}})}),
       {base(5, {job(kXl, "pass", {{"guest-start", "pass"}, {"saverestore-support-check", "fail"}})})}, {},
       Outcome::tolerable, {{kXl, "saverestore-support-check", "like 5", "not blocking"}},
       "[xen-unstable test] 10: tolerable all pass - PUSHED"},
      {"non_fatal_regression_still_blocks",
       flight(10, {job(kXl, "pass", {{"guest-start", "pass"}, {"migrate-support-check", "fail"}})}),
       {base(5, {job(kXl, "pass", {{"guest-start", "pass"}, {"migrate-support-check", "pass"}})})}, {},
       Outcome::regressions, {{kXl, "migrate-support-check", "REGR. vs. 5", "blocking"}}},
      // Rule 6: heisenbugs, both ways through H.
      {"heisenbug_pass_in_same_revision", flight(10, {kFail}), {base(5, {kPass}), flight(9, {kPass})}, {},
       Outcome::tolerable, {{kXl, "guest-start", "pass in 9", "intermittent"}},
       "[xen-unstable test] 10: tolerable ALL FAIL - PUSHED"},
      {"heisenbug_needs_same_built_revision", flight(10, {kFail}), {base(5, {kPass}), flight(9, {kPass}, "C")}, {},
       Outcome::regressions, {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"heisenbug_ignores_dependency_revisions", flight(10, {kFail}),
       {base(5, {kPass}), with(flight(9, {kPass}), [](FlightData& f) { f.built["qemu"] = {"Q9"}; })}, {},
       Outcome::tolerable, {{kXl, "guest-start", "pass in 9", "intermittent"}}},
      {"failure_in_heisenbug_flight_still_blocks", flight(10, {kFail, kLvPass}),
       {base(5, {kPass, kLvPass}), flight(8, {kPass, kLvFail}), base(3, {kPass, kLvPass})}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "pass in 8", "intermittent"}, {kLv, "guest-start", "pass in 10", "intermittent", 8, "fail"}}},
      {"heisenbug_flight_failure_without_pass_blocks", flight(10, {kFail, kLvFail}),
       {base(5, {kPass, kLvPass}), flight(8, {kPass, kLvFail}), base(3, {kPass, kLvPass})}, {}, Outcome::regressions,
       {{kXl, "guest-start", "pass in 8", "intermittent"}, {kLv, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"heisenbug_flight_excused_by_another_h",
       flight(10, {kFail, kLvPass, job("test-amd64-amd64-pair", "pass", {{"guest-migrate", "pass"}})}),
       {base(5, {kPass, kLvPass, job("test-amd64-amd64-pair", "pass", {{"guest-migrate", "pass"}})}),
        flight(8, {kPass, kLvPass, job("test-amd64-amd64-pair", "fail", {{"guest-migrate", "fail"}})}),
        flight(7, {kFail, kLvFail, job("test-amd64-amd64-pair", "pass", {{"guest-migrate", "pass"}})})},
       {}, Outcome::tolerable,
       {{kXl, "guest-start", "pass in 8", "intermittent"},
        {"test-amd64-amd64-pair", "guest-migrate", "pass in 10", "intermittent", 8}}},
      {"heisenbug_flight_not_excused_by_itself", flight(10, {kFail, kLvPass}),
       {base(5, {kPass, job(kLv, "pass", {{"guest-start", "pass"}, {"guest-stop", "pass"}})}),
        flight(8, {kPass, job(kLv, "fail", {{"guest-start", "fail"}, {"guest-stop", "fail"}})})},
       {}, Outcome::regressions,
       {{kXl, "guest-start", "pass in 8", "intermittent"},
        {kLv, "guest-start", "pass in 10", "intermittent", 8},
        {kLv, "guest-stop", "REGR. vs. 5", "blocking", 8}}},
      {"heisenbug_flight_judged_by_its_own_past", flight(10, {kFail}),
       {base(5, {kPass}), flight(8, {kPass, kLvFail}), base(9, {kLvPass})}, {}, Outcome::tolerable,
       {{kXl, "guest-start", "pass in 8", "intermittent"}, {kLv, "guest-start", "baseline untested", "not blocking", 8}}},
      {"our_retest_flight_excuses", flight(10, {kFail}),
       {base(5, {kPass}), with(flight(11, {kPass}), [](FlightData& f) {
          f.blessing = "real-retest";
          f.retest_of = FlightId{10};
        })},
       {}, Outcome::tolerable, {{kXl, "guest-start", "pass in 11", "intermittent"}}},
      {"another_flights_retest_does_not_excuse", flight(10, {kFail}),
       {base(5, {kPass}), with(flight(11, {kPass}), [](FlightData& f) {
          f.blessing = "real-retest";
          f.retest_of = FlightId{9};
        })},
       {}, Outcome::regressions, {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"unfinished_retest_does_not_excuse", flight(10, {kFail}),
       {base(5, {kPass}), with(flight(11, {kPass}), [](FlightData& f) {
          f.blessing = "real-retest";
          f.retest_of = FlightId{10};
          f.finished = false;
        })},
       {}, Outcome::regressions, {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"no_heisenbug_for_build_regression", flight(10, {kBuildFail}), {base(5, {kBuildPass}), flight(9, {kBuildPass})},
       {}, Outcome::regressions, {{"build-amd64", "build", "REGR. vs. 5", "blocking"}}},
      {"heisenbug_excuses_pseudo_item", flight(10, {job(kXl, "broken")}), {base(5, {kPass}), flight(9, {kPass})}, {},
       Outcome::tolerable, {{kXl, "<job status>", "pass in 9", "intermittent"}}},
      {"heisenbug_excuses_build_pseudo_item", flight(10, {job("build-amd64", "cancelled")}),
       {base(5, {kBuildPass}), flight(9, {kBuildPass})}, {}, Outcome::tolerable,
       {{"build-amd64", "<job status>", "pass in 9", "intermittent"}}},
      {"heisenbug_excuses_unfinished", flight(10, {job(kXl, "running", {{"xen-boot", "running"}})}),
       {base(5, {kPass}), flight(9, {kPass})}, {}, Outcome::tolerable,
       {{kXl, "xen-boot", "pass in 9", "intermittent"}}},
      {"newest_heisenbug_is_cited", flight(10, {kFail}), {base(5, {kPass}), flight(7, {kPass}), flight(9, {kPass})}, {},
       Outcome::tolerable, {{kXl, "guest-start", "pass in 9", "intermittent"}}},
      {"item_listed_once_in_most_severe_category", flight(10, {kFail, kLvFail}),
       {base(5, {kPass, kLvPass}), flight(8, {kPass, kLvFail})}, {}, Outcome::regressions,
       {{kXl, "guest-start", "pass in 8", "intermittent"}, {kLv, "guest-start", "REGR. vs. 5", "blocking"}}},
      // Rule 7: the allow list.
      {"allowable_exact", flight(10, {kFail}), {base(5, {kPass})}, {"test-amd64-amd64-xl guest-start"},
       Outcome::tolerable, {{kXl, "guest-start", "REGR. vs. 5", "allowable"}},
       "[xen-unstable test] 10: tolerable ALL FAIL - PUSHED"},
      {"allow_is_anchored", flight(10, {kFail}), {base(5, {kPass})}, {"test-amd64-amd64-xl guest"},
       Outcome::regressions, {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"single_at_matches_one_word", flight(10, {kFail}), {base(5, {kPass})}, {"test-@-amd64-xl guest-@"},
       Outcome::tolerable, {{kXl, "guest-start", "REGR. vs. 5", "allowable"}}},
      {"single_at_stops_at_dash", flight(10, {job("test-amd64-amd64-qemuu-xl", "fail", {{"guest-start", "fail"}})}),
       {base(5, {job("test-amd64-amd64-qemuu-xl", "pass", {{"guest-start", "pass"}})})},
       {"test-amd64-@-xl guest-start"}, Outcome::regressions,
       {{"test-amd64-amd64-qemuu-xl", "guest-start", "REGR. vs. 5", "blocking"}}},
      {"double_at_crosses_dashes", flight(10, {job("test-amd64-amd64-qemuu-xl", "fail", {{"guest-start", "fail"}})}),
       {base(5, {job("test-amd64-amd64-qemuu-xl", "pass", {{"guest-start", "pass"}})})},
       {"test-amd64-@@-xl guest-start"}, Outcome::tolerable,
       {{"test-amd64-amd64-qemuu-xl", "guest-start", "REGR. vs. 5", "allowable"}}},
      {"bang_removes_global_entry", flight(10, {kFail}), {base(5, {kPass})},
       {"test-amd64-amd64-xl guest-start", "!test-amd64-amd64-xl guest-start"}, Outcome::regressions,
       {{kXl, "guest-start", "REGR. vs. 5", "blocking"}}},
      {"allowable_unfinished", flight(10, {job(kXl, "running", {{"xen-boot", "running"}})}), {base(5, {kPass})},
       {"test-amd64-amd64-xl @@"}, Outcome::tolerable, {{kXl, "xen-boot", "unfinished", "allowable"}}},
      {"allowable_job_status_item", flight(10, {job(kXl, "broken")}), {base(5, {kPass})},
       {"test-amd64-amd64-xl <job status>"}, Outcome::tolerable, {{kXl, "<job status>", "broken", "allowable"}}},
      // "@@" spans no space, so a broad pattern never excuses a broken job's "<job status>".
      {"allow_at_at_leaves_broken_job_blocking", flight(10, {kBroken}), {base(5, {kPass})},
       {"test-amd64-amd64-xl @@"}, Outcome::problems,
       {{kXl, "guest-start", "REGR. vs. 5", "allowable"}, {kXl, "<job status>", "broken", "blocking"}}},
  };
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

/// Every step of ours and of the history passed at flight 1, unless the case says never.
std::map<std::string, FlightId> first_passes(const Case& c) {
  std::map<std::string, FlightId> out;
  if (c.never_passed) return out;
  auto add = [&](const FlightData& f) {
    for (const auto& j : f.jobs) {
      for (const auto& s : j.steps) out[j.name + "\n" + s.testid] = FlightId{1};
    }
  };
  add(c.ours);
  for (const auto& h : c.history) add(h);
  return out;
}

class VerdictCase : public ::testing::TestWithParam<Case> {};

TEST_P(VerdictCase, Classifies) {
  const Case& c = GetParam();
  Evidence ev = select_evidence(c.ours, c.history, kTree, kBasis, first_passes(c));
  Verdict v = classify(c.ours, ev, AllowList(c.allow));
  v.baseline_flight = c.ours.built_only(kTree, kBasis);
  EXPECT_EQ(to_string(v.outcome), std::string(to_string(c.outcome)));
  ASSERT_EQ(v.steps.size(), c.steps.size());
  for (std::size_t i = 0; i < c.steps.size(); ++i) {
    const Expect& e = c.steps[i];
    const Classified& got = v.steps[i];
    EXPECT_EQ(got.job, e.job) << i;
    EXPECT_EQ(got.testid, e.testid) << i;
    EXPECT_EQ(got.summary, e.summary) << i;
    EXPECT_EQ(got.category(), e.category) << i;
    EXPECT_EQ(got.flight.value, e.flight) << i;
    if (!e.status.empty()) {
      EXPECT_EQ(got.status, e.status) << i;
    }
  }
  if (!c.subject.empty()) {
    EXPECT_EQ(v.subject(tolerable(v.outcome)), c.subject);
  }
  // The verdict is stored as JSON and read back unchanged.
  auto back = verdict_from_json(to_json(v));
  ASSERT_TRUE(back.has_value()) << back.error().to_string();
  EXPECT_EQ(to_json(*back).dump(), to_json(v).dump());
}

INSTANTIATE_TEST_SUITE_P(Rules, VerdictCase, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Verdict, BaselineFlightSubject) {
  FlightData ours = flight(10, {kBuildPass, kPass}, kBasis);
  Verdict v = classify(ours, select_evidence(ours, {base(5, {kBuildPass, kPass})}, kTree, kBasis), AllowList({}));
  v.baseline_flight = true;
  EXPECT_EQ(v.subject(false), "[xen-unstable baseline test] 10: all pass");
}

TEST(Verdict, CitesTheFlightItNames) {
  FlightData ours = flight(10, {kFail, kLvFail});
  Evidence ev = select_evidence(ours, {base(5, {kPass, kLvPass}), flight(8, {kPass, kLvPass})}, kTree, kBasis,
                                {{kXl + "\nguest-start", FlightId{1}}, {kLv + "\nguest-start", FlightId{1}}});
  Verdict v = classify(ours, ev, AllowList({}));
  ASSERT_EQ(v.steps.size(), 2u);
  EXPECT_EQ(v.steps[0].cited, FlightId{8});
  EXPECT_EQ(v.baselines, std::vector<FlightId>{FlightId{5}});
  EXPECT_EQ(v.same_revisions, std::vector<FlightId>{FlightId{8}});
}

TEST(Verdict, EverPassedCountsOnlyEarlierFlights) {
  FlightData ours = flight(10, {kFail});
  Evidence ev = select_evidence(ours, {base(5, {kPass})}, kTree, kBasis, {{kXl + "\nguest-start", FlightId{12}}});
  Verdict v = classify(ours, ev, AllowList({}));
  ASSERT_EQ(v.steps.size(), 1u);
  EXPECT_EQ(v.steps[0].summary, "never pass");
}

// Built revisions follow build-job references, leaving out -prev jobs.
FlightRunvars runvars() {
  FlightRunvars all;
  all[3]["build-amd64"] = {{"built_revision_xen", "A"}, {"build_inputs", "x"}};
  all[10]["build-amd64"] = {{"built_revision_xen", "B"}, {"built_revision_qemu", "Q"}};
  all[10]["build-amd64-prev"] = {{"built_revision_xen", "P"}};
  all[10]["test-amd64-amd64-xl"] = {{"buildjob", "build-amd64"}, {"revision_xen", "B"}};
  all[10]["test-amd64-amd64-migrate-prev"] = {{"buildjob", "build-amd64-prev"}};
  all[10]["test-amd64-amd64-pair"] = {{"xenbuildjob", "build-amd64"}, {"prevbuildjob", "build-amd64-prev"}};
  return all;
}

TEST(BuiltRevisions, PrevJobsAreLeftOut) {
  auto built = built_revisions(FlightId{10}, runvars());
  EXPECT_EQ(built["xen"], std::set<std::string>{"B"});
  EXPECT_EQ(built["qemu"], std::set<std::string>{"Q"});
}

TEST(BuiltRevisions, FollowsBuildJobsInOtherFlights) {
  FlightRunvars all = runvars();
  all[11]["test-amd64-amd64-xl"] = {{"buildjob", "3.build-amd64"}};
  EXPECT_EQ(built_revisions(FlightId{11}, all)["xen"], std::set<std::string>{"A"});
  all[11]["test-amd64-amd64-libvirt"] = {{"buildjobs", "10.build-amd64,3.build-amd64"}};
  EXPECT_EQ(built_revisions(FlightId{11}, all)["xen"], (std::set<std::string>{"A", "B"}));
}

TEST(BuiltRevisions, TwoBuildsOfDifferentRevisionsAreBothKept) {
  FlightRunvars all;
  all[4]["build-amd64"] = {{"built_revision_xen", "A"}};
  all[4]["build-arm64"] = {{"built_revision_xen", "C"}};
  FlightData f = flight(4, {kBuildPass});
  f.built = built_revisions(FlightId{4}, all);
  EXPECT_FALSE(f.built_only("xen", "A"));
  EXPECT_EQ(f.tested("xen"), "B") << "the input revision when the built ones disagree";
}

TEST(BuiltRevisions, BuildRefs) {
  auto refs = build_refs(FlightId{7}, {{"buildjob", "build-amd64"}, {"kernbuildjob", "6.build-amd64-pvops"}});
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0], std::make_pair(FlightId{7}, std::string("build-amd64")));
  EXPECT_EQ(refs[1], std::make_pair(FlightId{6}, std::string("build-amd64-pvops")));
}

TEST(JobWord, AllForms) {
  EXPECT_EQ(job_word({"pass", "pass"}), "all pass");
  EXPECT_EQ(job_word({"fail", "blocked"}), "ALL FAIL");
  EXPECT_EQ(job_word({"fail", "pass", "blocked"}), "FAIL");
  EXPECT_EQ(job_word({"pass", "broken", "blocked"}), "trouble: blocked/broken/pass");
  EXPECT_EQ(job_word({"starved", "pass"}), "trouble: pass/starved");
}

TEST(Subject, Grammar) {
  Verdict v;
  v.flight = FlightId{123};
  v.branch = "xen-4.7-testing";
  v.job_word = "FAIL";
  v.outcome = Outcome::regressions;
  EXPECT_EQ(v.subject(false), "[xen-4.7-testing test] 123: regressions - FAIL");
  v.outcome = Outcome::tolerable;
  EXPECT_EQ(v.subject(true), "[xen-4.7-testing test] 123: tolerable FAIL - PUSHED");
  EXPECT_EQ(v.subject(false), "[xen-4.7-testing test] 123: tolerable FAIL");
  v.outcome = Outcome::perfect;
  v.job_word = "all pass";
  EXPECT_EQ(v.subject(true), "[xen-4.7-testing test] 123: all pass - PUSHED");
  v.outcome = Outcome::problems;
  v.job_word = "trouble: broken/pass";
  EXPECT_EQ(v.subject(false), "[xen-4.7-testing test] 123: trouble: broken/pass");
  v.baseline_flight = true;
  EXPECT_EQ(v.subject(false), "[xen-4.7-testing baseline test] 123: trouble: broken/pass");
}

TEST(Headline, LikeOsstest) {
  EXPECT_STREQ(headline(Outcome::perfect), "Perfect :-)");
  EXPECT_STREQ(headline(Outcome::tolerable), "Failures :-/ but no regressions.");
  EXPECT_STREQ(headline(Outcome::regressions), "Regressions :-(");
  EXPECT_STREQ(headline(Outcome::problems), "Failures and problems with tests :-(");
}

TEST(AllowList, BangOnlyRemovesEarlierEntries) {
  AllowList a({"!x @", "x @"});
  EXPECT_TRUE(a.allows("x", "y"));
  AllowList b({"x @", "!x @"});
  EXPECT_FALSE(b.allows("x", "y"));
  EXPECT_TRUE(AllowList({"x guest-@/x10"}).allows("x", "guest-localmigrate/x10"));
  EXPECT_FALSE(AllowList({"x guest-@"}).allows("x", "guest-localmigrate/x10"));
  EXPECT_TRUE(AllowList({"x guest-@@"}).allows("x", "guest-localmigrate/x10"));
}

TEST(StoredVerdict, CorruptBodyIsAnError) {
  EXPECT_FALSE(verdict_from_json(nlohmann::json::parse(R"({"flight": 1})")).has_value());
  auto bad = to_json(Verdict{});
  bad["outcome"] = "fine";
  EXPECT_FALSE(verdict_from_json(bad).has_value());
}

}  // namespace
}  // namespace pushgate::verdict

namespace pushgate::verdict {
namespace {

Report sample_report() {
  const std::string long_job = "test-amd64-amd64-xl-qemuu-debianhvm-amd64-shadow";  // 48 characters
  FlightData ours = flight(10, {kBuildPass, job(long_job, "fail", {{"debian-hvm-install", "fail"}}), kFail,
                                job(kLv, "pass", {{"guest-start", "pass"}, {"migrate-support-check", "fail"}})});
  std::vector<FlightData> history{base(5, {kBuildPass, job(long_job, "pass", {{"debian-hvm-install", "pass"}}), kPass, kLvPass}),
                                  flight(8, {kBuildPass, kPass, kLvFail})};
  std::map<std::string, FlightId> passes{{long_job + "\ndebian-hvm-install", FlightId{1}},
                                         {kXl + "\nguest-start", FlightId{1}},
                                         {kLv + "\nguest-start", FlightId{1}}};
  Report r;
  r.flight = ours;
  r.verdict = classify(ours, select_evidence(ours, history, kTree, kBasis, passes), AllowList({}));
  r.intended = "real";
  r.now = 1700000000 + 3 * 86400 + 100;
  r.basis_flight = FlightId{5};
  r.basis_time = 1700000000;
  r.failing_since = FlightId{8};
  r.failing_since_time = 1700000000 + 86400;
  r.failing_attempts = 2;
  r.same_since = FlightId{8};
  r.same_since_time = 1700000000 + 86400;
  r.same_attempts = 2;
  r.versions = {{"xen", "B", "A", "", ""}};
  r.push_text = "not tolerable: regressions";
  return r;
}

TEST(Report, ReadsLikeAnOsstestReport) {
  std::string t = render_text(sample_report());
  EXPECT_EQ(t.substr(0, t.find('\n')), "[xen-unstable test] 10: regressions - FAIL");
  EXPECT_NE(t.find("\nflight 10 xen-unstable real [real]\n\nRegressions :-(\n\n"), std::string::npos) << t;
  EXPECT_NE(t.find("Tests which did not succeed and are blocking,\nincluding tests which could not be run:\n"
                   " test-amd64-amd64-xl-qemuu-debianhvm-amd64-shadow   1 debian-hvm-install    fail      REGR. vs. 5\n"),
            std::string::npos)
      << t;
  // Columns stay aligned below a 48-character job name.
  EXPECT_NE(t.find("Tests which are failing intermittently (not blocking):\n"
                   " test-amd64-amd64-xl                                2 guest-start           fail      pass in 8\n"
                   " test-amd64-amd64-libvirt                           1 guest-start           fail in 8 pass in 10\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("Tests which did not succeed, but are not blocking:\n"
                   " test-amd64-amd64-libvirt                           2 migrate-support-check fail      never pass\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("Last test of basis   5       2023-11-14 22:13:20 Z    3 days\n"), std::string::npos) << t;
  EXPECT_NE(t.find("Failing since        8       2023-11-15 22:13:20 Z    2 days    2 attempts\n"), std::string::npos) << t;
  EXPECT_NE(t.find("Testing same since   8       2023-11-15 22:13:20 Z    2 days    2 attempts\n"), std::string::npos) << t;
}

TEST(Report, ProgressInsteadOfAVerdictWhileRunning) {
  Report r = sample_report();
  r.judged = false;
  r.flight.jobs[1].status = "running";
  r.flight.jobs[2].status = "queued";
  std::string t = render_text(r);
  EXPECT_EQ(t.substr(0, t.find('\n')), "[xen-unstable test] 10: running 2/4");
  EXPECT_NE(t.find("In progress: 2 of 4 jobs done, 1 running, 1 queued."), std::string::npos) << t;
  EXPECT_EQ(t.find(":-"), std::string::npos) << t;
  auto j = nlohmann::json::parse(render_json(r));
  EXPECT_TRUE(j["outcome"].is_null());
  EXPECT_EQ(j["progress"]["running"], 1);
  EXPECT_EQ(render_html(r).find("Regressions"), std::string::npos);
}

}  // namespace
}  // namespace pushgate::verdict

// Issue 18: ABI records as items, with rules 6 and 7 and acceptances.
namespace pushgate::verdict {
namespace {

FlightData::Job recorded(const std::map<std::string, std::string>& records) {
  FlightData::Job j = job("test-amd64-amd64-qemuu-abi", "pass", {{"abi-record", "pass"}});
  for (const auto& [k, d] : records) j.abi[k] = {d, 1};
  return j;
}

Verdict judge(const FlightData& ours, const std::vector<FlightData>& history, const std::vector<std::string>& allow = {},
              std::map<std::string, Evidence::Accepted> accepted = {}) {
  Evidence ev = select_evidence(ours, history, kTree, kBasis);
  ev.abi_accepted = std::move(accepted);
  return classify(ours, ev, AllowList(allow));
}

const Classified* item(const Verdict& v, const std::string& testid) {
  for (const auto& c : v.steps) {
    if (c.testid == testid) return &c;
  }
  return nullptr;
}

TEST(AbiItems, Issue18_ChangedSameNewHeisenbugAllowableAndAccepted) {
  const std::vector<FlightData> history{base(5, {recorded({{"alias/pc", "d72"}, {"machine/x", "m1"}})}),
                                        base(7, {recorded({{"alias/pc", "d72"}})})};
  // Changed vs. the newest baseline that recorded the key; the same is no
  // item; a key first recorded is "new", no item.
  Verdict v = judge(flight(10, {recorded({{"alias/pc", "d80"}, {"machine/x", "m1"}, {"cpu/y", "c1"}})}), history);
  ASSERT_NE(item(v, "abi alias/pc"), nullptr);
  EXPECT_EQ(item(v, "abi alias/pc")->summary, "changed vs. 7");
  EXPECT_EQ(item(v, "abi alias/pc")->category(), "blocking");
  EXPECT_EQ(item(v, "abi machine/x"), nullptr);
  EXPECT_EQ(item(v, "abi cpu/y"), nullptr);
  EXPECT_EQ(v.outcome, Outcome::regressions);
  ASSERT_EQ(v.abi.size(), 3u);
  for (const auto& a : v.abi) {
    if (a.key == "alias/pc") { EXPECT_EQ(a.state, "changed"); }
    if (a.key == "machine/x") {
      EXPECT_EQ(a.state, "same");
      EXPECT_EQ(a.reference, FlightId{5}) << "7 did not record it: the newest baseline that did";
    }
    if (a.key == "cpu/y") { EXPECT_EQ(a.state, "new"); }
  }
  // Rule 6: another flight of the same revisions recorded the reference: intermittent.
  std::vector<FlightData> with_heisen = history;
  with_heisen.push_back(flight(9, {recorded({{"alias/pc", "d72"}})}));
  v = judge(flight(10, {recorded({{"alias/pc", "d80"}})}), with_heisen);
  ASSERT_NE(item(v, "abi alias/pc"), nullptr);
  EXPECT_EQ(item(v, "abi alias/pc")->summary, "pass in 9");
  EXPECT_EQ(item(v, "abi alias/pc")->category(), "intermittent");
  EXPECT_EQ(v.outcome, Outcome::tolerable);
  // Rule 7: the allow list names ABI items as it names steps.
  v = judge(flight(10, {recorded({{"alias/pc", "d80"}})}), history, {"test-@-@-qemuu-abi abi alias/@@"});
  EXPECT_EQ(item(v, "abi alias/pc")->category(), "allowable");
  EXPECT_EQ(v.outcome, Outcome::tolerable);
  // An acceptance of a flight newer than the baseline is the reference...
  std::map<std::string, Evidence::Accepted> acc{{"test-amd64-amd64-qemuu-abi\nalias/pc", {FlightId{8}, "d80"}}};
  v = judge(flight(10, {recorded({{"alias/pc", "d80"}})}), history, {}, acc);
  EXPECT_EQ(item(v, "abi alias/pc"), nullptr);
  EXPECT_EQ(v.outcome, Outcome::perfect);
  EXPECT_EQ(v.abi.at(0).state, "accepted");
  // ...and something else is still a change, against the accepted flight.
  v = judge(flight(10, {recorded({{"alias/pc", "d90"}})}), history, {}, acc);
  ASSERT_NE(item(v, "abi alias/pc"), nullptr);
  EXPECT_EQ(item(v, "abi alias/pc")->summary, "changed vs. 8");
  // An acceptance older than the baseline is superseded by the baseline's record.
  std::map<std::string, Evidence::Accepted> old{{"test-amd64-amd64-qemuu-abi\nalias/pc", {FlightId{3}, "d80"}}};
  v = judge(flight(10, {recorded({{"alias/pc", "d80"}})}), history, {}, old);
  ASSERT_NE(item(v, "abi alias/pc"), nullptr);
  EXPECT_EQ(item(v, "abi alias/pc")->summary, "changed vs. 7");
  // The stored verdict keeps the comparison.
  auto back = verdict_from_json(to_json(v));
  ASSERT_TRUE(back);
  ASSERT_EQ(back->abi.size(), 1u);
  EXPECT_EQ(back->abi[0].reference_digest, "d72");
}

TEST(AbiItems, Issue18_DiffSaysWhichFieldsChanged) {
  auto d = abi_diff("j", "k", R"({"a": 1, "b": {"c": "x", "gone": true}, "list": ["p", "q"], "same": [1, 2]})",
                    R"({"a": 2, "b": {"c": "x", "new~/": 1}, "list": ["p", "q", "r"], "same": [1, 2]})");
  std::vector<std::string> got;
  for (const auto& c : d) got.push_back(c.op + " " + c.path + " " + c.old_value + " " + c.new_value);
  EXPECT_EQ(got, (std::vector<std::string>{"replace /a 1 2", "remove /b/gone true ", "add /b/new~0~1  1",
                                           "add /list/2  \"r\""}));
  EXPECT_TRUE(abi_diff("j", "k", "[1,2]", "[1, 2]").empty());
  EXPECT_EQ(abi_diff("j", "k", "[1,2]", "[2,1]").at(0).op, "replace") << "same elements, another order";
}

}  // namespace
}  // namespace pushgate::verdict
