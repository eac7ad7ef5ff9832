// Claim (issue 13 item 4): every query on the request path (/metrics, the
// branch board, flight lists, a flight's jobs and steps, job history, host
// history, pushes) costs about the same on a store of 1M steps as on one of
// 10k: ratio cost(1M) / cost(10k) <= 1.5 for each.
//
// Both stores are made with the real schema (Store::open runs the
// migrations, so the metric triggers fire while they fill), shaped like
// osstest: flights of 120 jobs x 8 steps, with runvars.
//
//   build/bench/store_bench [small_flights=10] [big_flights=1000]

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <pushgate/api.hpp>
#include <pushgate/store.hpp>

#include "support.hpp"

using namespace pushgate;
using Clock = std::chrono::steady_clock;

namespace {

void fill(const std::string& path, int flights, int branches) {
  store::Store::open({path}).value();  // schema and triggers
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA synchronous = OFF; BEGIN", nullptr, nullptr, nullptr);
  auto prep = [&](const char* sql) {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
    return s;
  };
  sqlite3_stmt* f = prep("INSERT INTO flights (flight, branch, blessing, intended, created, started, finished, outcome)"
                         " VALUES (?1, ?2, 'real', 'real', ?3, ?3, ?3 + 7200, NULL)");
  sqlite3_stmt* o = prep("UPDATE flights SET outcome = ?2 WHERE flight = ?1");
  sqlite3_stmt* j = prep("INSERT INTO jobs (flight, job, recipe, status) VALUES (?1, ?2, 'r', 'queued')");
  sqlite3_stmt* js = prep("UPDATE jobs SET status = ?3 WHERE flight = ?1 AND job = ?2");
  sqlite3_stmt* s = prep("INSERT INTO steps (flight, job, stepno, testid, status, started, finished, log_path)"
                         " VALUES (?1, ?2, ?3, ?4, 'pass', ?5, ?6, '/logs/x')");
  sqlite3_stmt* r = prep("INSERT INTO runvars (flight, job, name, value, synth) VALUES (?1, ?2, ?3, ?4, 0)");
  const char* outcomes[] = {"perfect", "tolerable", "regressions", "problems"};
  for (int fl = 1; fl <= flights; ++fl) {
    std::string branch = "branch-" + std::to_string(1 + fl % branches);
    std::int64_t t = 1700000000 + fl * 7200LL;
    sqlite3_bind_int(f, 1, fl);
    sqlite3_bind_text(f, 2, branch.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(f, 3, t);
    sqlite3_step(f);
    sqlite3_reset(f);
    for (int jb = 0; jb < 120; ++jb) {
      std::string job = (jb < 18 ? "build-" : "test-amd64-") + std::to_string(jb);
      sqlite3_bind_int(j, 1, fl);
      sqlite3_bind_text(j, 2, job.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_step(j);
      sqlite3_reset(j);
      for (int st = 1; st <= 8; ++st) {
        std::string testid = "step-" + std::to_string(st);
        sqlite3_bind_int(s, 1, fl);
        sqlite3_bind_text(s, 2, job.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 3, st);
        sqlite3_bind_text(s, 4, testid.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 5, t + st * 60);
        sqlite3_bind_int64(s, 6, t + st * 60 + (st * 37 + jb) % 900);
        sqlite3_step(s);
        sqlite3_reset(s);
      }
      for (const char* name : {"host", "revision_xen", "revision_qemu", "arch", "buildjob"}) {
        sqlite3_bind_int(r, 1, fl);
        sqlite3_bind_text(r, 2, job.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(r, 3, name, -1, SQLITE_STATIC);
        std::string v = std::string(name) + "-" + std::to_string(fl);
        sqlite3_bind_text(r, 4, v.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_step(r);
        sqlite3_reset(r);
      }
      sqlite3_bind_int(js, 1, fl);
      sqlite3_bind_text(js, 2, job.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(js, 3, (jb + fl) % 17 ? "pass" : "fail", -1, SQLITE_STATIC);
      sqlite3_step(js);
      sqlite3_reset(js);
    }
    sqlite3_bind_int(o, 1, fl);
    sqlite3_bind_text(o, 2, outcomes[fl % 4], -1, SQLITE_STATIC);
    sqlite3_step(o);
    sqlite3_reset(o);
  }
  for (auto* st : {f, o, j, js, s, r}) sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT; ANALYZE", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

struct Query {
  const char* name;
  std::function<bool(const store::Store&, FlightId last)> run;
};

/// Microseconds of one run of `q`: the best of 5 means of 0.1 s each, so a
/// busy second core does not decide the ratio.
double cost(const store::Store& st, FlightId last, const Query& q) {
  q.run(st, last);  // warm the page cache
  double best = 1e18;
  for (int round = 0; round < 5; ++round) {
    int n = 0;
    auto t0 = Clock::now();
    while (std::chrono::duration<double>(Clock::now() - t0).count() < 0.1 || n < 3) {
      if (!q.run(st, last)) return -1;
      ++n;
    }
    best = std::min(best, std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int small = argc > 1 ? std::atoi(argv[1]) : 10;
  int big = argc > 2 ? std::atoi(argv[2]) : 1000;
  test::TempDir dir;
  const std::string a = dir.str("small.db"), b = dir.str("big.db");
  auto t0 = Clock::now();
  // Every query asks for at most 5 rows, and both stores have at least 5
  // flights per branch: the same answer size, only the history differs.
  fill(a, small, 1);
  fill(b, big, 5);
  std::printf("filled %d and %d flights (%d and %d steps) in %.1f s\n", small, big, small * 960, big * 960,
              std::chrono::duration<double>(Clock::now() - t0).count());
  auto sa = store::Store::open({a}).value();
  auto sb = store::Store::open({b}).value();
  std::vector<Query> queries = {
      {"/metrics counts", [](const store::Store& s, FlightId) { return s.counts().has_value(); }},
      {"board: last flight of a branch",
       [](const store::Store& s, FlightId) { return s.list_flights({.branch = "branch-1", .limit = 1}).has_value(); }},
      {"board: 5 real flights of a branch",
       [](const store::Store& s, FlightId) {
         return s.list_flights({.branch = "branch-1", .blessings = {"real"}, .limit = 5}).has_value();
       }},
      {"flight list (newest 5)", [](const store::Store& s, FlightId) { return s.list_flights({.limit = 5}).has_value(); }},
      {"a flight's jobs", [](const store::Store& s, FlightId f) { return s.list_jobs(f).has_value(); }},
      {"a flight's steps", [](const store::Store& s, FlightId f) { return s.list_steps(f).has_value(); }},
      {"a flight's runvars", [](const store::Store& s, FlightId f) { return s.list_runvars(f, "").has_value(); }},
      {"job history (5)",
       [](const store::Store& s, FlightId) {
         return api::job_history_json(s, "branch-1", "test-amd64-40", "", 5).has_value();
       }},
      {"step history (5)",
       [](const store::Store& s, FlightId) {
         return api::job_history_json(s, "branch-1", "test-amd64-40", "step-3", 5).has_value();
       }},
      {"pushes of a branch", [](const store::Store& s, FlightId) { return s.pushes("branch-1", 5).has_value(); }},
      {"push failures in a row", [](const store::Store& s, FlightId) { return s.consecutive_push_failures().has_value(); }},
  };
  bool ok = true;
  std::printf("%-36s %12s %12s %8s\n", "query", "10k steps", "1M steps", "ratio");
  for (const auto& q : queries) {
    double x = cost(*sa, FlightId{small}, q), y = cost(*sb, FlightId{big}, q);
    double ratio = y / x;
    bool pass = x > 0 && y > 0 && ratio <= 1.5;
    ok = ok && pass;
    std::printf("%-36s %9.1f us %9.1f us %7.2fx%s\n", q.name, x, y, ratio, pass ? "" : "  <-- over 1.5x");
  }
  std::printf("%s: every request-path query within 1.5x from 10k to 1M steps\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
