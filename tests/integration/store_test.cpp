// The store on a real SQLite file: migrations, version refusal, WAL,
// transactions, typed queries.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <map>

#include <pushgate/store.hpp>

#include "support.hpp"

namespace pushgate::store {
namespace {

using test::TempDir;

std::unique_ptr<Store> open_ok(const std::string& path) {
  auto s = Store::open({path});
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().to_string());
  return s ? std::move(s).value() : nullptr;
}

std::string pragma(const std::string& path, const std::string& name) {
  std::string out = test::column_lines(path, "PRAGMA " + name, 0);
  return out.substr(0, out.find('\n'));
}

TEST(StoreOpen, CreatesAndMigratesInWalMode) {
  TempDir dir;
  auto s = open_ok(dir.str("p.db"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->schema_version(), Store::latest_schema_version());
  EXPECT_GE(Store::latest_schema_version(), 1);
  s.reset();
  EXPECT_EQ(pragma(dir.str("p.db"), "user_version"), std::to_string(Store::latest_schema_version()));
  EXPECT_EQ(pragma(dir.str("p.db"), "journal_mode"), "wal");
  // Reopening is a no-op migration.
  auto again = open_ok(dir.str("p.db"));
  EXPECT_EQ(again->schema_version(), Store::latest_schema_version());
}

TEST(StoreOpen, RefusesNewerSchema) {
  TempDir dir;
  open_ok(dir.str("p.db")).reset();
  sqlite3* db = nullptr;
  sqlite3_open(dir.str("p.db").c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version = 999", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto s = Store::open({dir.str("p.db")});
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find("newer than this pushgate"), std::string::npos) << s.error().message();
  EXPECT_EQ(pragma(dir.str("p.db"), "user_version"), "999");  // untouched
}

TEST(StoreOpen, MissingDirectoryIsClear) {
  auto s = Store::open({"/nonexistent-dir/sub/p.db"});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), StatusCode::not_found);
  EXPECT_NE(s.error().message().find("does not exist"), std::string::npos);
}

TEST(StoreOpen, NotADatabase) {
  TempDir dir;
  test::write_file(dir.path() / "p.db", std::string(4096, 'x'));
  auto s = Store::open({dir.str("p.db")});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), StatusCode::corruption) << s.error().to_string();
}

NewFlight sample_flight() {
  NewFlight f;
  f.branch = "xen-unstable";
  f.jobs = {{{}, "build-amd64", "build"}, {{}, "test-amd64-amd64-xl", "test-local"}};
  f.runvars = {{"build-amd64", "revision_xen", "aaaa"}, {"test-amd64-amd64-xl", "buildjob", "build-amd64"}};
  return f;
}

TEST(StoreFlights, CreateReadAndUpdate) {
  TempDir dir;
  auto s = open_ok(dir.str("p.db"));
  FlightId id = s->create_flight(sample_flight()).value();
  FlightId id2 = s->create_flight(sample_flight()).value();
  EXPECT_LT(id, id2);
  Flight f = s->get_flight(id).value();
  EXPECT_EQ(f.branch, "xen-unstable");
  EXPECT_EQ(f.blessing, "real");
  EXPECT_FALSE(f.started.has_value());
  auto jobs = s->list_jobs(id).value();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].status, "queued");
  ASSERT_TRUE(s->set_job_status(id, "build-amd64", "pass", "").has_value());
  EXPECT_EQ(s->list_jobs(id).value()[0].status, "pass");
  EXPECT_FALSE(s->set_job_status(id, "no-such-job", "pass", "").has_value());
  ASSERT_TRUE(s->set_runvar(id, {"build-amd64", "built_revision_xen", "aaaa", true}).has_value());
  ASSERT_TRUE(s->set_runvar(id, {"build-amd64", "built_revision_xen", "bbbb", true}).has_value());
  auto vars = s->list_runvars(id, "build-amd64").value();
  ASSERT_EQ(vars.size(), 2u);
  EXPECT_EQ(vars[0].name, "built_revision_xen");
  EXPECT_EQ(vars[0].value, "bbbb");
  EXPECT_TRUE(vars[0].synth);
  ASSERT_TRUE(s->put_step({id, "build-amd64", 1, "build", "pass", 10, 20, "/logs/1"}).has_value());
  auto steps = s->list_steps(id).value();
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(*steps[0].finished, 20);
  EXPECT_EQ(s->get_flight(FlightId{9999}).error().code(), StatusCode::not_found);
}

