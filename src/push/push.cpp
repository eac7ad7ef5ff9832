#include <pushgate/push.hpp>
#include <pushgate/flight.hpp>
#include <pushgate/notify.hpp>

#include <algorithm>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>
#include <set>

namespace pushgate::push {

Decision decide(const config::Branch& branch, const std::string& blessing, const verdict::Verdict& v,
                bool baseline_flight, const std::optional<std::string>& blocked) {
  if (blessing != "real") return {false, "a " + blessing + " flight never pushes"};
  if (!verdict::tolerable(v.outcome)) return {false, std::string("not tolerable: ") + verdict::to_string(v.outcome)};
  if (baseline_flight) return {false, "baseline flight: it tested the tested ref itself"};
  if (!branch.push) return {false, "push disabled for branch " + branch.name + " in the configuration"};
  if (blocked) return {false, "branch blocked by an operator: " + *blocked};
  return {true, std::string("tolerable (") + verdict::to_string(v.outcome) + ")"};
}


namespace {

/// Another push of the branch already recorded this very move as done: then
/// finding the ref at `to` says nothing about our attempt. Each move is
/// recorded as done once (SPEC section 6: never push twice).
Result<std::optional<std::int64_t>> move_done_by_another(const store::Store& store, const store::Store::Push& p) {
  auto recent = store.pushes(p.branch, 200);
  if (!recent) return recent.error();
  for (const auto& q : *recent) {
    if (q.id != p.id && q.state == "done" && q.ref == p.ref && q.url == p.url && q.old_rev == p.old_rev &&
        q.new_rev == p.new_rev) {
      return std::optional<std::int64_t>(q.id);
    }
  }
  return std::optional<std::int64_t>{};
}

/// A later push of the same ref recorded `p.new_rev` as where the ref was
/// when it started (its old revision): the ref did reach our new revision,
/// and then moved on. Its id.
Result<std::optional<std::int64_t>> moved_on_from(const store::Store& store, const store::Store::Push& p) {
  auto recent = store.pushes(p.branch, 200);
  if (!recent) return recent.error();
  for (const auto& q : *recent) {
    if (q.id > p.id && q.ref == p.ref && q.url == p.url && q.old_rev == p.new_rev && q.state != "refused") {
      return std::optional<std::int64_t>(q.id);
    }
  }
  return std::optional<std::int64_t>{};
}

/// One push to `url`, with SPEC section 6's reading of an attempt whose
/// outcome the error alone does not tell: the remote is read again; at the
/// new revision -> done; at the old -> tried again (backoff), then failed;
/// elsewhere -> refused (someone moved it). Unreadable -> "intent": the
/// outcome is unknown and reconciliation finishes it later.
PushResult attempt_push(const config::Config& config, git::Repository& repo, const std::string& url,
                        const std::string& ref, const std::string& from, const std::string& to) {
  PushResult result;
  git::PushOptions opts;
  opts.stale_lock_seconds = config.daemon.stale_ref_lock_seconds;
  opts.warn = [&](const std::string& w) { result.warnings.push_back(w); };
  for (int attempt = 1;; ++attempt) {
    auto pushed = repo.push(url, ref, from, to, opts);
    if (pushed) {
      result.state = "done";
      result.message = "pushed " + to.substr(0, 12) + " to " + ref + " on " + url;
      break;
    }
    std::string why = pushed.error().to_string();
    if (pushed.error().code() == StatusCode::invalid_argument) {
      result.state = "failed";
      result.message = why;
      break;
    }
    auto now = repo.remote_ref(url, ref);
    if (!now) {
      result.state = "intent";
      result.message = "outcome unknown (" + why + "; reading " + ref + " again failed: " + now.error().message() +
                       "); reconciled when the remote answers";
      break;
    }
    std::string value = now->value_or("");
    if (value == to && pushed.error().code() == StatusCode::conflict) {
      // Refused before anything was sent: another writer put it there. Each
      // move of the ref is recorded as done once, by whoever made it.
      result.state = "refused";
      result.message = ref + " on " + url + " is already at " + to.substr(0, 12) + ", moved there by another push";
      break;
    }
    if (value == to) {
      result.state = "done";
      result.confirmed_by_reading = true;
      result.message = "pushed " + to.substr(0, 12) + " to " + ref + " on " + url + " (confirmed by reading it again after: " + why + ")";
      break;
    }
    if (value != from) {
      result.state = "refused";
      result.message = ref + " on " + url + " moved to " + (value.empty() ? "nothing" : value) + " (expected " + from + "): " + why;
      break;
    }
    if (attempt >= config.daemon.push_attempts) {
      result.state = "failed";
      result.message = "after " + std::to_string(attempt) + " attempt" + (attempt == 1 ? "" : "s") + ", " + ref +
                       " is still " + from.substr(0, 12) + ": " + why;
      break;
    }
    std::this_thread::sleep_for(std::chrono::seconds(attempt));
  }
  for (const auto& w : result.warnings) result.message += "; warning: " + w;
  if (result.state == "done") (void)repo.update_ref(ref, to, from, "pushgate: pushed");  // the mirror follows
  return result;
}

}  // namespace

Result<PushResult> push_branch(const config::Config& config, store::Store& store, revisions::Mirrors& mirrors,
                               const std::string& branch_name, std::optional<FlightId> flight, const std::string& from,
                               const std::string& to, const std::string& who) {
  const config::Branch* branch = config.find_branch(branch_name);
  if (!branch) return Status::invalid_argument("unknown branch \"" + branch_name + "\"");
  auto repo = mirrors.repo(branch->tree);
  if (!repo) return repo.error();
  std::string url = config.push_url(*branch);
  std::string ref = git::qualify_ref(branch->tested);
  store::Store::Push intent;
  intent.flight = flight;
  intent.branch = branch_name;
  intent.url = url;
  intent.ref = ref;
  intent.old_rev = from;
  intent.new_rev = to;
  intent.who = who;
  auto id = store.record_push_intent(intent);
  if (!id) return id.error().with_context("push intent");
  PushResult result = attempt_push(config, **repo, url, ref, from, to);
  result.intent_id = *id;
  if (result.state == "intent") return result;  // unknown: left for reconciliation
  if (result.confirmed_by_reading) {
    intent.id = *id;
    auto other = move_done_by_another(store, intent);
    if (!other) return other.error();
    if (*other) {
      result.state = "refused";
      result.message = ref + " on " + url + " is at " + to.substr(0, 12) + ", moved there by push " +
                       std::to_string(**other) + ", not this one";
    }
  }
  auto fin = store.finish_push(*id, result.state, result.message);
  if (!fin) return fin.error().with_context("push outcome (the push itself is " + result.state + ")");
  return result;
}

namespace {

/// Finish one pending intent (its owner is gone, or is the caller): see
/// reconcile(). nullopt: still pending (the remote did not answer).
Result<std::optional<store::Store::Push>> finish_intent(const config::Config& config, store::Store& store,
                                                        revisions::Mirrors& mirrors, store::Store::Push p,
                                                        const std::function<void(const std::string&)>& progress) {
  const config::Branch* branch = config.find_branch(p.branch);
  auto repo = branch ? mirrors.repo(branch->tree) : Result<git::Repository*>(Status::not_found("branch gone"));
  if (!repo) {
    if (auto f = store.finish_push(p.id, "failed", "cannot reconcile: " + repo.error().message()); !f) return f.error();
    p.state = "failed";
    return std::optional<store::Store::Push>(p);
  }
  auto remote = (*repo)->remote_ref(p.url, p.ref);
  if (!remote) {
    if (progress) progress("push " + std::to_string(p.id) + " still pending: " + remote.error().message());
    return std::optional<store::Store::Push>{};
  }
  std::string now = remote->value_or("");
  std::string state, message;
  if (now == p.new_rev) {
    auto other = move_done_by_another(store, p);
    if (!other) return other.error();
    if (*other) {
      state = "refused";
      message = "after a restart " + p.ref + " is at the new revision, moved there by push " + std::to_string(**other) +
                ", not this one";
    } else {
      state = "done";
      message = "found already pushed after a restart";
      (void)(*repo)->update_ref(p.ref, p.new_rev, p.old_rev, "pushgate: reconciled");
    }
  } else if (now == p.old_rev) {
    // Not pushed yet: the operator controls are asked again first.
    auto blocked = store.branch_blocked(p.branch);
    if (!blocked) return blocked.error();
    bool forced = !p.flight;  // an operator's `branch force`, itself the control
    if (*blocked && !forced) {
      state = "refused";
      message = "not pushed after a restart: branch blocked by an operator: " + **blocked;
    } else if (!branch->push && !forced) {
      state = "refused";
      message = "not pushed after a restart: push disabled for branch " + p.branch + " in the configuration";
    } else {
      PushResult r = attempt_push(config, **repo, p.url, p.ref, p.old_rev, p.new_rev);
      if (r.state == "intent") {
        if (progress) progress("push " + std::to_string(p.id) + " still pending: " + r.message);
        return std::optional<store::Store::Push>{};
      }
      state = r.state;
      message = r.state == "done" ? "pushed after a restart" : r.message;
    }
  } else {
    // Found by the soak: pushed, killed before the outcome, and a later push
    // (which started from our new revision) moved the ref on meanwhile. That
    // move happened; only another push recording the very same move makes
    // it not ours.
    auto other = move_done_by_another(store, p);
    if (!other) return other.error();
    auto later = *other ? Result<std::optional<std::int64_t>>(std::optional<std::int64_t>{}) : moved_on_from(store, p);
    if (!later) return later.error();
    if (*later) {
      state = "done";
      message = "found pushed after a restart: push " + std::to_string(**later) + " moved " + p.ref + " on from " +
                p.new_rev.substr(0, 12) + " since";
    } else {
      state = "refused";
      message = "after a restart " + p.ref + " is at " + (now.empty() ? "nothing" : now) + ", neither old nor new";
    }
  }
  if (auto f = store.finish_push(p.id, state, message); !f) return f.error();
  p.state = state;
  p.message = message;
  if (progress) progress("push " + std::to_string(p.id) + " of " + p.branch + ": " + state + " (" + message + ")");
  return std::optional<store::Store::Push>(p);
}

}  // namespace

Result<std::vector<store::Store::Push>> reconcile(const config::Config& config, store::Store& store,
                                                  revisions::Mirrors& mirrors,
                                                  const std::function<void(const std::string&)>& progress,
                                                  const OwnerAlive& owner_alive) {
  auto pending = store.pending_pushes();
  if (!pending) return pending.error();
  std::vector<store::Store::Push> out;
  for (auto p : *pending) {
    // Only the owner finishes its intent while it lives (SPEC section 6).
    if (owner_alive && owner_alive(p)) {
      if (progress) progress("push " + std::to_string(p.id) + " of " + p.branch + " left to its live owner");
      continue;
    }
    auto done = finish_intent(config, store, mirrors, p, progress);
    if (!done) return done.error();
    if (*done) out.push_back(**done);
  }
  return out;
}

Result<Gate> judge(const config::Config& config, const store::Store& store, FlightId id) {
  Gate g;
  auto f = verdict::load_flight(store, id);
  if (!f) return f.error();
  g.flight = std::move(*f);
  const config::Branch* branch = config.find_branch(g.flight.branch);
  if (!branch) return Status::invalid_argument("flight " + id.str() + " is of branch " + g.flight.branch + ", no longer configured");
  g.tree = branch->tree;
  auto vars = store.list_runvars(id);
  if (!vars) return vars.error();
  for (const auto& v : *vars) {
    if (v.name == "basis_revision_" + g.tree) g.basis = v.value;
  }
  g.tested = g.flight.tested(g.tree);
  g.baseline_flight = !g.basis.empty() && g.basis == g.flight.revisions[g.tree];
  auto ev = verdict::gather(store, g.flight, g.tree, g.basis);
  if (!ev) return ev.error();
  g.evidence = std::move(*ev);
  std::vector<std::string> allow = config.allow;
  allow.insert(allow.end(), branch->allow.begin(), branch->allow.end());
  g.verdict = verdict::classify(g.flight, g.evidence, verdict::AllowList(allow));
  g.verdict.baseline_flight = g.baseline_flight;
  auto blocked = store.branch_blocked(branch->name);
  if (!blocked) return blocked.error();
  g.decision = decide(*branch, g.flight.blessing, g.verdict, g.baseline_flight, *blocked);
  if (auto rf = store::retest_flight_of(store, g.flight.branch, id); rf && *rf) g.retest_flight = (*rf)->id;
  return g;
}

namespace {

nlohmann::json gate_json(const Gate& g) {
  nlohmann::json j{{"verdict", verdict::to_json(g.verdict)},
                   {"decision", {{"push", g.decision.push}, {"reason", g.decision.reason}}},
                   {"tree", g.tree},
                   {"basis", g.basis},
                   {"tested", g.tested},
                   {"retest_flight", g.retest_flight ? nlohmann::json(g.retest_flight->value) : nlohmann::json(nullptr)}};
  j["push"] = g.push ? nlohmann::json{{"state", g.push->state}, {"message", g.push->message}, {"intent", g.push->intent_id}}
                     : nlohmann::json(nullptr);
  return j;
}

/// Store the gate's verdict (and through it the flight's outcome) in one transaction.
Status store_verdict(store::Store& store, const Gate& g, const std::string& who, const std::string& reason,
                     std::vector<store::Store::Notification> notifications = {}) {
  store::Store::StoredVerdict v;
  v.notifications = std::move(notifications);
  v.flight = g.flight.id;
  v.who = who;
  v.reason = reason;
  v.outcome = verdict::to_string(g.verdict.outcome);
  v.body = gate_json(g).dump();
  auto r = store.record_verdict(v);
  return r ? Status{} : r.error();
}

}  // namespace

Result<std::optional<Gate>> stored_gate(const config::Config&, const store::Store& store, FlightId id) {
  auto all = store.verdicts(id);
  if (!all) return all.error();
  if (all->empty()) return std::optional<Gate>{};
  Gate g;
  auto f = verdict::load_flight(store, id);
  if (!f) return f.error();
  g.flight = std::move(*f);
  try {
    nlohmann::json j = nlohmann::json::parse(all->back().body);
    auto v = verdict::verdict_from_json(j.at("verdict"));
    if (!v) return v.error().with_context("flight " + id.str());
    g.verdict = std::move(*v);
    g.decision = {j.at("decision").at("push").get<bool>(), j.at("decision").at("reason").get<std::string>()};
    g.tree = j.at("tree").get<std::string>();
    g.basis = j.at("basis").get<std::string>();
    g.tested = j.at("tested").get<std::string>();
    g.baseline_flight = g.verdict.baseline_flight;
    if (!j.at("retest_flight").is_null()) g.retest_flight = FlightId{j.at("retest_flight").get<std::int64_t>()};
    if (!j.at("push").is_null()) {
      const auto& p = j.at("push");
      g.push = PushResult{p.at("state").get<std::string>(), p.at("message").get<std::string>(), p.at("intent").get<std::int64_t>()};
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::corruption("stored verdict of flight " + id.str() + ": " + e.what());
  }
  return std::optional<Gate>(std::move(g));
}

Result<Gate> rejudge(const config::Config& config, store::Store& store, FlightId id, const std::string& who,
                     const std::string& reason) {
  auto f = store.get_flight(id);
  if (!f) return f.error();
  if (!f->finished || f->outcome.empty()) {
    return Status::invalid_argument("flight " + id.str() + " has not finished; it gets its verdict when it does");
  }
  if (reason.empty()) return Status::invalid_argument("a rejudge needs --reason: it is kept beside both verdicts");
  auto g = judge(config, store, id);
  if (!g) return g.error();
  // What happened to the push is history, not a new decision.
  if (auto p = store.push_of_flight(id); p && *p) g->push = PushResult{(*p)->state, (*p)->message, (*p)->id};
  g->decision.reason = "rejudged (never pushes): " + g->decision.reason;
  g->decision.push = false;
  if (Status s = store_verdict(store, *g, who, reason); !s.ok()) return s;
  return g;
}

Result<Gate> finish_flight(const config::Config& config, store::Store& store, revisions::Mirrors& mirrors,
                           FlightId id, const std::string& who, const Retester& retest) {
  auto g = judge(config, store, id);
  if (!g) return g.error();
  if (retest && config.daemon.retest_regressions && g->flight.blessing == "real" &&
      g->verdict.outcome == verdict::Outcome::regressions) {
    // SPEC section 5: rerun the regressed jobs before reporting. Build jobs
    // are not retested: a heisenbug never excuses a build.
    std::vector<std::string> jobs;
    for (const auto& c : g->verdict.steps) {
      const verdict::FlightData::Job* j = g->flight.job(c.job);
      if (c.flight == id && c.blocker == verdict::Blocker::regression && j && !j->build &&
          std::find(jobs.begin(), jobs.end(), c.job) == jobs.end()) {
        jobs.push_back(c.job);
      }
    }
    if (!jobs.empty()) {
      auto r = retest(id, jobs);
      if (!r) return r.error().with_context("retest of flight " + id.str());
      // The retest flight's own verdict (it never pushes), then ours again.
      if (auto rf = store.get_flight(*r); rf && rf->outcome.empty()) {
        if (auto rg = judge(config, store, *r)) {
          if (Status s = store_verdict(store, *rg, who, ""); !s.ok()) return s;
        }
      }
      g = judge(config, store, id);
      if (!g) return g.error();
      g->retest_flight = *r;
    }
  }
  const config::Branch* branch = config.find_branch(g->flight.branch);
  if (g->decision.push) {
    // A flight pushes once: after a crash between its push and its outcome,
    // the resumed flight finds the push (reconciled at start-up) and keeps it.
    auto earlier = store.push_of_flight(id);
    if (!earlier) return earlier.error();
    if (*earlier && (*earlier)->state != "intent") {
      g->push = PushResult{(*earlier)->state, (*earlier)->message, (*earlier)->id};
    } else if (*earlier) {
      // Our own intent, left by the runner before us: we own it now. Still
      // unknown: the verdict is stored and the daemon's periodic
      // reconciliation finishes the push (the flight is never abandoned).
      auto done = finish_intent(config, store, mirrors, **earlier, {});
      if (!done) return done.error();
      g->push = *done ? PushResult{(*done)->state, (*done)->message, (*done)->id}
                      : PushResult{"intent", "outcome unknown: the remote did not answer; reconciled later",
                                   (*earlier)->id};
    } else {
      auto r = push_branch(config, store, mirrors, branch->name, id, g->basis, g->tested, who);
      if (!r) return r.error();
      g->push = *r;
    }
  }
  // The report's notifications are queued with the verdict, in one
  // transaction: never lost to a crash, never queued twice (issue 15). The
  // report (a commit log walk) is made only when someone will get it.
  std::vector<store::Store::Notification> notices;
  if (notify::wanted(config, "flight", g->flight.branch, g->flight.blessing)) {
    auto r = report(config, store, mirrors, *g);
    if (!r) return r.error().with_context("report of flight " + id.str());
    notices = notify::plan(config, notify::flight_event(*r, g->flight.blessing), store::now());
  }
  // The verdict (and with it the outcome) comes last: a flight without one
  // is resumed after a restart.
  if (Status s = store_verdict(store, *g, who, "", std::move(notices)); !s.ok()) return s;
  return g;
}

Result<verdict::Report> report(const config::Config& config, const store::Store& store, revisions::Mirrors& mirrors,
                               const Gate& g) {
  verdict::Report r;
  r.verdict = g.verdict;
  r.flight = g.flight;
  auto fl = store.get_flight(g.flight.id);
  if (!fl) return fl.error();
  r.intended = fl->intended;
  for (const auto& [tree, rev] : g.flight.revisions) {
    verdict::Report::Version v{tree, rev, tree == g.tree ? g.basis : rev, "", ""};
    if (auto repo = mirrors.repo(tree)) {
      v.tested_describe = (*repo)->describe_or_short(rev);
      if (!v.baseline.empty()) v.baseline_describe = (*repo)->describe_or_short(v.baseline);
    }
    r.versions.push_back(v);
  }
  r.now = store::now();
  if (!g.verdict.baselines.empty()) {
    r.basis_flight = g.verdict.baselines.front();
    if (auto b = store.get_flight(*r.basis_flight)) r.basis_time = b->created;
  }
  if (r.basis_flight && !verdict::tolerable(g.verdict.outcome)) {
    // Every real flight since the basis failed to move the tested ref.
    store::FlightFilter f;
    f.branch = g.flight.branch;
    f.blessings = {"real"};
    f.limit = 500;
    if (auto flights = store.list_flights(f)) {
      for (const auto& fl2 : *flights) {
        if (*r.basis_flight < fl2.id && !(g.flight.id < fl2.id)) {
          r.failing_since = fl2.id;
          r.failing_since_time = fl2.created;
          ++r.failing_attempts;
        }
      }
    }
  }
  if (g.retest_flight) {
    r.retest_flight = g.retest_flight;
    if (auto rf = store.get_flight(*g.retest_flight)) r.retest_outcome = rf->outcome;
  }
  r.same_since = g.flight.id;
  r.same_since_time = fl->created;
  r.same_attempts = 1;
  for (FlightId h : g.verdict.same_revisions) {
    auto hf = store.get_flight(h);
    if (!hf || hf->blessing != "real") continue;  // retests and bisections are not attempts of the branch
    ++r.same_attempts;
    if (h < *r.same_since) {
      r.same_since = h;
      r.same_since_time = hf->created;
    }
  }
  if (!g.basis.empty() && !g.tested.empty() && g.basis != g.tested) {
    if (auto repo = mirrors.repo(g.tree)) {
      if (auto log = (*repo)->log(g.basis, g.tested, 200)) {
        std::set<std::string> people;
        for (const auto& c : *log) {
          std::string who = c.author_name + " <" + c.author_email + ">";
          if (people.insert(who).second) r.people.push_back(who);
          r.commits.push_back({g.tree, c.id, c.author_name, c.subject});
        }
      }
    }
  }
  if (auto steps = store.list_steps(g.flight.id)) {
    for (const auto& s : *steps) {
      r.logs[s.job + "\n" + std::to_string(s.stepno)] = verdict::log_url(config.daemon.public_url, g.flight.id, s.job, s.stepno);
    }
  }
  r.logs_url = config.daemon.public_url + "/flights/" + g.flight.id.str();
  // Issue 18: what changed in each changed ABI record, read from the files.
  for (const auto& a : g.verdict.abi) {
    if (a.state != "changed" || !a.reference) continue;
    auto ours = store.list_artifacts(g.flight.id, a.job);
    auto theirs = store.list_artifacts(*a.reference, a.job);
    if (!ours || !theirs) continue;
    const auto* o = flight::find_record(*ours, a.job, a.key);
    const auto* t = flight::find_record(*theirs, a.job, a.key);
    auto new_text = o ? flight::read_record(*o) : Result<std::string>(Status::not_found("no record"));
    auto old_text = t ? flight::read_record(*t) : Result<std::string>(Status::not_found("no record"));
    if (!new_text || !old_text) {
      r.abi_changes.push_back({a.job, a.key, "/", "unknown", "", "(a record file is gone: " +
                               (!new_text ? new_text.error() : old_text.error()).message() + ")"});
      continue;
    }
    auto changes = verdict::abi_diff(a.job, a.key, *old_text, *new_text);
    r.abi_changes.insert(r.abi_changes.end(), changes.begin(), changes.end());
  }
  r.trigger = verdict::trigger_text(fl->trigger_kind, fl->trigger_detail);
  std::optional<PushResult> push = g.push;
  if (push && push->state == "intent") {  // finished since by reconciliation?
    if (auto p = store.push_of_flight(g.flight.id); p && *p) push = PushResult{(*p)->state, (*p)->message, (*p)->id};
  }
  if (push) {
    r.pushed = push->pushed();
    r.push_text = push->pushed() ? push->message : "push " + push->state + ": " + push->message;
  } else {
    r.push_text = g.decision.reason;
    // Reports made later: a push of this flight recorded in the store wins.
    if (auto p = store.push_of_flight(g.flight.id); p && *p) {
      r.pushed = (*p)->state == "done";
      r.push_text = r.pushed ? (*p)->message : "push " + (*p)->state + ": " + (*p)->message;
    }
  }
  return r;
}

Result<verdict::Report> flight_report(const config::Config& config, const store::Store& store,
                                      revisions::Mirrors& mirrors, FlightId id) {
  auto fl = store.get_flight(id);
  if (!fl) return fl.error();
  auto stored = stored_gate(config, store, id);
  if (!stored) return stored.error();
  if (*stored) {
    auto r = report(config, store, mirrors, **stored);
    if (!r) return r.error();
    if (auto all = store.verdicts(id); all && all->size() > 1) {
      for (std::size_t i = 0; i + 1 < all->size(); ++i) {
        const auto& v = (*all)[i];
        r->earlier_verdicts.push_back(v.outcome + " (judged " + std::to_string(v.judged) + " by " + v.who + ")");
      }
      const auto& now = all->back();
      r->earlier_verdicts.push_back("rejudged by " + now.who + ": " + now.reason);
    }
    return r;
  }
  if (fl->outcome.empty()) {
    // Running or queued: its progress, never a verdict (SPEC section 5).
    Gate g;
    auto f = verdict::load_flight(store, id);
    if (!f) return f.error();
    g.flight = std::move(*f);
    g.verdict.flight = id;
    g.verdict.branch = g.flight.branch;
    if (const config::Branch* b = config.find_branch(g.flight.branch)) {
      g.tree = b->tree;
      g.tested = g.flight.tested(g.tree);
      if (auto vars = store.list_runvars(id)) {
        for (const auto& v : *vars) {
          if (v.name == "basis_revision_" + g.tree) g.basis = v.value;
        }
      }
    }
    g.decision.reason = "the flight has not finished";
    auto r = report(config, store, mirrors, g);
    if (!r) return r.error();
    r->judged = false;
    return r;
  }
  // Finished before verdicts were stored: judged now, and said so.
  auto g = judge(config, store, id);
  if (!g) return g.error();
  auto r = report(config, store, mirrors, *g);
  if (!r) return r.error();
  r->earlier_verdicts.push_back("stored outcome " + fl->outcome +
                                "; the verdict below was judged when viewed (the flight finished before pushgate "
                                "stored verdicts; `pushgate flight rejudge` stores one)");
  return r;
}

Result<BranchStatus> branch_status(const config::Config&, const store::Store& st, revisions::Mirrors& mirrors,
                                   const config::Branch& b) {
  BranchStatus out;
  out.branch = b.name;
  out.tree = b.tree;
  out.tested_ref = git::qualify_ref(b.tested);
  out.push_enabled = b.push;
  if (auto repo = mirrors.repo(b.tree)) {
    auto tested = (*repo)->ref_target(b.tested);
    if (tested && tested->has_value()) {
      out.tested_revision = tested->value();
      out.tested_describe = (*repo)->describe_or_short(tested->value());
      // One commit's time: a lookup, not a walk of the history.
      if (auto c = (*repo)->commit(tested->value())) out.tested_commit_time = c->time;
    }
  }
  auto flights = st.list_flights({.branch = b.name, .limit = 1});
  if (!flights) return flights.error();
  if (!flights->empty()) out.last_flight = flights->front();
  auto recent = st.list_flights({.branch = b.name, .blessings = {"real"}, .limit = 50});
  if (!recent) return recent.error();
  for (const auto& f : *recent) {
    if (f.outcome.empty()) continue;
    bool tol = f.outcome == "perfect" || f.outcome == "tolerable";
    std::string k = tol ? "tolerable" : "not tolerable";
    if (out.streak_kind.empty()) out.streak_kind = k;
    if (k != out.streak_kind) break;
    ++out.streak;
  }
  // Two index seeks (flights_branch_outcome), however long a streak of
  // failures lies in between.
  for (const char* outcome : {"perfect", "tolerable"}) {
    auto last = st.list_flights({.branch = b.name, .blessings = {"real"}, .outcome = outcome, .limit = 1});
    if (!last) return last.error();
    if (!last->empty() && (!out.last_tolerable || out.last_tolerable->id < last->front().id)) {
      out.last_tolerable = last->front();
    }
  }
  auto blocked = st.branch_blocked(b.name);
  if (!blocked) return blocked.error();
  out.blocked = *blocked;
  auto pushes = st.pushes(b.name, 1);
  if (!pushes) return pushes.error();
  if (!pushes->empty()) out.last_push = pushes->front();
  auto failures = st.consecutive_push_failures();
  if (!failures) return failures.error();
  if (auto it = failures->find(b.name); it != failures->end()) out.push_failures = it->second;
  return out;
}

}  // namespace pushgate::push
