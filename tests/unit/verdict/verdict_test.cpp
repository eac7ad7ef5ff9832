// SPEC section 5 as a table: each case is a flight, its evidence and an
// allow list, with the expected outcome and classification of each step.

#include <gtest/gtest.h>

#include <pushgate/verdict.hpp>

namespace pushgate::verdict {
namespace {

using Steps = std::vector<std::pair<std::string, std::string>>;  // testid, status

FlightData::Job job(const std::string& name, const std::string& status, const Steps& steps = {}) {
  FlightData::Job j{name, status, name.starts_with("build-"), {}};
  int n = 0;
  for (const auto& [t, s] : steps) j.steps.push_back({++n, t, s});
  return j;
}

FlightData flight(std::int64_t id, std::vector<FlightData::Job> jobs) {
  FlightData f;
  f.id = FlightId{id};
  f.branch = "xen-unstable";
  f.jobs = std::move(jobs);
  return f;
}

// Everything in these cases has passed before unless a case says otherwise.
Evidence evidence(std::vector<FlightData> baselines, std::vector<FlightData> same = {},
                  std::vector<std::string> passed = {"*"}) {
  return {std::move(baselines), std::move(same), std::move(passed)};
}

struct Expect {
  std::string job, testid, summary, category;
  std::int64_t flight = 10;
};

struct Case {
  const char* name;
  FlightData ours;
  Evidence ev;
  std::vector<std::string> allow;
  Outcome outcome;
  std::vector<Expect> steps;
  std::string subject;  // with pushed = (outcome tolerable)
};

const auto kPass = job("test-amd64-amd64-xl", "pass", {{"xen-boot", "pass"}, {"guest-start", "pass"}});
const auto kFail = job("test-amd64-amd64-xl", "fail", {{"xen-boot", "pass"}, {"guest-start", "fail"}});
const auto kBroken = job("test-amd64-amd64-xl", "broken", {{"xen-boot", "pass"}, {"guest-start", "broken"}});
const auto kBuildPass = job("build-amd64", "pass", {{"build", "pass"}});
const auto kBuildFail = job("build-amd64", "fail", {{"build", "fail"}});

std::vector<Case> cases() {
  return {
      {"all_pass_is_perfect", flight(10, {kBuildPass, kPass}), evidence({flight(5, {kBuildPass, kPass})}), {},
       Outcome::perfect, {}, "[xen-unstable test] 10: all pass - PUSHED"},
      {"like_baseline", flight(10, {kFail}), evidence({flight(5, {kFail})}), {}, Outcome::tolerable,
       {{"test-amd64-amd64-xl", "guest-start", "like 5", "not blocking"}},
       "[xen-unstable test] 10: tolerable ALL FAIL - PUSHED"},
      {"regression_vs_baseline", flight(10, {kBuildPass, kFail}), evidence({flight(5, {kBuildPass, kPass})}), {},
       Outcome::regressions, {{"test-amd64-amd64-xl", "guest-start", "REGR. vs. 5", "blocking"}},
       "[xen-unstable test] 10: regressions - FAIL"},
      {"like_beats_regr_for_test_job", flight(10, {kFail}), evidence({flight(6, {kPass}), flight(5, {kFail})}), {},
       Outcome::tolerable, {{"test-amd64-amd64-xl", "guest-start", "like 5", "not blocking"}}, ""},
      {"regr_wins_for_build_job", flight(10, {kBuildFail}),
       evidence({flight(6, {kBuildFail}), flight(5, {kBuildPass})}), {}, Outcome::regressions,
       {{"build-amd64", "build", "REGR. vs. 5", "blocking"}}, ""},
      {"baseline_untested", flight(10, {kFail}), evidence({}), {}, Outcome::tolerable,
       {{"test-amd64-amd64-xl", "guest-start", "baseline untested", "not blocking"}}, ""},
      {"never_pass", flight(10, {kFail}), evidence({flight(5, {kPass})}, {}, {}), {}, Outcome::tolerable,
       {{"test-amd64-amd64-xl", "guest-start", "never pass", "not blocking"}}, ""},
      {"blocked_is_na", flight(10, {kBuildFail, job("test-amd64-amd64-xl", "blocked", {{"build-check", "blocked"}})}),
       evidence({flight(5, {kBuildFail, job("test-amd64-amd64-xl", "blocked", {{"build-check", "blocked"}})})}), {},
       Outcome::tolerable,
       {{"build-amd64", "build", "like 5", "not blocking"}, {"test-amd64-amd64-xl", "build-check", "n/a", "not blocking"}},
       ""},
      {"unfinished_blocks", flight(10, {job("test-amd64-amd64-xl", "running", {{"xen-boot", "running"}})}),
       evidence({flight(5, {kPass})}), {}, Outcome::problems,
       {{"test-amd64-amd64-xl", "xen-boot", "unfinished", "blocking"}},
       "[xen-unstable test] 10: trouble: running"},
      {"pseudo_step_is_broken", flight(10, {job("test-amd64-amd64-xl", "starved")}), evidence({flight(5, {kPass})}), {},
       Outcome::problems, {{"test-amd64-amd64-xl", "<none executed>", "starved", "blocking"}}, ""},
      {"broken_vs_fail_is_failed_in", flight(10, {kBroken}), evidence({flight(5, {kFail})}), {}, Outcome::tolerable,
       {{"test-amd64-amd64-xl", "guest-start", "failed in 5", "not blocking"}}, ""},
      {"broken_vs_pass_is_regression", flight(10, {kBroken}), evidence({flight(5, {kPass})}), {},
       Outcome::regressions, {{"test-amd64-amd64-xl", "guest-start", "REGR. vs. 5", "blocking"}},
       "[xen-unstable test] 10: regressions - trouble: broken"},
      {"fail_vs_broken_is_other_status", flight(10, {kFail}), evidence({flight(5, {kBroken})}), {},
       Outcome::tolerable, {{"test-amd64-amd64-xl", "guest-start", "broken in 5", "not blocking"}}, ""},
      {"absent_in_baseline_is_blocked_in", flight(10, {kFail}),
       evidence({flight(5, {job("test-amd64-amd64-xl", "fail", {{"xen-boot", "fail"}})})}), {}, Outcome::tolerable,
       {{"test-amd64-amd64-xl", "guest-start", "blocked in 5", "not blocking"}}, ""},
      {"regr_beats_blocked_in", flight(10, {kFail}),
       evidence({flight(6, {job("test-amd64-amd64-xl", "fail", {{"xen-boot", "fail"}})}), flight(5, {kPass})}), {},
       Outcome::regressions, {{"test-amd64-amd64-xl", "guest-start", "REGR. vs. 5", "blocking"}}, ""},
      {"failed_in_beats_other_status", flight(10, {kBroken}),
       evidence({flight(6, {job("test-amd64-amd64-xl", "blocked", {{"xen-boot", "pass"}, {"guest-start", "blocked"}})}),
                 flight(5, {kFail})}),
       {}, Outcome::tolerable, {{"test-amd64-amd64-xl", "guest-start", "failed in 5", "not blocking"}}, ""},
      {"newest_baseline_wins_a_tie", flight(10, {kFail}), evidence({flight(7, {kFail}), flight(5, {kFail})}), {},
       Outcome::tolerable, {{"test-amd64-amd64-xl", "guest-start", "like 7", "not blocking"}}, ""},
      {"heisenbug_pass_in_same_revisions", flight(10, {kFail}), evidence({flight(5, {kPass})}, {flight(11, {kPass})}),
       {}, Outcome::tolerable, {{"test-amd64-amd64-xl", "guest-start", "pass in 11", "intermittent"}},
       "[xen-unstable test] 10: tolerable ALL FAIL - PUSHED"},
      {"failure_in_heisenbug_flight_still_blocks",
       flight(10, {kFail, job("test-amd64-amd64-libvirt", "pass", {{"guest-start", "pass"}})}),
       evidence({flight(5, {kPass, job("test-amd64-amd64-libvirt", "pass", {{"guest-start", "pass"}})})},
                {flight(11, {kPass, job("test-amd64-amd64-libvirt", "fail", {{"guest-start", "fail"}})})}),
       {}, Outcome::regressions,
       {{"test-amd64-amd64-xl", "guest-start", "pass in 11", "intermittent"},
        {"test-amd64-amd64-libvirt", "guest-start", "REGR. vs. 5", "blocking", 11}},
       ""},
      {"no_heisenbug_for_build_jobs", flight(10, {kBuildFail}),
       evidence({flight(5, {kBuildPass})}, {flight(11, {kBuildPass})}), {}, Outcome::regressions,
       {{"build-amd64", "build", "REGR. vs. 5", "blocking"}}, ""},
      {"heisenbug_excuses_pseudo_step", flight(10, {job("test-amd64-amd64-xl", "broken")}),
       evidence({flight(5, {kPass})}, {flight(11, {kPass})}), {}, Outcome::tolerable,
       {{"test-amd64-amd64-xl", "<none executed>", "pass in 11", "intermittent"}}, ""},
      {"allowable_exact", flight(10, {kFail}), evidence({flight(5, {kPass})}),
       {"test-amd64-amd64-xl guest-start"}, Outcome::tolerable,
       {{"test-amd64-amd64-xl", "guest-start", "REGR. vs. 5", "allowable"}},
       "[xen-unstable test] 10: tolerable ALL FAIL - PUSHED"},
      {"allow_is_anchored", flight(10, {kFail}), evidence({flight(5, {kPass})}), {"test-amd64-amd64-xl guest"},
       Outcome::regressions, {{"test-amd64-amd64-xl", "guest-start", "REGR. vs. 5", "blocking"}}, ""},
      {"single_at_matches_one_word", flight(10, {kFail}), evidence({flight(5, {kPass})}), {"test-@-amd64-xl guest-@"},
       Outcome::tolerable, {{"test-amd64-amd64-xl", "guest-start", "REGR. vs. 5", "allowable"}}, ""},
      {"single_at_stops_at_dash",
       flight(10, {job("test-amd64-amd64-qemuu-xl", "fail", {{"guest-start", "fail"}})}),
       evidence({flight(5, {job("test-amd64-amd64-qemuu-xl", "pass", {{"guest-start", "pass"}})})}),
       {"test-amd64-@-xl guest-start"}, Outcome::regressions,
       {{"test-amd64-amd64-qemuu-xl", "guest-start", "REGR. vs. 5", "blocking"}}, ""},
      {"double_at_crosses_dashes",
       flight(10, {job("test-amd64-amd64-qemuu-xl", "fail", {{"guest-start", "fail"}})}),
       evidence({flight(5, {job("test-amd64-amd64-qemuu-xl", "pass", {{"guest-start", "pass"}})})}),
       {"test-amd64-@@-xl guest-start"}, Outcome::tolerable,
       {{"test-amd64-amd64-qemuu-xl", "guest-start", "REGR. vs. 5", "allowable"}}, ""},
      {"bang_removes_global_entry", flight(10, {kFail}), evidence({flight(5, {kPass})}),
       {"test-amd64-amd64-xl guest-start", "!test-amd64-amd64-xl guest-start"}, Outcome::regressions,
       {{"test-amd64-amd64-xl", "guest-start", "REGR. vs. 5", "blocking"}}, ""},
      {"allowable_unfinished", flight(10, {job("test-amd64-amd64-xl", "running", {{"xen-boot", "running"}})}),
       evidence({flight(5, {kPass})}), {"test-amd64-amd64-xl @@"}, Outcome::tolerable,
       {{"test-amd64-amd64-xl", "xen-boot", "unfinished", "allowable"}}, ""},
      {"regression_and_unfinished_is_regressions",
       flight(10, {kFail, job("test-amd64-amd64-libvirt", "running", {{"guest-start", "running"}})}),
       evidence({flight(5, {kPass, job("test-amd64-amd64-libvirt", "pass", {{"guest-start", "pass"}})})}), {},
       Outcome::regressions,
       {{"test-amd64-amd64-xl", "guest-start", "REGR. vs. 5", "blocking"},
        {"test-amd64-amd64-libvirt", "guest-start", "unfinished", "blocking"}},
       ""},
      {"broken_pseudo_and_fail_like_is_problems",
       flight(10, {kFail, job("test-amd64-amd64-libvirt", "broken")}),
       evidence({flight(5, {kFail, job("test-amd64-amd64-libvirt", "pass", {{"guest-start", "pass"}})})}), {},
       Outcome::problems,
       {{"test-amd64-amd64-xl", "guest-start", "like 5", "not blocking"},
        {"test-amd64-amd64-libvirt", "<none executed>", "broken", "blocking"}},
       "[xen-unstable test] 10: trouble: broken/fail"},
      {"fail_with_pass_jobs_word", flight(10, {kBuildPass, kFail}), evidence({flight(5, {kBuildPass, kFail})}), {},
       Outcome::tolerable, {{"test-amd64-amd64-xl", "guest-start", "like 5", "not blocking"}},
       "[xen-unstable test] 10: tolerable FAIL - PUSHED"},
  };
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class VerdictCase : public ::testing::TestWithParam<Case> {};

TEST_P(VerdictCase, Classifies) {
  const Case& c = GetParam();
  Evidence ev = c.ev;
  if (ev.ever_passed == std::vector<std::string>{"*"}) {
    ev.ever_passed.clear();
    for (const auto* f : {&c.ours}) {
      for (const auto& j : f->jobs) {
        for (const auto& s : j.steps) ev.ever_passed.push_back(j.name + "\n" + s.testid);
      }
    }
    for (const auto& h : c.ev.same_revisions) {
      for (const auto& j : h.jobs) {
        for (const auto& s : j.steps) ev.ever_passed.push_back(j.name + "\n" + s.testid);
      }
    }
  }
  Verdict v = classify(c.ours, ev, AllowList(c.allow));
  EXPECT_EQ(to_string(v.outcome), std::string(to_string(c.outcome)));
  ASSERT_EQ(v.steps.size(), c.steps.size());
  for (std::size_t i = 0; i < c.steps.size(); ++i) {
    const Expect& e = c.steps[i];
    const Classified& got = v.steps[i];
    EXPECT_EQ(got.job, e.job);
    EXPECT_EQ(got.testid, e.testid);
    EXPECT_EQ(got.summary, e.summary);
    EXPECT_EQ(got.category(), e.category);
    EXPECT_EQ(got.flight.value, e.flight);
  }
  if (!c.subject.empty()) {
    EXPECT_EQ(v.subject(tolerable(v.outcome)), c.subject);
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, VerdictCase, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.name); });

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

}  // namespace
}  // namespace pushgate::verdict