// Issue 13 item 4: /metrics counted history on every scrape (672 ms at 1M
// steps) and `flights_total{outcome="unfinished"}` fell when a flight
// finished. Counters now only rise through a flight's life; gauges of
// current states include zeros; the queries read no history table.
TEST(StoreMetrics, Issue13_CountersNeverFallAndGaugesIncludeZeros) {
  TempDir dir;
  auto s = open_ok(dir.str("p.db"));
  std::vector<Store::Counts> seen;
  auto snap = [&] { seen.push_back(s->counts().value()); };
  snap();
  FlightId id = s->create_flight(sample_flight()).value();
  snap();
  ASSERT_TRUE(s->set_job_status(id, "build-amd64", "running", "").has_value());
  ASSERT_TRUE(s->put_step({id, "build-amd64", 1, "build", "running", 10, std::nullopt, "/l"}).has_value());
  snap();
  EXPECT_EQ(seen.back().jobs_by_status.at("running"), 1);
  EXPECT_EQ(seen.back().step_seconds_count, 0);
  ASSERT_TRUE(s->put_step({id, "build-amd64", 1, "build", "pass", 10, 14, "/l"}).has_value());
  ASSERT_TRUE(s->set_job_status(id, "build-amd64", "pass", "").has_value());
  ASSERT_TRUE(s->set_job_status(id, "test-amd64-amd64-xl", "fail", "").has_value());
  snap();
  EXPECT_EQ(seen.back().flights_unfinished, 1);
  ASSERT_TRUE(s->set_flight_outcome(id, "regressions").has_value());
  snap();
  const auto& last = seen.back();
  EXPECT_EQ(last.flights_unfinished, 0);
  EXPECT_EQ(last.flights_by_outcome.at("regressions"), 1);
  EXPECT_EQ(last.jobs_ended_by_status.at("pass"), 1);
  EXPECT_EQ(last.jobs_ended_by_status.at("fail"), 1);
  EXPECT_EQ(last.jobs_by_status.at("running"), 0);  // zeros are there
  EXPECT_EQ(last.jobs_by_status.at("queued"), 0);
  EXPECT_EQ(last.step_seconds_count, 1);
  EXPECT_EQ(last.step_seconds_sum, 4);
  EXPECT_EQ(last.step_seconds_buckets.at(0).second, 0);  // le=1
  EXPECT_EQ(last.step_seconds_buckets.at(1).second, 1);  // le=5
  for (std::size_t i = 1; i < seen.size(); ++i) {
    for (const auto& [k, v] : seen[i - 1].flights_by_outcome) EXPECT_GE(seen[i].flights_by_outcome.at(k), v) << k;
    for (const auto& [k, v] : seen[i - 1].jobs_ended_by_status) EXPECT_GE(seen[i].jobs_ended_by_status.at(k), v) << k;
    EXPECT_GE(seen[i].step_seconds_count, seen[i - 1].step_seconds_count);
  }
  EXPECT_FALSE(last.flights_by_outcome.count("unfinished"));
  // Reopened (counters are stored, not recomputed): the same.
  s.reset();
  s = open_ok(dir.str("p.db"));
  EXPECT_EQ(s->counts().value().flights_by_outcome.at("regressions"), 1);
  // No query of /metrics scans a table that grows with history.
  for (const char* sql : {"SELECT status, COUNT(*) FROM jobs WHERE status IN ('queued', 'preparing', 'running') GROUP BY 1",
                          "SELECT COUNT(*) FROM flights WHERE outcome IS NULL",
                          "SELECT name, label, value FROM metric_counters"}) {
    // A scan is fine only of a partial index holding just the rows in a
    // current state (schema 7), never of a history table or its full index.
    EXPECT_EQ(test::history_scan(dir.str("p.db"), sql), "") << sql;
  }
}

