// The allocator across flights: waiting jobs are served by priority, then
// flight age, build jobs first, whichever process asks first.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <set>

#include <pushgate/scheduler.hpp>

#include "support.hpp"

namespace pushgate::scheduler {
namespace {

class SchedulerTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::unique_ptr<store::Store> st = store::Store::open({dir.str("p.db")}).value();
  RoleFlags x86{{"host", {"x86"}}};

  void SetUp() override {
    ASSERT_TRUE(st->sync_hosts({{"h0", "local", "", "", 0, {}, "", {"x86"}}}).has_value());
    ASSERT_TRUE(st->try_allocate_host("h0", FlightId{1}, "holder", "host").value());
  }
};

TEST_F(SchedulerTest, HigherPriorityWaiterGetsTheFreedHost) {
  ASSERT_TRUE(st->set_waiting({FlightId{5}, "test-low", 0, false, encode_roles(x86)}).has_value());
  ASSERT_TRUE(st->set_waiting({FlightId{6}, "test-high", 10, false, encode_roles(x86)}).has_value());
  ASSERT_TRUE(st->release_hosts(FlightId{1}, "holder").has_value());
  auto low = try_allocate(*st, {FlightId{5}, "test-low", false, 0}, x86);
  ASSERT_TRUE(low.has_value());
  EXPECT_FALSE(low->has_value()) << "the low-priority job took a host a higher one waits for";
  auto high = try_allocate(*st, {FlightId{6}, "test-high", false, 10}, x86);
  ASSERT_TRUE(high.has_value() && high->has_value());
  EXPECT_EQ(high->value().at("host"), "h0");
}

TEST_F(SchedulerTest, OlderFlightThenBuildJobsFirst) {
  ASSERT_TRUE(st->set_waiting({FlightId{7}, "build-amd64", 0, true, encode_roles(x86)}).has_value());
  ASSERT_TRUE(st->set_waiting({FlightId{3}, "test-amd64", 0, false, encode_roles(x86)}).has_value());
  ASSERT_TRUE(st->release_hosts(FlightId{1}, "holder").has_value());
  // Same priority: the older flight (3) comes before the build job of flight 7.
  EXPECT_FALSE(try_allocate(*st, {FlightId{7}, "build-amd64", true, 0}, x86).value().has_value());
  EXPECT_TRUE(try_allocate(*st, {FlightId{3}, "test-amd64", false, 0}, x86).value().has_value());
  std::vector<Candidate> c{{FlightId{3}, "test-b", false, 0}, {FlightId{3}, "build-a", true, 0}};
  order(c);
  EXPECT_EQ(c.front().job, "build-a");
}

TEST_F(SchedulerTest, WaitersThatCannotUseTheHostDoNotBlockIt) {
  ASSERT_TRUE(st->set_waiting({FlightId{2}, "test-arm", 99, false, encode_roles({{"host", {"arm64"}}})}).has_value());
  ASSERT_TRUE(st->release_hosts(FlightId{1}, "holder").has_value());
  EXPECT_TRUE(try_allocate(*st, {FlightId{5}, "test-x86", false, 0}, x86).value().has_value());
  EXPECT_EQ(decode_roles("src_host=a,equiv-*;dst_host=a,equiv-*").at("dst_host"),
            (std::vector<std::string>{"a", "equiv-*"}));
}

// Issue 12 item 2: a job waiting for a busy host polls without taking the
// database's write lock, so waiting jobs neither queue behind a writer nor
// hold one up. Another connection holds the write lock throughout; with the
// store's long busy wait, any write here would not return for minutes.
TEST_F(SchedulerTest, Issue12_PollingAWaitingJobTakesNoWriteLock) {
  ASSERT_TRUE(st->set_waiting({FlightId{5}, "test-waiting", 0, false, encode_roles(x86)}).has_value());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(dir.str("p.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto t0 = std::chrono::steady_clock::now();
  for (int tick = 0; tick < 20; ++tick) {
    auto r = try_allocate(*st, {FlightId{5}, "test-waiting", false, 0}, x86);
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
    EXPECT_FALSE(r->has_value());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "a poll waited for the write lock";
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
}

// Issue 13 item 5: among waiting jobs of one flight and priority, the one
// with the longer expected path to the flight's end gets the host first
// (builds first stays: a build ranks above any test).
TEST_F(SchedulerTest, Issue13_LongerRemainingPathGetsTheFreedHost) {
  ASSERT_TRUE(st->set_waiting({FlightId{4}, "test-a-short", 0, false, encode_roles(x86), 1200}).has_value());
  ASSERT_TRUE(st->set_waiting({FlightId{4}, "test-z-long", 0, false, encode_roles(x86), 3600}).has_value());
  ASSERT_TRUE(st->release_hosts(FlightId{1}, "holder").has_value());
  EXPECT_FALSE(try_allocate(*st, {FlightId{4}, "test-a-short", false, 0, 1200}, x86).value().has_value())
      << "by name the short job would win; the long one waits for the same host";
  EXPECT_TRUE(try_allocate(*st, {FlightId{4}, "test-z-long", false, 0, 3600}, x86).value().has_value());
  std::vector<Candidate> c{{FlightId{4}, "test-z-long", false, 0, 9000}, {FlightId{4}, "build-b", true, 0, 900}};
  order(c);
  EXPECT_EQ(c.front().job, "build-b");
}

// Found by bench/makespan_bench: a waiting pair job (two hosts of one
// equiv-* group) claimed hosts only when both were free at once, so jobs
// needing one host took each host as it freed and the six pair jobs of a
// flight ran one after another. Now the pair keeps the first free host of
// its group and gets the second when it frees.
TEST_F(SchedulerTest, Issue13_WaitingPairKeepsTheFirstFreeHostOfItsGroup) {
  ASSERT_TRUE(st->sync_hosts({{"a0", "local", "", "", 0, {}, "", {"x86", "equiv-a"}},
                              {"a1", "local", "", "", 0, {}, "", {"x86", "equiv-a"}},
                              {"b0", "local", "", "", 0, {}, "", {"x86", "equiv-b"}}})
                  .has_value());
  for (const char* h : {"a0", "a1", "b0"}) ASSERT_TRUE(st->try_allocate_host(h, FlightId{1}, h, "host").value());
  RoleFlags pair{{"src_host", {"x86", "equiv-*"}}, {"dst_host", {"x86", "equiv-*"}}};
  Candidate migrate{FlightId{4}, "test-pair", false, 0, 3600}, single{FlightId{4}, "test-xl", false, 0, 1200};
  ASSERT_TRUE(st->set_waiting({migrate.flight, migrate.job, 0, false, encode_roles(pair), migrate.remaining}).has_value());
  ASSERT_TRUE(st->set_waiting({single.flight, single.job, 0, false, encode_roles(x86), single.remaining}).has_value());
  ASSERT_TRUE(st->release_hosts(FlightId{1}, "a0").has_value());
  EXPECT_FALSE(try_allocate(*st, migrate, pair).value().has_value()) << "one host of a group is not a pair";
  EXPECT_FALSE(try_allocate(*st, single, x86).value().has_value()) << "the single job took the pair's first host";
  ASSERT_TRUE(st->release_hosts(FlightId{1}, "b0").has_value());
  auto b = try_allocate(*st, single, x86).value();
  ASSERT_TRUE(b.has_value()) << "b0 cannot make a pair with a0: the single job may have it";
  EXPECT_EQ(b->at("host"), "b0");
  ASSERT_TRUE(st->release_hosts(FlightId{1}, "a1").has_value());
  auto p = try_allocate(*st, migrate, pair).value();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ((std::set<std::string>{p->at("src_host"), p->at("dst_host")}), (std::set<std::string>{"a0", "a1"}));
}

TEST(CriticalPath, RemainingPathIsOwnDurationPlusTheLongestChainAfterIt) {
  std::map<std::string, JobShape> jobs{
      {"build-amd64", {900, {}}},
      {"build-arm64", {900, {}}},
      {"test-amd64-xl", {1200, {"build-amd64"}}},
      {"test-amd64-migrate", {3600, {"build-amd64"}}},
      {"test-amd64-after", {600, {"test-amd64-xl"}}},
      {"test-arm64-xl", {1800, {"build-arm64", "build-from-an-earlier-flight"}}},
  };
  auto r = remaining_paths(jobs);
  EXPECT_EQ(r.at("test-amd64-after"), 600);
  EXPECT_EQ(r.at("test-amd64-xl"), 1800);
  EXPECT_EQ(r.at("test-amd64-migrate"), 3600);
  EXPECT_EQ(r.at("build-amd64"), 900 + 3600);
  EXPECT_EQ(r.at("build-arm64"), 900 + 1800);
  // A cycle (config check refuses them) ends instead of recursing forever.
  auto cyc = remaining_paths({{"a", {10, {"b"}}}, {"b", {20, {"a"}}}});
  EXPECT_EQ(cyc.size(), 2u);
}

TEST_F(SchedulerTest, Issue13_ExpectedDurationsAreMediansOfHistoryWithDefaults) {
  auto job = [&](FlightId f, const std::string& name, const std::string& status, std::int64_t start, std::int64_t end) {
    ASSERT_TRUE(st->set_job_status(f, name, status, "").has_value());
    ASSERT_TRUE(st->put_step({f, name, 1, "install", "pass", start, start + 10, ""}).has_value());
    ASSERT_TRUE(st->put_step({f, name, 2, "run", status, start + 10, end, ""}).has_value());
  };
  std::vector<FlightId> flights;
  for (int i = 0; i < 7; ++i) {
    store::NewFlight f;
    f.branch = "xen-unstable";
    f.jobs = {{{}, "build-amd64", "build"}, {{}, "test-xl", "test"}, {{}, "test-broken", "test"}};
    flights.push_back(st->create_flight(f).value());
  }
  // test-xl: 100, 200, ..., 700 s; only the last five count: median 500.
  for (int i = 0; i < 7; ++i) job(flights[i], "test-xl", i % 2 ? "fail" : "pass", 1000, 1000 + 100 * (i + 1));
  job(flights[6], "build-amd64", "pass", 0, 840);
  job(flights[5], "test-broken", "broken", 0, 99999);  // broken runs say nothing of the job's length
  auto d = expected_durations(*st, {{"build-amd64", true}, {"test-xl", false}, {"test-broken", false},
                                    {"test-new", false}, {"build-new", true}})
               .value();
  EXPECT_EQ(d.at("test-xl"), 500);
  EXPECT_EQ(d.at("build-amd64"), 840);
  EXPECT_EQ(d.at("test-broken"), 500) << "no pass/fail run: the median of the tests";
  EXPECT_EQ(d.at("test-new"), 500);
  EXPECT_EQ(d.at("build-new"), 840);
  EXPECT_EQ(expected_durations(*st, {{"never", false}}).value().at("never"), 1800);
}

}  // namespace
}  // namespace pushgate::scheduler
