// Cron next-fire times against an independent implementation (Debian's
// python3-croniter, run with the system interpreter) in UTC, and DST edges
// in Europe/London checked by hand (croniter is no oracle there). The zone
// is the expression's own: the process's TZ is set to something else on
// purpose, and must not matter.

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

#include <pushgate/daemon.hpp>

#include "support.hpp"

namespace pushgate::daemon {
namespace {

/// The process's zone, which cron evaluation must ignore.
void set_tz(const char* tz) {
  setenv("TZ", tz, 1);
  tzset();
}

const std::vector<std::string> kExpressions = {
    "* * * * *", "0 * * * *", "*/5 * * * *", "*/7 * * * *", "5/15 * * * *", "0,30 * * * *", "15,45 */3 * * *",
    "0 0 * * *", "30 2 * * *", "59 23 * * *", "0 8-18 * * *", "0 8-18/2 * * *", "0 22 * * 1-5", "0 9 * * mon-fri",
    "0 9 * * sat,sun", "0 0 * * 0", "0 0 * * 7", "0 12 * * wed", "0 0 1 * *", "0 0 15 * *", "0 0 31 * *",
    "0 0 30 * *", "0 12 30 4,6,9,11 *", "0 0 29 2 *", "59 23 31 12 *", "0 0 1 1 *", "30 8 1 jan,jul *",
    "0 0 1 */3 *", "0 6 * feb *", "0 6 * jun-aug *", "0 0 13 * fri", "0 0 1-7 * 1", "0 0 * * 1-5/2",
    "*/15 9-17 * * mon-fri", "0 4 8-14 * *", "0 0 28-31 * *", "0 3 * * 4", "45 23 * * 6", "0 */6 * * *",
    "0 0,12 * * *", "10-20/5 * * * *", "0 1 1,15 * *", "0 0 * 12 *", "0 18 24 12 *", "0 0 1 2 *",
    "0 0 31 1,3,5,7,8,10,12 *", "1 2 3 4 *", "0 0 * * 1,3,5", "0 0 2-30/7 * *", "*/20 0-3 * * *",
    "0 12 * * sun", "0 0 29 2 mon", "30 */4 1-10 * *", "0 5 * 2-11/3 *", "0 0 L * *"};

TEST(Cron, MatchesCroniterInUtc) {
  set_tz("Asia/Kolkata");
  // 2026-01-01 00:00, 2026-02-27 13:37:11, 2028-02-28 23:59:59, 2026-12-31 23:59:00, 2027-06-15 06:06:06.
  std::vector<std::int64_t> starts = {1767225600, 1772199431, 1835481599, 1798761540, 1813471566};
  nlohmann::json req = nlohmann::json::array();
  std::size_t valid = 0;
  for (const auto& e : kExpressions) {
    auto c = CronExpr::parse(e);
    if (e == "0 0 L * *") {
      EXPECT_FALSE(c.has_value()) << "'L' is not supported and must be refused";
      continue;
    }
    ASSERT_TRUE(c.has_value()) << e << ": " << c.error().message();
    ++valid;
    for (auto s : starts) req.push_back({e, s});
  }
  ASSERT_GE(valid, 50u);
  test::TempDir dir;
  test::write_file(dir.path() / "req.json", req.dump());
  test::write_file(dir.path() / "oracle.py",
                   "import json, sys, datetime\n"
                   "from croniter import croniter\n"
                   "out = []\n"
                   "for expr, start in json.load(open(sys.argv[1])):\n"
                   "    base = datetime.datetime.fromtimestamp(start, datetime.timezone.utc)\n"
                   "    out.append(int(croniter(expr, base).get_next(float)))\n"
                   "print(json.dumps(out))\n");
  auto r = test::run({"/usr/bin/python3", dir.str("oracle.py"), dir.str("req.json")});
  if (r.exit_code != 0 && r.err.find("No module named 'croniter'") != std::string::npos) {
    GTEST_FAIL() << "python3-croniter is missing: scripts/setup.sh installs it";
  }
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto expected = nlohmann::json::parse(r.out);
  ASSERT_EQ(expected.size(), req.size());
  for (std::size_t i = 0; i < req.size(); ++i) {
    auto c = CronExpr::parse(req[i][0].get<std::string>()).value();
    auto ours = c.next_after(req[i][1].get<std::int64_t>());
    ASSERT_TRUE(ours.has_value()) << req[i].dump();
    EXPECT_EQ(*ours, expected[i].get<std::int64_t>()) << req[i][0] << " after " << req[i][1];
  }
}

TEST(Cron, DaylightSavingInEuropeLondon) {
  // Issue 12 item 10: the zone comes from the config, not from TZ (the
  // daemon used setenv("TZ") in a multithreaded process).
  set_tz("America/New_York");
  auto daily = CronExpr::parse("30 1 * * *", "Europe/London").value();
  // 2026-03-28 12:00 UTC. On the 29th clocks jump 01:00 GMT -> 02:00 BST, so
  // 01:30 does not exist that day: the next fire is 2026-03-30 01:30 BST (00:30 UTC).
  EXPECT_EQ(daily.next_after(1774699200).value(), 1774830600);
  // 2026-10-24 12:00 UTC. On the 25th 01:00-02:00 BST repeats as GMT: 01:30
  // fires once, at its first occurrence (00:30 UTC), not again at 01:30 UTC.
  auto first = daily.next_after(1792843200).value();
  EXPECT_EQ(first, 1792888200);
  EXPECT_EQ(daily.next_after(first).value(), 1792978200);  // 2026-10-26 01:30 GMT
  auto hourly = CronExpr::parse("0 * * * *", "Europe/London").value();
  // Hourly jobs keep firing every real hour across the jump.
  EXPECT_EQ(hourly.next_after(1774742400).value(), 1774746000);  // 00:00 GMT -> 02:00 BST
  EXPECT_EQ(hourly.next_after(1774746000).value(), 1774749600);
  // The same expression in UTC, in the same process: 01:30 UTC every day.
  EXPECT_EQ(CronExpr::parse("30 1 * * *", "UTC").value().next_after(1774699200).value(), 1774747800);
  set_tz("UTC");
}

TEST(Cron, UnknownTimeZoneIsRefused) {
  for (const char* z : {"Mars/Olympus", "../../etc/passwd", "", "Europe/"}) {
    auto c = CronExpr::parse("0 0 * * *", z);
    EXPECT_FALSE(c.has_value()) << z;
    if (!c) {
      EXPECT_NE(c.error().message().find("time zone"), std::string::npos) << c.error().message();
    }
    EXPECT_FALSE(check_time_zone(z).ok()) << z;
  }
  EXPECT_TRUE(check_time_zone("Europe/London").ok());
  EXPECT_TRUE(check_time_zone("UTC").ok());
}

TEST(Cron, BadExpressionsAreRefusedWithAReason) {
  for (const char* e : {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
                        "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "x * * * *", "* * * foo *"}) {
    auto c = CronExpr::parse(e);
    EXPECT_FALSE(c.has_value()) << "accepted: \"" << e << "\"";
    if (!c) {
      EXPECT_NE(c.error().message().find("cron"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace pushgate::daemon