// Issue 11 item 8: a re-queued job keeps nothing of its interrupted attempt
// but its inputs; what the attempt wrote moves to the attempt tables.
TEST(StoreFlights, Issue11_RequeuedJobStartsFromItsInputs) {
  TempDir dir;
  auto s = open_ok(dir.str("p.db"));
  FlightId id = s->create_flight(sample_flight()).value();
  ASSERT_TRUE(s->set_job_status(id, "build-amd64", "running", "").has_value());
  ASSERT_TRUE(s->set_runvar(id, {"build-amd64", "host", "h1", true}).has_value());
  ASSERT_TRUE(s->set_runvar(id, {"build-amd64", "built_revision_xen", "aaaa", true}).has_value());
  ASSERT_TRUE(s->set_runvar(id, {"build-amd64", "path_xendist", "/w/1/dist.tar", true}).has_value());
  ASSERT_TRUE(s->put_step({id, "build-amd64", 1, "build", "running", 10, std::nullopt, "/logs/1"}).has_value());
  auto rec = s->recover_after_restart("test", {}).value();
  ASSERT_EQ(rec.requeued.size(), 1u);
  std::map<std::string, std::string> left;
  for (const auto& v : s->list_runvars(id, "build-amd64").value()) left[v.name] = v.value;
  EXPECT_EQ(left.count("host"), 0u);
  EXPECT_EQ(left.count("built_revision_xen"), 0u);
  EXPECT_EQ(left.count("path_xendist"), 0u) << "the re-run must not see the first attempt's outputs";
  EXPECT_EQ(left["revision_xen"], "aaaa") << "inputs stay";
  EXPECT_EQ(left["restarts"], "1");
  auto kept = s->list_runvar_attempts(id).value();
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0].attempt, 1);
  EXPECT_EQ(kept[0].var.name, "built_revision_xen");
  EXPECT_EQ(kept[2].var.value, "/w/1/dist.tar");
  EXPECT_EQ(s->list_step_attempts(id).value().at(0).attempt, 1);
}

// Evidence is finished flights only (SPEC section 5; issue 11 item 8 for revision_tested).
TEST(StoreFlights, OnlyFinishedFlightsCountAsTestedOrPassed) {
  TempDir dir;
  auto s = open_ok(dir.str("p.db"));
  FlightId id = s->create_flight(sample_flight()).value();
  ASSERT_TRUE(s->put_step({id, "build-amd64", 1, "build", "pass", 10, 20, ""}).has_value());
  EXPECT_FALSE(s->revision_tested("xen-unstable", "xen", "aaaa").value()) << "a flight that never finished";
  EXPECT_FALSE(s->first_pass("xen-unstable", "build-amd64", "build").value().has_value());
  ASSERT_TRUE(s->set_flight_times(id, 5, 30).has_value());
  EXPECT_TRUE(s->revision_tested("xen-unstable", "xen", "aaaa").value());
  EXPECT_EQ(s->first_pass("xen-unstable", "build-amd64", "build").value(), id);
}

TEST(StoreFlights, StarvedStepsAndStoredVerdicts) {
  TempDir dir;
  auto s = open_ok(dir.str("p.db"));
  FlightId id = s->create_flight(sample_flight()).value();
  ASSERT_TRUE(s->put_step({id, "build-amd64", 1, "hosts-allocate", "starved", 10, 10, ""}).has_value());
  EXPECT_EQ(s->list_steps(id).value()[0].status, "starved");
  Store::StoredVerdict v;
  v.flight = id;
  v.who = "test";
  v.outcome = "regressions";
  v.body = "{}";
  ASSERT_TRUE(s->record_verdict(v).has_value());
  v.outcome = "tolerable";
  v.reason = "allowed after review";
  ASSERT_TRUE(s->record_verdict(v).has_value());
  auto all = s->verdicts(id).value();
  ASSERT_EQ(all.size(), 2u) << "a rejudge keeps the old verdict";
  EXPECT_EQ(all[0].outcome, "regressions");
  EXPECT_EQ(all[1].reason, "allowed after review");
  EXPECT_EQ(s->get_flight(id).value().outcome, "tolerable") << "the flight's outcome is its newest verdict's";
  v.outcome = "fine";
  EXPECT_FALSE(s->record_verdict(v).has_value());
  EXPECT_EQ(s->verdicts(id).value().size(), 2u);
}

