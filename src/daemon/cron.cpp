// Cron expressions: 5 fields (minute hour day-of-month month day-of-week),
// '*', ranges, lists, steps, month and weekday names; day-of-month and
// day-of-week combine with OR when both are restricted (as in Vixie cron).
// Times are evaluated in the process's local time zone (TZ). Across DST:
// a local time that does not exist (spring forward) does not fire that day;
// a local time that occurs twice (fall back) fires once, the first time.

#include <pushgate/daemon.hpp>

#include <algorithm>
#include <cctype>
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

}  // namespace

Result<CronExpr> CronExpr::parse(const std::string& expr) {
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
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm lt{};
    localtime_r(&tt, &lt);
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
      std::time_t earlier = static_cast<std::time_t>(t - 3600);
      std::tm et{};
      localtime_r(&earlier, &et);
      bool repeat = et.tm_hour == lt.tm_hour && et.tm_min == lt.tm_min && et.tm_mday == lt.tm_mday;
      if (!repeat) return t;
    }
    t += 60;
  }
  return std::nullopt;
}

}  // namespace pushgate::daemon
