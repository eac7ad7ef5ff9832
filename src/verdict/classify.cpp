// SPEC section 5, rule by rule. Pure: everything comes in as arguments.

#include <pushgate/verdict.hpp>

#include <algorithm>
#include <regex>
#include <set>

namespace pushgate::verdict {

const FlightData::Job* FlightData::job(const std::string& name) const {
  auto it = std::find_if(jobs.begin(), jobs.end(), [&](const Job& j) { return j.name == name; });
  return it == jobs.end() ? nullptr : &*it;
}

bool Evidence::passed_before(const std::string& job, const std::string& testid) const {
  return std::find(ever_passed.begin(), ever_passed.end(), job + "\n" + testid) != ever_passed.end();
}

AllowList::AllowList(const std::vector<std::string>& entries) {
  for (const std::string& e : entries) {
    if (e.starts_with("!")) {
      std::string target = e.substr(1);
      patterns_.erase(std::remove(patterns_.begin(), patterns_.end(), target), patterns_.end());
    } else {
      patterns_.push_back(e);
    }
  }
}

namespace {
std::regex compile(const std::string& pattern) {
  std::string re;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '@' && i + 1 < pattern.size() && pattern[i + 1] == '@') {
      re += "[^ ]+";
      ++i;
    } else if (c == '@') {
      re += "[^ /-]+";
    } else if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) {
      re += '\\';
      re += c;
    } else {
      re += c;
    }
  }
  return std::regex(re);
}
}  // namespace

bool AllowList::allows(const std::string& job, const std::string& testid) const {
  std::string subject = job + " " + testid;
  return std::any_of(patterns_.begin(), patterns_.end(),
                     [&](const std::string& p) { return std::regex_match(subject, compile(p)); });
}

std::string Classified::category() const {
  if (heisenbug) return "intermittent";
  if (blocker == Blocker::none) return "not blocking";
  if (allowable) return "allowable";
  return "blocking";
}

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::perfect: return "perfect";
    case Outcome::tolerable: return "tolerable";
    case Outcome::regressions: return "regressions";
    case Outcome::problems: return "problems";
  }
  return "?";
}

bool tolerable(Outcome o) { return o == Outcome::perfect || o == Outcome::tolerable; }

std::string job_word(const std::vector<std::string>& statuses) {
  std::set<std::string> s(statuses.begin(), statuses.end());
  if (s.empty() || s == std::set<std::string>{"pass"}) return "all pass";
  auto subset_of = [&](std::set<std::string> allowed) {
    return std::all_of(s.begin(), s.end(), [&](const std::string& x) { return allowed.count(x) > 0; });
  };
  if (subset_of({"fail", "blocked"}) && s.count("fail")) return "ALL FAIL";
  if (subset_of({"fail", "blocked", "pass"}) && s.count("pass")) return "FAIL";
  std::string out = "trouble: ";
  bool first = true;
  for (const auto& x : s) {
    out += (first ? "" : "/") + x;
    first = false;
  }
  return out;
}

std::string Verdict::subject(bool pushed) const {
  std::string prefix = outcome == Outcome::regressions ? "regressions - " : outcome == Outcome::tolerable ? "tolerable " : "";
  return "[" + branch + " test] " + flight.str() + ": " + prefix + job_word + (pushed ? " - PUSHED" : "");
}

namespace {

const FlightData::Step* find_step(const FlightData::Job& j, const std::string& testid) {
  auto it = std::find_if(j.steps.begin(), j.steps.end(), [&](const auto& s) { return s.testid == testid; });
  return it == j.steps.end() ? nullptr : &*it;
}

bool unfinished(const std::string& st) { return st == "running" || st == "queued" || st == "preparing"; }

struct Judge {
  const FlightData& ours;
  const Evidence& ev;
  const AllowList& allow;
  std::vector<Classified> out;
  std::set<std::int64_t> judged;  // flights whose failures are already listed

  /// Did step `testid` of `job` pass in flight `h` (the whole job, for the pseudo-step)?
  static bool passed_in(const FlightData& h, const std::string& job, const std::string& testid, bool pseudo) {
    const FlightData::Job* j = h.job(job);
    if (!j) return false;
    if (pseudo) return j->status == "pass";
    const FlightData::Step* s = find_step(*j, testid);
    return s && s->status == "pass";
  }

