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

bool FlightData::built_only(const std::string& tree, const std::string& revision) const {
  auto it = built.find(tree);
  return it != built.end() && it->second.size() == 1 && *it->second.begin() == revision;
}

std::string FlightData::tested(const std::string& tree) const {
  if (auto it = built.find(tree); it != built.end() && it->second.size() == 1) return *it->second.begin();
  auto in = revisions.find(tree);
  return in == revisions.end() ? std::string() : in->second;
}

bool is_prev_job(const std::string& job) { return job.ends_with("-prev"); }

bool is_evidence_for(const FlightData& f, FlightId judged) {
  bool real = f.blessing == "real" || f.blessing == "real-retest" || f.blessing == "real-bisect";
  return real && f.finished && f.id < judged;
}

bool Evidence::passed_before(const std::string& job, const std::string& testid, FlightId before) const {
  auto it = first_pass.find(job + "\n" + testid);
  return it != first_pass.end() && it->second < before;
}

Evidence select_evidence(const FlightData& ours, const std::vector<FlightData>& candidates, const std::string& tree,
                         const std::string& basis, std::map<std::string, FlightId> first_pass) {
  Evidence ev;
  ev.first_pass = std::move(first_pass);
  std::string tested = ours.tested(tree);
  std::vector<const FlightData*> sorted;
  for (const FlightData& c : candidates) sorted.push_back(&c);
  std::sort(sorted.begin(), sorted.end(), [](const FlightData* a, const FlightData* b) { return b->id < a->id; });
  std::set<std::int64_t> seen;
  for (const FlightData* c : sorted) {
    if (!seen.insert(c->id.value).second || c->branch != ours.branch) continue;
    // Our own real-retest flights are made after us, yet their passes are
    // what the retest is for (SPEC section 5, "pass in N-retest").
    bool our_retest = c->retest_of == ours.id && c->blessing == "real-retest" && c->finished;
    if (!is_evidence_for(*c, ours.id) && !our_retest) continue;
    if (!basis.empty() && !our_retest && c->built_only(tree, basis)) ev.baselines.push_back(*c);
    if (!tested.empty() && c->built_only(tree, tested)) ev.same_revisions.push_back(*c);
  }
  return ev;
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

const char* to_string(Blocker b) {
  switch (b) {
    case Blocker::none: return "none";
    case Blocker::broken: return "broken";
    case Blocker::unfinished: return "unfinished";
    case Blocker::regression: return "regression";
  }
  return "none";
}

Result<Blocker> parse_blocker(const std::string& s) {
  for (Blocker b : {Blocker::none, Blocker::broken, Blocker::unfinished, Blocker::regression}) {
    if (s == to_string(b)) return b;
  }
  return Status::invalid_argument("unknown blocker \"" + s + "\"");
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

Result<Outcome> parse_outcome(const std::string& s) {
  for (Outcome o : {Outcome::perfect, Outcome::tolerable, Outcome::regressions, Outcome::problems}) {
    if (s == to_string(o)) return o;
  }
  return Status::invalid_argument("unknown outcome \"" + s + "\"", "one of perfect, tolerable, regressions, problems");
}

bool tolerable(Outcome o) { return o == Outcome::perfect || o == Outcome::tolerable; }

const char* headline(Outcome o) {
  switch (o) {
    case Outcome::perfect: return "Perfect :-)";
    case Outcome::tolerable: return "Failures :-/ but no regressions.";
    case Outcome::regressions: return "Regressions :-(";
    case Outcome::problems: return "Failures and problems with tests :-(";
  }
  return "?";
}

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
  return "[" + branch + (baseline_flight ? " baseline test] " : " test] ") + flight.str() + ": " + prefix + job_word +
         (pushed ? " - PUSHED" : "");
}

namespace {

const FlightData::Step* find_step(const FlightData::Job& j, const std::string& testid) {
  auto it = std::find_if(j.steps.begin(), j.steps.end(), [&](const auto& s) { return s.testid == testid; });
  return it == j.steps.end() ? nullptr : &*it;
}

bool unfinished(const std::string& st) { return st == "running" || st == "queued" || st == "preparing"; }
bool not_applicable(const std::string& st) { return st == "blocked" || st == "starved"; }

/// Report order, most severe first: each (job, testid) is listed once, in the first of these.
int severity(const Classified& c) {
  std::string k = c.category();
  return k == "blocking" ? 0 : k == "intermittent" ? 1 : k == "allowable" ? 2 : 3;
}

struct Judge {
  const FlightData& ours;
  const Evidence& ev;
  const AllowList& allow;
  std::vector<Classified> out;
  std::set<std::int64_t> judged;  // flights whose items are already listed
  std::vector<AbiCompared> abi;   // ours' records, compared

  /// Did step `testid` of `job` pass in flight `h` (the whole job, for the pseudo-item)?
  static bool passed_in(const FlightData& h, const std::string& job, const std::string& testid, bool pseudo) {
    const FlightData::Job* j = h.job(job);
    if (!j) return false;
    if (pseudo) return j->status == "pass";
    const FlightData::Step* s = find_step(*j, testid);
    return s && s->status == "pass";
  }

  /// Rule 5 for one item of flight `f`: the strongest comparison with any
  /// baseline flight created before `f`.
  void compare_with_baselines(const FlightData& f, const FlightData::Job& j, Classified& c) {
    c.priority = -1;
    for (const FlightData& b : ev.baselines) {
      if (!(b.id < f.id)) continue;
      const FlightData::Job* bj = b.job(j.name);
      if (!bj) continue;
      const FlightData::Step* bs = find_step(*bj, c.testid);
      std::string summary;
      int prio;
      Blocker blocker = Blocker::none;
      if (!bs) {
        summary = "blocked in ";
        prio = 50;
      } else if (bs->status == c.status) {
        summary = "like ";
        prio = 190;
      } else if (c.status == "broken" && bs->status == "fail") {
        summary = "failed in ";
        prio = 180;
      } else if (bs->status == "pass") {
        summary = "REGR. vs. ";
        prio = j.build ? 600 : 100;
        blocker = c.status == "broken" ? Blocker::broken : Blocker::regression;
      } else {
        summary = bs->status + " in ";
        prio = 170;
      }
      // Baselines come newest first: a tie keeps the newest.
      if (prio > c.priority) {
        c.priority = prio;
        c.summary = summary + b.id.str();
        c.cited = b.id;
        c.blocker = blocker;
      }
    }
    if (c.priority < 0) {
      c.priority = 10;
      c.summary = "baseline untested";
    }
  }

  /// Rule 6: `c` is a heisenbug, excused by what flight `h` did; `h` is judged too.
  void excuse(Classified& c, const FlightData* h, std::vector<const FlightData*>& heisen_sources) const {
    c.summary = "pass in " + h->id.str();
    c.cited = h->id;
    c.heisenbug = true;
    c.blocker = Blocker::none;
    if (h->id != ours.id) heisen_sources.push_back(h);
  }

  /// Issue 18: each ABI record against its reference. A changed record is
  /// a regression "changed vs. F"; a key recorded for the first time is
  /// not an item; rules 6 and 7 apply as to steps.
  void judge_abi(const FlightData& f, const FlightData::Job& j, const std::vector<const FlightData*>& others,
                 std::vector<const FlightData*>& heisen_sources) {
    for (const auto& [key, rec] : j.abi) {
      std::optional<AbiCompared> ref = abi_reference(f, ev, j.name, key);
      AbiCompared seen = ref ? *ref : AbiCompared{j.name, key, 0, "", "new", std::nullopt, ""};
      seen.stepno = rec.stepno;
      seen.digest = rec.digest;
      bool changed = ref && ref->reference_digest != rec.digest;
      if (changed) seen.state = "changed";
      if (f.id == ours.id) abi.push_back(seen);
      if (!changed) continue;
      Classified c{f.id, j.name, rec.stepno, kAbiItemPrefix + key, "fail"};
      c.summary = "changed vs. " + ref->reference->str();
      c.cited = ref->reference;
      c.blocker = Blocker::regression;
      c.priority = 100;
      for (const FlightData* h : others) {
        const FlightData::Job* hj = h->job(j.name);
        if (!hj) continue;
        auto hr = hj->abi.find(key);
        if (hr != hj->abi.end() && hr->second.digest == ref->reference_digest) {
          excuse(c, h, heisen_sources);
          break;
        }
      }
      if (c.blocker != Blocker::none && allow.allows(j.name, c.testid)) c.allowable = true;
      out.push_back(std::move(c));
    }
  }

  void judge(const FlightData& f) {
    if (!judged.insert(f.id.value).second) return;
    // Rule 6's candidates: every same-revision evidence flight and ours, never f itself.
    std::vector<const FlightData*> others;
    if (f.id != ours.id) others.push_back(&ours);
    for (const FlightData& h : ev.same_revisions) {
      if (h.id != f.id && h.id != ours.id) others.push_back(&h);
    }
    std::vector<const FlightData*> heisen_sources;
    for (const FlightData::Job& j : f.jobs) {
      std::vector<std::pair<FlightData::Step, bool>> items;  // step, pseudo
      for (const auto& s : j.steps) {
        if (s.status != "pass") items.push_back({s, false});
      }
      if (j.status != "pass" && (items.empty() || j.status == "broken")) {
        items.push_back({{0, kJobStatusItem, j.status}, true});
      }
      for (const auto& [s, pseudo] : items) {
        Classified c{f.id, j.name, s.stepno, s.testid, s.status};
        if (pseudo && not_applicable(j.status)) {  // rule 1, blocked/starved job
          c.summary = "n/a";
        } else if (pseudo) {  // rule 1
          c.summary = j.status;
          c.blocker = Blocker::broken;
        } else if (not_applicable(s.status)) {  // rule 2
          c.summary = "n/a";
        } else if (unfinished(s.status)) {  // rule 3
          c.summary = "unfinished";
          c.blocker = Blocker::unfinished;
        } else if (!ev.passed_before(j.name, s.testid, f.id)) {  // rule 4
          c.summary = "never pass";
        } else {  // rule 5
          compare_with_baselines(f, j, c);
        }
        // Rule 6: a heisenbug if another flight of the same revision passed it.
        if (c.blocker != Blocker::none && c.priority < 500) {
          for (const FlightData* h : others) {
            if (passed_in(*h, j.name, s.testid, pseudo)) {
              excuse(c, h, heisen_sources);
              break;
            }
          }
        }
        // Rule 7: allowable.
        if (c.blocker != Blocker::none && allow.allows(j.name, s.testid)) c.allowable = true;
        out.push_back(std::move(c));
      }
      judge_abi(f, j, others, heisen_sources);
    }
    // Each H that excused one of f's items is judged too, once, by these rules.
    for (const FlightData* h : heisen_sources) judge(*h);
  }
};

}  // namespace

Verdict classify(const FlightData& ours, const Evidence& ev, const AllowList& allow) {
  Judge judge{ours, ev, allow, {}, {}, {}};
  judge.judge(ours);
  // Each (job, testid) once, in its most severe category (ours first on a tie).
  std::vector<Classified> items;
  for (auto& c : judge.out) {
    auto same = std::find_if(items.begin(), items.end(),
                             [&](const Classified& o) { return o.job == c.job && o.testid == c.testid; });
    if (same == items.end()) items.push_back(std::move(c));
    else if (severity(c) < severity(*same)) *same = std::move(c);
  }
  Verdict v;
  v.flight = ours.id;
  v.branch = ours.branch;
  v.steps = std::move(items);
  v.abi = std::move(judge.abi);
  for (const auto& b : ev.baselines) v.baselines.push_back(b.id);
  for (const auto& h : ev.same_revisions) v.same_revisions.push_back(h.id);
  std::vector<std::string> statuses;
  for (const auto& j : ours.jobs) statuses.push_back(j.status);
  v.job_word = job_word(statuses);
  bool any_item = std::any_of(v.steps.begin(), v.steps.end(), [&](const Classified& c) { return c.flight == ours.id; });
  bool regression = false, blocked = false;
  for (const auto& c : v.steps) {
    if (c.blocker == Blocker::none || c.allowable) continue;
    blocked = true;
    regression = regression || c.blocker == Blocker::regression;
  }
  v.outcome = !any_item    ? Outcome::perfect
            : regression   ? Outcome::regressions
            : !blocked     ? Outcome::tolerable
                           : Outcome::problems;
  return v;
}

}  // namespace pushgate::verdict
