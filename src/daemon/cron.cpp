// Cron expressions: 5 fields (minute hour day-of-month month day-of-week),
// '*', ranges, lists, steps, month and weekday names; day-of-month and
// day-of-week combine with OR when both are restricted (as in Vixie cron).
// Times are evaluated in the configured time zone, read from the system tz
// database through Howard Hinnant's date library (Debian's
// libhowardhinnant-date-dev; C++20's std::chrono::zoned_time is not in
// GCC 12). Across DST:
// a local time that does not exist (spring forward) does not fire that day;
// a local time that occurs twice (fall back) fires once, the first time.

#include <pushgate/daemon.hpp>

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <sstream>

namespace pushgate::daemon {
namespace {

const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
const char* kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

Result<int> number(const std::string& s, int field, const std::string& expr) {
  std::string low;
  for (char c : s) low += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (field == 3) {
    for (int i = 0; i < 12; ++i) {
      if (low == kMonths[i]) return i + 1;
    }
  }
  if (field == 4) {
    for (int i = 0; i < 7; ++i) {
      if (low == kDays[i]) return i;
    }
  }
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return Status::invalid_argument("cron \"" + expr + "\": \"" + s + "\" is not a number or name");
  }
  return std::stoi(s);
}

/// Local wall time of a UTC instant in `zone`, as struct tm fields.
std::tm local_tm(const date::time_zone* zone, std::int64_t t) {
  using namespace std::chrono;
  auto local = zone->to_local(date::sys_seconds{seconds{t}});
  auto day = date::floor<date::days>(local);
  date::year_month_day ymd{day};
  date::hh_mm_ss<seconds> hms{local - day};
  std::tm out{};
  out.tm_year = static_cast<int>(ymd.year()) - 1900;
  out.tm_mon = static_cast<int>(static_cast<unsigned>(ymd.month())) - 1;
  out.tm_mday = static_cast<int>(static_cast<unsigned>(ymd.day()));
  out.tm_wday = static_cast<int>(date::weekday{day}.c_encoding());
  out.tm_hour = static_cast<int>(hms.hours().count());
  out.tm_min = static_cast<int>(hms.minutes().count());
  out.tm_sec = static_cast<int>(hms.seconds().count());
  return out;
}

Result<const date::time_zone*> locate(const std::string& zone) {
  try {
    return date::locate_zone(zone);
  } catch (const std::exception& e) {
    return Status::invalid_argument("unknown time zone \"" + zone + "\" (not in the tz database: " + e.what() + ")");
  }
}

}  // namespace

Status check_time_zone(const std::string& zone) {
  auto z = locate(zone);
  return z ? Status() : z.error();
}

Result<CronExpr> CronExpr::parse(const std::string& expr, const std::string& zone) {
  static const int lo[] = {0, 0, 1, 1, 0};
  static const int hi[] = {59, 23, 31, 12, 7};
  static const char* names[] = {"minute", "hour", "day of month", "month", "day of week"};
  std::istringstream in(expr);
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  if (fields.size() != 5) {
    return Status::invalid_argument("cron \"" + expr + "\": expected 5 fields (minute hour day month weekday), got " +
                                    std::to_string(fields.size()));
  }
  CronExpr c;
  c.text_ = expr;
  auto z = locate(zone);
  if (!z) return z.error();
  c.zone_ = *z;
  c.zone_name_ = zone;
  for (int f = 0; f < 5; ++f) {
    std::bitset<60>& bits = c.fields_[f];
    std::istringstream parts(fields[f]);
    for (std::string part; std::getline(parts, part, ',');) {
      int step = 1;
      if (auto slash = part.find('/'); slash != std::string::npos) {
        auto st = number(part.substr(slash + 1), -1, expr);
        if (!st || *st <= 0) return Status::invalid_argument("cron \"" + expr + "\": bad step in \"" + part + "\"");
        step = *st;
        part = part.substr(0, slash);
      }
      int a, b;
      if (part == "*") {
        a = lo[f];
        b = f == 4 ? 6 : hi[f];
      } else if (auto dash = part.find('-'); dash != std::string::npos) {
        auto x = number(part.substr(0, dash), f, expr);
        auto y = number(part.substr(dash + 1), f, expr);
        if (!x) return x.error();
        if (!y) return y.error();
        a = *x;
        b = *y;
      } else {
        auto x = number(part, f, expr);
        if (!x) return x.error();
        a = *x;
        // "5/15" means 5, 20, 35, 50 (from 5 to the end).
        b = step > 1 ? (f == 4 ? 6 : hi[f]) : a;
      }
      if (a < lo[f] || b > hi[f] || a > b) {
        return Status::invalid_argument("cron \"" + expr + "\": " + names[f] + " \"" + part + "\" outside " +
                                        std::to_string(lo[f]) + "-" + std::to_string(hi[f]));
      }
      for (int v = a; v <= b; v += step) bits.set(f == 4 && v == 7 ? 0 : v);
    }
  }
  c.dom_star_ = fields[2].starts_with("*");
  c.dow_star_ = fields[4].starts_with("*");
  return c;
}

bool CronExpr::matches(const std::tm& t) const {
  if (!fields_[0].test(t.tm_min) || !fields_[1].test(t.tm_hour) || !fields_[3].test(t.tm_mon + 1)) return false;
  bool dom = fields_[2].test(t.tm_mday), dow = fields_[4].test(t.tm_wday);
  if (dom_star_ || dow_star_) return dom && dow;
  return dom || dow;
}

std::optional<std::int64_t> CronExpr::next_after(std::int64_t after) const {
  // Walk whole minutes in UTC and look at each in local time: local times
  // that do not exist (spring forward) are never seen, repeated ones
  // (fall back) are seen twice. Skip whole hours and days that cannot match.
  std::int64_t t = (after / 60 + 1) * 60;
  const std::int64_t limit = after + 5LL * 366 * 86400;
  while (t <= limit) {
    const std::tm lt = local_tm(zone_, t);
    bool day_ok = fields_[3].test(lt.tm_mon + 1) &&
                  ((dom_star_ || dow_star_) ? (fields_[2].test(lt.tm_mday) && fields_[4].test(lt.tm_wday))
                                            : (fields_[2].test(lt.tm_mday) || fields_[4].test(lt.tm_wday)));
    if (!day_ok) {
      t += (60 - lt.tm_min) * 60 + (23 - lt.tm_hour) * 3600;  // to the next local midnight (about)
      continue;
    }
    if (!fields_[1].test(lt.tm_hour)) {
      t += (60 - lt.tm_min) * 60;
      continue;
    }
    if (fields_[0].test(lt.tm_min)) {
      // In a repeated hour (fall back) the same wall time comes twice: fire once.
      const std::tm et = local_tm(zone_, t - 3600);
      bool repeat = et.tm_hour == lt.tm_hour && et.tm_min == lt.tm_min && et.tm_mday == lt.tm_mday;
      if (!repeat) return t;
    }
    t += 60;
  }
  return std::nullopt;
}

}  // namespace pushgate::daemon
