// The allocator across flights: waiting jobs are served by priority, then
// flight age, build jobs first, whichever process asks first.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>

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
  auto low = try_allocate(*st, FlightId{5}, "test-low", x86, 0, false);
  ASSERT_TRUE(low.has_value());
  EXPECT_FALSE(low->has_value()) << "the low-priority job took a host a higher one waits for";
  auto high = try_allocate(*st, FlightId{6}, "test-high", x86, 10, false);
  ASSERT_TRUE(high.has_value() && high->has_value());
  EXPECT_EQ(high->value().at("host"), "h0");
}

TEST_F(SchedulerTest, OlderFlightThenBuildJobsFirst) {
  ASSERT_TRUE(st->set_waiting({FlightId{7}, "build-amd64", 0, true, encode_roles(x86)}).has_value());
  ASSERT_TRUE(st->set_waiting({FlightId{3}, "test-amd64", 0, false, encode_roles(x86)}).has_value());
  ASSERT_TRUE(st->release_hosts(FlightId{1}, "holder").has_value());
  // Same priority: the older flight (3) comes before the build job of flight 7.
  EXPECT_FALSE(try_allocate(*st, FlightId{7}, "build-amd64", x86, 0, true).value().has_value());
  EXPECT_TRUE(try_allocate(*st, FlightId{3}, "test-amd64", x86, 0, false).value().has_value());
  std::vector<Candidate> c{{FlightId{3}, "test-b", false, 0}, {FlightId{3}, "build-a", true, 0}};
  order(c);
  EXPECT_EQ(c.front().job, "build-a");
}

TEST_F(SchedulerTest, WaitersThatCannotUseTheHostDoNotBlockIt) {
  ASSERT_TRUE(st->set_waiting({FlightId{2}, "test-arm", 99, false, encode_roles({{"host", {"arm64"}}})}).has_value());
  ASSERT_TRUE(st->release_hosts(FlightId{1}, "holder").has_value());
  EXPECT_TRUE(try_allocate(*st, FlightId{5}, "test-x86", x86, 0, false).value().has_value());
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
    auto r = try_allocate(*st, FlightId{5}, "test-waiting", x86, 0, false);
    ASSERT_TRUE(r.has_value()) << r.error().to_string();
    EXPECT_FALSE(r->has_value());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "a poll waited for the write lock";
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
}

}  // namespace
}  // namespace pushgate::scheduler