TEST(StoreFlights, BadFlightWritesNothing) {
  TempDir dir;
  auto s = open_ok(dir.str("p.db"));
  NewFlight f = sample_flight();
  f.blessing = "bogus";  // rejected by a CHECK constraint inside the transaction
  EXPECT_FALSE(s->create_flight(f).has_value());
  NewFlight g = sample_flight();
  g.jobs.push_back({{}, "x", "r", "not-a-status"});  // the flight row is inserted before this fails
  EXPECT_FALSE(s->create_flight(g).has_value());
  EXPECT_TRUE(s->list_flights({}).value().empty());
}

TEST(StoreFlights, ListFilters) {
  TempDir dir;
  auto s = open_ok(dir.str("p.db"));
  NewFlight a = sample_flight();
  NewFlight b = sample_flight();
  b.branch = "libvirt";
  b.blessing = "adhoc";
  FlightId fa = s->create_flight(a).value();
  s->create_flight(b).value();
  FlightId fc = s->create_flight(a).value();
  ASSERT_TRUE(s->set_flight_outcome(fa, "tolerable").has_value());
  EXPECT_EQ(s->list_flights({.branch = "xen-unstable"}).value().size(), 2u);
  EXPECT_EQ(s->list_flights({.blessings = {"adhoc"}}).value().size(), 1u);
  EXPECT_EQ(s->list_flights({.outcome = "tolerable"}).value().at(0).id, fa);
  auto page = s->list_flights({.limit = 1}).value();
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].id, fc);
  EXPECT_EQ(s->list_flights({.limit = 10, .before = fc.value}).value().size(), 2u);
}

TEST(StoreHosts, SyncKeepsStateAndDisablesRemoved) {
  TempDir dir;
  auto s = open_ok(dir.str("p.db"));
  ASSERT_TRUE(s->sync_hosts({{"h0", "local", "", "", 0, {}, "", {"arch-amd64"}},
                             {"h1", "libvirt", "", "", 0, {}, "", {"libvirt"}}})
                  .has_value());
  ASSERT_TRUE(s->set_host_state("h0", "disabled", "broken disk").has_value());
  ASSERT_TRUE(s->sync_hosts({{"h0", "local", "", "", 0, {}, "", {"arch-amd64", "hvm"}}}).has_value());
  auto hosts = s->list_hosts().value();
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].state, "disabled");
  EXPECT_EQ(hosts[0].state_reason, "broken disk");
  EXPECT_EQ(hosts[0].flags, (std::vector<std::string>{"arch-amd64", "hvm"}));
  EXPECT_EQ(hosts[1].state, "disabled");
  EXPECT_EQ(hosts[1].state_reason, "no longer configured");
  EXPECT_FALSE(s->set_host_state("nope", "enabled", "").has_value());
}

TEST(StoreFrozen, AuditNewestFirst) {
  TempDir dir;
  auto s = open_ok(dir.str("p.db"));
  ASSERT_TRUE(s->record_frozen_change({0, "libvirt", "xen-4.7-testing", "osstest/frozen/xen-4.7-testing", "add", "",
                                       "aaa", "v1.0", "rm", "", 100})
                  .has_value());
  ASSERT_TRUE(s->record_frozen_change({0, "libvirt", "xen-4.7-testing", "osstest/frozen/xen-4.7-testing", "move",
                                       "aaa", "bbb", "v1.1", "rm", "", 200})
                  .has_value());
  auto h = s->frozen_history("libvirt", "", 10).value();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].action, "move");
  EXPECT_EQ(h[0].old_rev, "aaa");
  EXPECT_TRUE(s->frozen_history("qemu", "", 10).value().empty());
  EXPECT_FALSE(s->record_frozen_change({0, "t", "b", "r", "explode", "", "", "", "rm", "", 1}).has_value());
}

}  // namespace
}  // namespace pushgate::store