  void judge(const FlightData& f) {
    if (!judged.insert(f.id.value).second) return;
    std::vector<const FlightData*> heisen_sources;
    for (const FlightData::Job& j : f.jobs) {
      std::vector<FlightData::Step> failing;
      for (const auto& s : j.steps) {
        if (s.status != "pass") failing.push_back(s);
      }
      bool pseudo = false;
      if (j.status != "pass" && failing.empty()) {
        failing.push_back({0, "<none executed>", j.status});
        pseudo = true;
      }
      for (const auto& s : failing) {
        Classified c{f.id, j.name, s.stepno, s.testid, s.status};
        if (pseudo) {  // rule 1
          c.summary = j.status;
          c.blocker = Blocker::broken;
        } else if (s.status == "blocked") {  // rule 2
          c.summary = "n/a";
        } else if (unfinished(s.status)) {  // rule 3
          c.summary = "unfinished";
          c.blocker = Blocker::unfinished;
        } else if (!ev.passed_before(j.name, s.testid)) {  // rule 4
          c.summary = "never pass";
        } else {  // rule 5: the strongest comparison with any baseline flight
          c.priority = -1;
          for (const FlightData& b : ev.baselines) {
            if (b.id == f.id) continue;
            const FlightData::Job* bj = b.job(j.name);
            const FlightData::Step* bs = bj ? find_step(*bj, s.testid) : nullptr;
            std::string summary;
            int prio;
            Blocker blocker = Blocker::none;
            if (!bs) {
              summary = "blocked in " + b.id.str();
              prio = 50;
            } else if (bs->status == s.status) {
              summary = "like " + b.id.str();
              prio = 190;
            } else if (s.status == "broken" && bs->status == "fail") {
              summary = "failed in " + b.id.str();
              prio = 180;
            } else if (bs->status == "pass") {
              summary = "REGR. vs. " + b.id.str();
              prio = j.build ? 600 : 100;
              blocker = Blocker::regression;
            } else {
              summary = bs->status + " in " + b.id.str();
              prio = 170;
            }
            if (prio > c.priority) {
              c.priority = prio;
              c.summary = summary;
              c.blocker = blocker;
            }
          }
          if (c.priority < 0) {
            c.priority = 10;
            c.summary = "baseline untested";
          }
        }
        // Rule 6: a heisenbug if another flight of the same revisions passed it.
        if (c.blocker != Blocker::none && !j.build) {
          for (const FlightData& h : ev.same_revisions) {
            if (h.id == f.id || h.id == ours.id) continue;
            if (passed_in(h, j.name, s.testid, pseudo)) {
              c.summary = "pass in " + h.id.str();
              c.heisenbug = true;
              c.blocker = Blocker::none;
              heisen_sources.push_back(&h);
              break;
            }
          }
        }
        // Rule 7: allowable.
        if (c.blocker != Blocker::none && allow.allows(j.name, s.testid)) c.allowable = true;
        out.push_back(std::move(c));
      }
    }
    // H's own failures are judged too (never excused by ours: no circular excuses).
    for (const FlightData* h : heisen_sources) judge(*h);
  }
};

}  // namespace

Verdict classify(const FlightData& ours, const Evidence& ev, const AllowList& allow) {
  Judge judge{ours, ev, allow, {}, {}};
  judge.judge(ours);
  Verdict v;
  v.flight = ours.id;
  v.branch = ours.branch;
  v.steps = std::move(judge.out);
  for (const auto& b : ev.baselines) v.baselines.push_back(b.id);
  std::vector<std::string> statuses;
  for (const auto& j : ours.jobs) statuses.push_back(j.status);
  v.job_word = job_word(statuses);
  bool any_nonpass = std::any_of(v.steps.begin(), v.steps.end(), [&](const Classified& c) { return c.flight == ours.id; });
  bool regression = false, blocked = false;
  for (const auto& c : v.steps) {
    if (c.blocker == Blocker::none || c.allowable) continue;
    blocked = true;
    regression = regression || c.blocker == Blocker::regression;
  }
  v.outcome = !any_nonpass ? Outcome::perfect
            : regression   ? Outcome::regressions
            : !blocked     ? Outcome::tolerable
                           : Outcome::problems;
  return v;
}

}  // namespace pushgate::verdict
