// A bisection as the daemon runs it (SPEC section 7): the revision graph
// from the mirrors, every result of the job and testid on its nodes from
// the store, probe flights, and the state kept in the store so that a
// restart resumes it without repeating a probe.

#include <pushgate/bisect.hpp>

#include <algorithm>
#include <set>
#include <thread>

#include <pushgate/flight.hpp>
#include <pushgate/notify.hpp>
#include <pushgate/push.hpp>
#include <pushgate/verdict.hpp>

namespace pushgate::bisect {

namespace {

using json = nlohmann::json;
using Targets = std::vector<std::pair<std::string, std::string>>;

std::string key_of(const std::map<std::string, std::string>& revisions) { return json(revisions).dump(); }

/// The revision_<tree> runvars of `job` in `flight` (inputs only).
Result<std::map<std::string, std::string>> revisions_of(const config::Config& config, const store::Store& store,
                                                        FlightId flight, const std::string& job) {
  auto vars = store.list_runvars(flight, job);
  if (!vars) return vars.error();
  std::map<std::string, std::string> out;
  for (const auto& v : *vars) {
    if (v.synth || v.name.rfind("revision_", 0) != 0) continue;
    std::string tree = v.name.substr(9);
    if (config.find_tree(tree)) out[tree] = v.value;
  }
  if (out.empty()) return Status::not_found("flight " + flight.str() + " has no revisions for job " + job);
  return out;
}

/// Whether `job` of flight `f` ran on the hosts `roles` (role -> host).
bool same_hosts(const store::Store& store, FlightId f, const std::string& job, const json& roles) {
  auto vars = store.list_runvars(f, job);
  if (!vars) return false;
  for (const auto& [role, host] : roles.items()) {
    bool found = std::any_of(vars->begin(), vars->end(), [&](const store::Runvar& v) {
      return v.synth && v.name == role && v.value == host.get<std::string>();
    });
    if (!found) return false;
  }
  return true;
}

/// Everything a decision needs, computed from the mirrors and the store.
struct View {
  std::vector<std::string> trees;
  std::vector<Node> nodes;
  Graph graph;
  std::map<std::string, int> index;  ///< key_of(revisions) -> node
};

Result<View> compute(const config::Config& config, const store::Store& store, revisions::Mirrors& mirrors,
                     const store::Store::BisectionRow& row, const Targets& targets, const Rules& rules) {
  View v;
  auto fail = revisions_of(config, store, row.flight, targets.front().first);
  if (!fail) return fail.error();
  auto basis = revisions_of(config, store, row.basis_flight, targets.front().first);
  if (!basis) return basis.error();
  // The trees that changed, in the configuration's order.
  for (const auto& t : config.trees) {
    auto f = fail->find(t.name);
    if (f == fail->end()) continue;
    auto b = basis->find(t.name);
    if (b == basis->end()) {
      return Status::invalid_argument("basis flight " + row.basis_flight.str() + " did not test tree " + t.name);
    }
    if (b->second != f->second) v.trees.push_back(t.name);
  }
  std::map<std::string, std::string> tuple = *basis;  // every tree of the job
  auto add = [&](const std::map<std::string, std::string>& revs, const std::string& tree, std::vector<int> parents,
                 bool boundary) {
    Node n;
    n.revisions = revs;
    n.changed_tree = tree;
    n.commit = tree.empty() ? "" : revs.at(tree);
    n.parents = std::move(parents);
    n.boundary = boundary;
    n.tallies.assign(targets.size(), {});
    v.nodes.push_back(std::move(n));
    int i = static_cast<int>(v.nodes.size()) - 1;
    v.index.emplace(key_of(revs), i);
    return i;
  };
  int root = add(tuple, "", {}, false);  // the basis
  v.graph.basis = root;
  // Series composition: the first tree moves from basis to failure with the
  // others at the basis, then the second with the first at the failure...
  // Each edge changes one tree; the failure is the last node.
  for (const std::string& tree : v.trees) {
    auto repo = mirrors.repo(tree);
    if (!repo) return repo.error();
    auto commits = (*repo)->range_topological(basis->at(tree), fail->at(tree), rules.max_nodes);
    if (!commits) return commits.error();
    std::map<std::string, int> in_tree{{basis->at(tree), root}};
    int last = root;
    for (const auto& c : *commits) {
      std::vector<int> parents;
      for (const auto& p : c.parents) {
        if (auto it = in_tree.find(p); it != in_tree.end()) {
          parents.push_back(it->second);
          continue;
        }
        // Outside the range: an ancestor of the basis, so known to pass.
        auto revs = tuple;
        revs[tree] = p;
        int b = add(revs, tree, {}, true);
        in_tree.emplace(p, b);
        parents.push_back(b);
      }
      auto revs = tuple;
      revs[tree] = c.id;
      last = add(revs, tree, parents, false);
      in_tree.emplace(c.id, last);
    }
    tuple[tree] = fail->at(tree);
    root = last;
  }
  v.graph.failure = root;
  if (v.nodes.size() > rules.max_nodes) {
    return Status::invalid_argument("the range has " + std::to_string(v.nodes.size()) + " revision tuples, more than " +
                                    std::to_string(rules.max_nodes));
  }
  for (const auto& n : v.nodes) v.graph.nodes.push_back({n.parents, n.boundary});

  // Evidence: every finished real flight in which the job ran on exactly
  // this tuple (branch flights, retests, earlier bisections, other
  // branches). Step results are read once per flight.
  std::map<std::int64_t, std::vector<store::Step>> steps_of;
  std::map<std::int64_t, std::vector<store::Job>> jobs_of;
  auto once = [](auto& cache, FlightId f, auto load) -> const auto& {
    auto it = cache.find(f.value);
    if (it == cache.end()) {
      auto r = load(f);
      it = cache.emplace(f.value, r ? std::move(*r) : typename std::decay_t<decltype(cache)>::mapped_type{}).first;
    }
    return it->second;
  };
  auto steps = [&](FlightId f) -> const std::vector<store::Step>& {
    return once(steps_of, f, [&](FlightId x) { return store.list_steps(x); });
  };
  std::map<std::int64_t, std::vector<store::Store::Artifact>> records_of;
  auto record_digest = [&](FlightId f, const std::string& job, const std::string& key) -> std::optional<std::string> {
    const auto* r = flight::find_record(once(records_of, f, [&](FlightId x) { return store.list_artifacts(x); }), job, key);
    return r ? std::optional<std::string>(r->digest) : std::nullopt;
  };
  auto jobs = [&](FlightId f) -> const std::vector<store::Job>& {
    return once(jobs_of, f, [&](FlightId x) { return store.list_jobs(x); });
  };
  std::set<std::string> target_jobs;
  for (const auto& t : targets) target_jobs.insert(t.first);
  const json pins = json::parse(row.pins.empty() ? "{}" : row.pins);
  for (Node& n : v.nodes) {
    std::string tree = n.changed_tree.empty() ? (v.trees.empty() ? n.revisions.begin()->first : v.trees.front())
                                              : n.changed_tree;
    std::set<std::int64_t> seen;
    for (const std::string& job : target_jobs) {
      auto flights = store.finished_flights_with_job_runvar(job, "revision_" + tree, n.revisions.at(tree));
      if (!flights) return flights.error();
      for (FlightId f : *flights) {
        auto revs = revisions_of(config, store, f, job);
        if (!revs || *revs != n.revisions) continue;
        // Another branch's flight counts on the same hosts only, when the
        // bisection is pinned to the failure's (its own branch's always do:
        // the failure and its retest may have run elsewhere).
        if (pins.contains(job)) {
          auto fl = store.get_flight(f);
          if (fl && fl->branch != row.branch && !same_hosts(store, f, job, pins[job])) continue;
        }
        bool counted = false;
        for (std::size_t ti = 0; ti < targets.size(); ++ti) {
          if (targets[ti].first != job) continue;
          if (verdict::is_abi_item(targets[ti].second)) {
            // An ABI item (issue 18): the record as at the basis passes,
            // another fails; no record says nothing unless the job could
            // not get that far.
            const std::string key = verdict::abi_key(targets[ti].second);
            auto reference = record_digest(row.basis_flight, job, key);
            auto probe = record_digest(f, job, key);
            std::string job_status;
            for (const auto& j : jobs(f)) {
              if (j.job == job) job_status = j.status;
            }
            Tally& t = n.tallies[ti];
            if (probe && reference && *probe == *reference) ++t.pass;
            else if (probe && reference) ++t.fail;
            else if (!probe && (job_status == "blocked" || job_status == "fail")) ++t.untestable;
            else continue;
            counted = true;
            continue;
          }
          const store::Step* step = nullptr;
          for (const auto& s : steps(f)) {
            if (s.job == job && s.testid == targets[ti].second) step = &s;
          }
          std::string job_status;
          for (const auto& j : jobs(f)) {
            if (j.job == job) job_status = j.status;
          }
          Tally& t = n.tallies[ti];
          if (step && step->status == "pass") {
            ++t.pass;
          } else if (step && step->status == "fail") {
            ++t.fail;
          } else if ((step && step->status == "blocked") || (!step && (job_status == "blocked" || job_status == "fail"))) {
            ++t.untestable;  // a build it needs failed, or an earlier step did
          } else {
            continue;  // broken, starved, cut short: infrastructure, no evidence either way
          }
          counted = true;
        }
        if (counted && seen.insert(f.value).second) n.flights.push_back(f);
      }
    }
    std::sort(n.flights.begin(), n.flights.end(), [](FlightId a, FlightId b) { return a.value < b.value; });
  }
  return v;
}

/// The probes on each node (flail guard).
Status count_probes(const store::Store& store, std::int64_t id, View& v, const Targets& targets) {
  auto probes = store.bisection_probes(id);
  if (!probes) return probes.error();
  for (const auto& p : *probes) {
    auto it = v.index.find(p.node);
    if (it == v.index.end()) continue;
    auto fjobs = store.list_jobs(p.flight);
    if (!fjobs) return fjobs.error();
    for (std::size_t ti = 0; ti < targets.size(); ++ti) {
      bool ran = std::any_of(fjobs->begin(), fjobs->end(), [&](const store::Job& j) { return j.job == targets[ti].first; });
      if (ran) ++v.nodes[static_cast<std::size_t>(it->second)].tallies[ti].probes;
    }
  }
  return {};
}

Targets parse_targets(const std::string& text) {
  Targets out;
  for (const auto& t : json::parse(text)) out.emplace_back(t.at(0).get<std::string>(), t.at(1).get<std::string>());
  return out;
}

std::optional<Commit> commit_of(revisions::Mirrors& mirrors, const Node& n) {
  if (n.changed_tree.empty()) return std::nullopt;
  auto repo = mirrors.repo(n.changed_tree);
  if (!repo) return std::nullopt;
  auto c = (*repo)->commit(n.commit);
  if (!c) return std::nullopt;
  return Commit{n.changed_tree, c->id, c->author_name + " <" + c->author_email + ">", c->time, c->subject, c->message};
}

std::optional<Commit> commit_from(const json& j) {
  if (!j.is_object()) return std::nullopt;
  return Commit{j.value("tree", ""),    j.value("commit", ""),  j.value("author", ""),
                j.value("date", std::int64_t{0}), j.value("subject", ""), j.value("message", "")};
}

/// An ended bisection's report, as notify's channels see it.
notify::Event end_event(const config::Config& config, const Bisection& b) {
  notify::Event e;
  e.kind = "bisection";
  e.id = b.id;
  e.branch = b.branch;
  std::string what = b.targets.empty() ? std::string() : " " + b.targets.front().job + " " + b.targets.front().testid;
  if (b.targets.size() > 1) what += " (+" + std::to_string(b.targets.size() - 1) + " more)";
  e.subject = "[" + b.branch + " bisection] " + to_string(b.status) + what;
  const std::string url = config.daemon.public_url + "/bisections/" + std::to_string(b.id);
  e.text = report(b) + "\nbisection: " + url + "\nfailing flight: " + config.daemon.public_url + "/flights/" +
           b.flight.str() + "\n";
  e.headers.emplace_back("X-Pushgate-Bisection", std::to_string(b.id));
  e.headers.emplace_back("X-Pushgate-Branch", b.branch);
  e.headers.emplace_back("X-Pushgate-Flight", b.flight.str());
  e.headers.emplace_back("X-Pushgate-Status", to_string(b.status));
  std::string targets;
  for (const auto& t : b.targets) {
    targets += (targets.empty() ? "" : "\n") + b.branch + ":" + t.job + ":" + t.testid + ":" + to_string(t.status);
  }
  if (!targets.empty()) e.headers.emplace_back("X-Pushgate-Failures", targets);
  if (b.culprit) e.headers.emplace_back("X-Pushgate-Versions-This", b.culprit->tree + "=" + b.culprit->id);
  if (b.not_present) e.headers.emplace_back("X-Pushgate-Versions-That", b.not_present->tree + "=" + b.not_present->id);
  json tj = json::array();
  for (const auto& t : b.targets) {
    tj.push_back({{"job", t.job}, {"testid", t.testid}, {"status", to_string(t.status)}, {"reason", t.reason}});
  }
  e.json = {{"event", "bisection"},
            {"bisection", b.id},
            {"branch", b.branch},
            {"flight", b.flight.value},
            {"basis_flight", b.basis_flight.value},
            {"subject", e.subject},
            {"status", to_string(b.status)},
            {"reason", b.reason},
            {"url", url},
            {"targets", tj},
            {"culprit", b.culprit ? to_json(*b.culprit) : json(nullptr)},
            {"not_present", b.not_present ? to_json(*b.not_present) : json(nullptr)}};
  return e;
}

/// A bisection that ended (not cancelled) queues its report once (issue 15).
Status queue_end_notice(const config::Config& config, store::Store& store, const store::Store::BisectionRow& row) {
  if (!notify::wanted(config, "bisection", row.branch)) return {};  // then no need to load its nodes
  const std::int64_t id = row.id;
  auto b = load(config, store, id);
  if (!b) return b.error();
  if (!finished(b->status) || b->status == State::cancelled) return {};
  auto rows = notify::plan(config, end_event(config, *b), store::now());
  if (rows.empty()) return {};
  auto n = store.enqueue_notifications(rows);
  return n ? Status{} : n.error().with_context("notifications of bisection " + std::to_string(id));
}

/// Decide every target, store the result (state and nodes). Returns the
/// node to probe next (or nullopt when the bisection ended) and why.
struct Next {
  std::optional<int> node;
  std::string why;
  std::vector<int> also;  ///< further nodes to test at the same time (plan())
};

Result<Next> decide_and_save(const config::Config& config, store::Store& store, revisions::Mirrors& mirrors,
                             const store::Store::BisectionRow& row, const Rules& rules, int parallel = 1) {
  Targets targets = parse_targets(row.targets);
  auto view = compute(config, store, mirrors, row, targets, rules);
  State status = State::running;
  std::string reason;
  std::vector<Target> outcome;
  Next next;
  json state = json::parse(row.state.empty() ? "{}" : row.state);
  if (!view) {
    // A range the mirrors cannot give (a rewound tree, a missing commit).
    status = State::doubtful;
    reason = view.error().message();
    state["trees"] = json::array();
    state["targets"] = json::array();
    for (const auto& t : targets) state["targets"].push_back({{"job", t.first}, {"testid", t.second}, {"status", "doubtful"}, {"reason", reason}});
    if (auto s = store.update_bisection(row.id, to_string(status), reason, state.dump(), {}); !s) return s.error();
    if (Status s = queue_end_notice(config, store, row); !s.ok()) return s;
    return next;
  }
  if (Status s = count_probes(store, row.id, *view, targets); !s.ok()) return s;
  bool all_done = true;
  std::optional<int> culprit, not_present;
  for (std::size_t ti = 0; ti < targets.size(); ++ti) {
    std::vector<Tally> tallies;
    for (const auto& n : view->nodes) tallies.push_back(n.tallies[ti]);
    Decision d = decide(view->graph, tallies, rules);
    Target t{targets[ti].first, targets[ti].second, d.status, d.why, std::nullopt, std::nullopt};
    if (d.status == State::complete) {
      auto label = [&](int i) {
        const Node& n = view->nodes[static_cast<std::size_t>(i)];
        if (n.changed_tree.empty()) return std::string("the basis");
        return n.changed_tree + " " + n.commit.substr(0, 12);
      };
      t.reason = "first bad " + label(d.culprit) + ", last pass " + label(d.not_present) + ", both reproduced";
      t.culprit = d.culprit;
      t.not_present = d.not_present;
      if (!culprit) {
        culprit = d.culprit;
        not_present = d.not_present;
      }
    }
    if (d.status == State::running) {
      all_done = false;
      if (!next.node) {
        next.node = d.probe;
        next.why = t.job + " " + t.testid + ": " + d.why;
        if (parallel > 1) {
          for (int n : plan(view->graph, tallies, parallel, rules)) {
            if (n != d.probe) next.also.push_back(n);
          }
        }
      }
    }
    outcome.push_back(std::move(t));
  }
  if (all_done) {
    status = State::complete;
    for (const auto& t : outcome) {
      if (t.status != State::complete) {
        status = t.status;
        reason = t.job + " " + t.testid + ": " + t.reason;
        break;
      }
    }
    if (status == State::complete) reason = outcome.front().reason;
  } else {
    reason = next.why;
  }
  state["trees"] = view->trees;
  state["targets"] = json::array();
  for (const auto& t : outcome) {
    json j{{"job", t.job}, {"testid", t.testid}, {"status", to_string(t.status)}, {"reason", t.reason}};
    j["culprit"] = t.culprit ? json(*t.culprit) : json(nullptr);
    j["not_present"] = t.not_present ? json(*t.not_present) : json(nullptr);
    state["targets"].push_back(j);
  }
  std::optional<Commit> culprit_commit, not_present_commit;
  if (culprit) culprit_commit = commit_of(mirrors, view->nodes[static_cast<std::size_t>(*culprit)]);
  if (not_present) {
    const Node& np = view->nodes[static_cast<std::size_t>(*not_present)];
    not_present_commit = commit_of(mirrors, np);
    if (!not_present_commit) {
      // The basis itself: name the revision of the culprit's tree there.
      const Node& c = view->nodes[static_cast<std::size_t>(*culprit)];
      not_present_commit = Commit{c.changed_tree, np.revisions.at(c.changed_tree), "", 0, "", ""};
    }
  }
  state["culprit"] = culprit_commit ? to_json(*culprit_commit) : json(nullptr);
  state["not_present"] = not_present_commit ? to_json(*not_present_commit) : json(nullptr);
  std::vector<store::Store::BisectionNode> rows;
  for (std::size_t i = 0; i < view->nodes.size(); ++i) {
    const Node& n = view->nodes[i];
    json results = json::array();
    for (const auto& t : n.tallies) {
      results.push_back({{"pass", t.pass}, {"fail", t.fail}, {"untestable", t.untestable}, {"probes", t.probes}});
    }
    json flights = json::array();
    for (FlightId f : n.flights) flights.push_back(f.value);
    rows.push_back({static_cast<int>(i), key_of(n.revisions), n.changed_tree, n.commit, json(n.parents).dump(),
                    n.boundary, results.dump(), flights.dump()});
  }
  if (auto s = store.update_bisection(row.id, to_string(status), reason, state.dump(), rows); !s) return s.error();
  if (status != State::running) {
    next.node.reset();
    if (Status s = queue_end_notice(config, store, row); !s.ok()) return s;
  }
  return next;
}

/// The probe flight for `revisions`: the target jobs and the jobs they
/// depend on, with the failing flight's inputs but these revisions.
Result<store::NewFlight> probe_flight(const config::Config& config, const store::Store& store,
                                      const store::Store::BisectionRow& row, const Targets& targets,
                                      const std::map<std::string, std::string>& revisions) {
  std::vector<std::string> target_jobs;
  for (const auto& t : targets) target_jobs.push_back(t.first);
  const std::set<std::string> names = flight::with_dependencies(config, target_jobs);
  auto orig_jobs = store.list_jobs(row.flight);
  if (!orig_jobs) return orig_jobs.error();
  json pins = json::parse(row.pins.empty() ? "{}" : row.pins);
  store::NewFlight f;
  f.branch = row.branch;
  f.blessing = "real-bisect";
  f.intended = "real-bisect";
  f.trigger_kind = "bisection";
  f.trigger_detail = std::to_string(row.id);
  for (const auto& j : *orig_jobs) {
    if (!names.count(j.job)) continue;
    f.jobs.push_back({{}, j.job, j.recipe, "queued", ""});
    auto vars = store.list_runvars(row.flight, j.job);
    if (!vars) return vars.error();
    std::map<std::string, std::string> in;
    for (const auto& v : *vars) {
      if (v.synth || v.name == "build_inputs" || v.name == "retest_of" || v.name.rfind("basis_revision_", 0) == 0) continue;
      in[v.name] = v.value;
    }
    for (const auto& [tree, rev] : revisions) {
      if (in.count("revision_" + tree)) in["revision_" + tree] = rev;
    }
    const config::Job* cj = config.find_job(j.job);
    if (cj && cj->kind == "build") in["build_inputs"] = flight::build_inputs(in);
    in["bisection"] = std::to_string(row.id);
    if (pins.contains(j.job)) {
      for (const auto& [role, host] : pins[j.job].items()) in[flight::kPinPrefix + role] = host.get<std::string>();
    }
    for (const auto& [k, val] : in) f.runvars.push_back({j.job, k, val, false});
  }
  if (f.jobs.empty()) return Status::invalid_argument("flight " + row.flight.str() + " has none of the bisected jobs");
  return f;
}

}  // namespace

Result<std::vector<Regression>> regressions_of(const config::Config& config, const store::Store& store,
                                               FlightId flight) {
  auto gate = push::stored_gate(config, store, flight);
  if (!gate) return gate.error();
  if (!*gate) return Status::invalid_argument("flight " + flight.str() + " has not been judged");
  std::vector<Regression> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& c : (*gate)->verdict.steps) {
    if (c.flight != flight || c.blocker != verdict::Blocker::regression || c.heisenbug || c.allowable || !c.cited) continue;
    if (c.stepno == 0 || !seen.insert({c.job, c.testid}).second) continue;  // pseudo-items are job states, not steps
    auto it = std::find_if(out.begin(), out.end(), [&](const Regression& r) { return r.basis == *c.cited; });
    if (it == out.end()) {
      out.push_back({*c.cited, {}});
      it = out.end() - 1;
    }
    it->targets.emplace_back(c.job, c.testid);
  }
  return out;
}

Result<std::int64_t> start(const config::Config& config, store::Store& store, FlightId flight,
                           const Targets& targets, const StartOptions& options) {
  if (targets.empty()) return Status::invalid_argument("nothing to bisect: no (job, testid) given");
  auto fl = store.get_flight(flight);
  if (!fl) return fl.error();
  if (!fl->finished) return Status::invalid_argument("flight " + flight.str() + " has not finished");
  std::optional<FlightId> basis = options.basis;
  if (!basis) {
    auto regs = regressions_of(config, store, flight);
    if (!regs) return regs.error();
    for (const auto& r : *regs) {
      for (const auto& t : r.targets) {
        if (t == targets.front()) basis = r.basis;
      }
    }
    if (!basis) {
      return Status::invalid_argument(
          targets.front().first + " " + targets.front().second + " is not a regression of flight " + flight.str(),
          "give the last pass with --basis FLIGHT to bisect it anyway");
    }
  }
  auto steps = store.list_steps(flight);
  if (!steps) return steps.error();
  for (const auto& t : targets) {
    if (!config.find_job(t.first)) return Status::invalid_argument("unknown job \"" + t.first + "\"");
    if (verdict::is_abi_item(t.second)) {
      // An ABI item: both flights recorded the key, differently.
      auto ours = store.list_artifacts(flight, t.first);
      auto base = store.list_artifacts(*basis, t.first);
      if (!ours) return ours.error();
      if (!base) return base.error();
      const auto* a = flight::find_record(*ours, t.first, verdict::abi_key(t.second));
      const auto* b = flight::find_record(*base, t.first, verdict::abi_key(t.second));
      if (!a || !b || a->digest == b->digest) {
        return Status::invalid_argument(t.first + " " + t.second + ": flights " + basis->str() + " and " + flight.str() +
                                            " did not both record it, differently",
                                        "a bisection of an ABI item looks for the commit that changed the record");
      }
      continue;
    }
    bool failed = std::any_of(steps->begin(), steps->end(), [&](const store::Step& s) {
      return s.job == t.first && s.testid == t.second && s.status == "fail";
    });
    if (!failed) {
      return Status::invalid_argument("step " + t.second + " of " + t.first + " did not fail in flight " + flight.str(),
                                      "a bisection looks for the commit that made a step fail");
    }
  }
  auto existing = store.bisections_of_flight(flight);
  if (!existing) return existing.error();
  for (const auto& b : *existing) {
    if (b.status != "running") continue;
    for (const auto& t : parse_targets(b.targets)) {
      if (std::find(targets.begin(), targets.end(), t) != targets.end()) {
        return Status::conflict("bisection " + std::to_string(b.id) + " already bisects " + t.first + " " + t.second +
                                " of flight " + flight.str());
      }
    }
  }
  json pins = json::object();
  if (options.same_hosts) {
    for (const auto& t : targets) {
      const config::Job* cj = config.find_job(t.first);
      auto vars = store.list_runvars(flight, t.first);
      if (!vars) return vars.error();
      for (const auto& v : *vars) {
        if (v.synth && cj->hosts.count(v.name)) pins[t.first][v.name] = v.value;
      }
    }
  }
  store::Store::BisectionRow row;
  row.branch = fl->branch;
  row.flight = flight;
  row.basis_flight = *basis;
  row.who = options.who;
  json tj = json::array();
  for (const auto& t : targets) tj.push_back({t.first, t.second});
  row.targets = tj.dump();
  row.pins = pins.dump();
  return store.create_bisection(row);
}

Result<std::vector<std::int64_t>> start_for_flight(const config::Config& config, store::Store& store, FlightId flight,
                                                   const StartOptions& options) {
  auto regs = regressions_of(config, store, flight);
  if (!regs) return regs.error();
  auto fl = store.get_flight(flight);
  if (!fl) return fl.error();
  // Bisections of the branch (a branch whose input stays broken is tested
  // again and again: each of those flights regresses over the same range).
  auto existing = store.list_bisections({"", fl->branch, 500});
  if (!existing) return existing.error();
  std::vector<std::int64_t> out;
  for (const auto& r : *regs) {
    const std::string& job = r.targets.front().first;
    auto fail = revisions_of(config, store, flight, job);
    if (!fail) return fail.error();
    auto basis = revisions_of(config, store, r.basis, job);
    if (!basis) return basis.error();
    // Made once per range and (job, testid), whatever became of it; a
    // cancelled one may be started again.
    bool have = false;
    for (const auto& b : *existing) {
      if (b.status == to_string(State::cancelled)) continue;
      auto bt = parse_targets(b.targets);
      bool overlap = std::any_of(r.targets.begin(), r.targets.end(),
                                 [&](const auto& t) { return std::find(bt.begin(), bt.end(), t) != bt.end(); });
      if (!overlap) continue;
      auto bf = revisions_of(config, store, b.flight, bt.front().first);
      auto bb = revisions_of(config, store, b.basis_flight, bt.front().first);
      if (bf && bb && *bf == *fail && *bb == *basis) have = true;
    }
    if (have) continue;
    StartOptions o = options;
    o.basis = r.basis;
    auto id = start(config, store, flight, r.targets, o);
    if (!id) return id.error();
    out.push_back(*id);
  }
  return out;
}

Result<Bisection> load(const config::Config&, const store::Store& store, std::int64_t id) {
  auto row = store.get_bisection(id);
  if (!row) return row.error();
  auto nodes = store.bisection_nodes(id);
  if (!nodes) return nodes.error();
  auto probes = store.bisection_probes(id);
  if (!probes) return probes.error();
  Bisection b;
  b.id = row->id;
  b.branch = row->branch;
  b.flight = row->flight;
  b.basis_flight = row->basis_flight;
  b.who = row->who;
  auto st = parse_state(row->status);
  if (!st) return st.error();
  b.status = *st;
  b.reason = row->reason;
  b.created = row->created;
  b.finished = row->finished;
  json state = json::parse(row->state.empty() ? "{}" : row->state);
  for (const auto& t : parse_targets(row->targets)) b.targets.push_back({t.first, t.second, State::running, "", {}, {}});
  if (state.contains("targets")) {
    for (std::size_t i = 0; i < b.targets.size() && i < state["targets"].size(); ++i) {
      const json& t = state["targets"][i];
      auto ts = parse_state(t.value("status", "running"));
      b.targets[i].status = ts ? *ts : State::running;
      b.targets[i].reason = t.value("reason", "");
      if (t.contains("culprit") && t["culprit"].is_number()) b.targets[i].culprit = t["culprit"].get<int>();
      if (t.contains("not_present") && t["not_present"].is_number()) b.targets[i].not_present = t["not_present"].get<int>();
    }
  }
  if (state.contains("trees")) b.trees = state["trees"].get<std::vector<std::string>>();
  for (const auto& n : *nodes) {
    Node node;
    node.revisions = json::parse(n.revisions).get<std::map<std::string, std::string>>();
    node.changed_tree = n.changed_tree;
    node.commit = n.commit;
    node.parents = json::parse(n.parents).get<std::vector<int>>();
    node.boundary = n.boundary;
    for (const auto& r : json::parse(n.results)) {
      node.tallies.push_back({r.value("pass", 0), r.value("fail", 0), r.value("untestable", 0), r.value("probes", 0)});
    }
    for (const auto& f : json::parse(n.flights)) node.flights.push_back(FlightId{f.get<std::int64_t>()});
    b.nodes.push_back(std::move(node));
  }
  for (const auto& p : *probes) b.flights.push_back(p.flight);
  json pins = json::parse(row->pins.empty() ? "{}" : row->pins);
  for (const auto& [job, roles] : pins.items()) {
    for (const auto& [role, host] : roles.items()) b.pins[job][role] = host.get<std::string>();
  }
  if (state.contains("culprit")) b.culprit = commit_from(state["culprit"]);
  if (state.contains("not_present")) b.not_present = commit_from(state["not_present"]);
  return b;
}

Result<Bisection> advance(const config::Config& config, store::Store& store, revisions::Mirrors& mirrors,
                          hosts::Registry& hosts, std::int64_t id, const AdvanceOptions& options) {
  auto say = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  auto row = store.get_bisection(id);
  if (!row) return row.error();
  if (row->status != "running") return load(config, store, id);
  Targets targets = parse_targets(row->targets);
  // Pinned to the failure's hosts, probes would only queue for them: one
  // at a time. On equivalent hosts, up to options.parallel at once.
  const bool pinned = json::parse(row->pins.empty() ? "{}" : row->pins).size() > 0;
  const int parallel = pinned ? 1 : std::max(1, options.parallel);

  // Probe flights made before a restart and not finished are run first:
  // their rows exist, so they are never made twice.
  auto probes = store.bisection_probes(id);
  if (!probes) return probes.error();
  std::vector<FlightId> pending;
  for (const auto& p : *probes) {
    auto f = store.get_flight(p.flight);
    if (!f) return f.error();
    if (!f->finished) pending.push_back(p.flight);
  }
  if (pending.empty()) {
    auto next = decide_and_save(config, store, mirrors, *row, options.rules, parallel);
    if (!next) return next.error();
    if (!next->node) {
      auto b = load(config, store, id);
      if (b) say("bisection " + std::to_string(id) + ": " + to_string(b->status) + ": " + b->reason);
      return b;
    }
    auto b = load(config, store, id);
    if (!b) return b.error();
    std::vector<int> nodes{*next->node};
    nodes.insert(nodes.end(), next->also.begin(), next->also.end());
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const Node& n = b->nodes[static_cast<std::size_t>(nodes[i])];
      auto nf = probe_flight(config, store, *row, targets, n.revisions);
      if (!nf) return nf.error();
      std::string why = i == 0 ? next->why : "in parallel with flight " + pending.front().str() + ": in case it " +
                                                 "gives either result";
      auto made = store.create_probe_flight(id, *nf, key_of(n.revisions), why);
      if (!made) return made.error();
      pending.push_back(*made);
      std::string what = n.changed_tree.empty() ? "the basis" : n.changed_tree + " " + n.commit.substr(0, 12);
      say("bisection " + std::to_string(id) + ": flight " + made->str() + " tests " + what + " (" + why + ")");
    }
  } else {
    for (FlightId f : pending) say("bisection " + std::to_string(id) + ": resuming probe flight " + f.str());
  }

  flight::RunOptions ro;
  ro.progress = options.progress;
  ro.cancel = options.cancel;
  ro.poll_ms = options.poll_ms;
  ro.handle_signals = options.handle_signals;
  auto run_one = [&](store::Store& st, hosts::Registry& reg, FlightId f) -> Result<std::vector<store::Job>> {
    auto lock = flight::RunLock::acquire(config, f);
    if (!lock) return lock.error();
    return flight::run(config, st, reg, f, ro);
  };
  std::vector<Result<std::vector<store::Job>>> ran;
  if (pending.size() == 1) {
    ran.push_back(run_one(store, hosts, pending.front()));
  } else {
    // One thread per probe flight, each with its own store connection and
    // host registry, as the daemon's flight threads have.
    ran.assign(pending.size(), Status::internal("not run"));
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < pending.size(); ++i) {
      threads.emplace_back([&, i] {
        auto st = store::Store::open({store.path()});
        if (!st) {
          ran[i] = st.error();
          return;
        }
        auto reg = hosts::Registry::create(config);
        if (!reg) {
          ran[i] = reg.error();
          return;
        }
        ran[i] = run_one(**st, **reg, pending[i]);
      });
    }
    for (auto& t : threads) t.join();
  }
  bool cut_short = options.cancel && options.cancel->draining();
  for (std::size_t i = 0; i < pending.size(); ++i) {
    if (!ran[i]) return ran[i].error();
    // Drained or interrupted: its queued jobs run when the bisection resumes.
    if (std::any_of(ran[i]->begin(), ran[i]->end(), [](const store::Job& j) { return j.status == "queued"; })) {
      cut_short = true;
      continue;
    }
    // Judged like every flight (its report and outcome); a real-bisect
    // flight never pushes.
    if (auto g = push::finish_flight(config, store, mirrors, pending[i], "bisect " + std::to_string(id)); !g) {
      return g.error();
    }
  }
  if (cut_short) {
    auto b = load(config, store, id);
    if (b) b->interrupted = true;
    return b;
  }
  auto after = store.get_bisection(id);
  if (!after) return after.error();
  if (after->status != "running") return load(config, store, id);  // cancelled meanwhile
  auto next = decide_and_save(config, store, mirrors, *after, options.rules);
  if (!next) return next.error();
  return load(config, store, id);
}

Result<Bisection> run(const config::Config& config, store::Store& store, revisions::Mirrors& mirrors,
                      hosts::Registry& hosts, std::int64_t id, const AdvanceOptions& options) {
  for (;;) {
    auto b = advance(config, store, mirrors, hosts, id, options);
    if (!b) return b;
    if (finished(b->status) || b->interrupted || (options.cancel && options.cancel->draining())) return b;
  }
}

Result<void> cancel(store::Store& store, std::int64_t id, const std::string& who) {
  auto row = store.get_bisection(id);
  if (!row) return row.error();
  if (row->status != "running") {
    return Status::invalid_argument("bisection " + std::to_string(id) + " has ended (" + row->status + ")");
  }
  auto nodes = store.bisection_nodes(id);
  if (!nodes) return nodes.error();
  return store.update_bisection(id, "cancelled", "cancelled by " + who, row->state, *nodes);
}

}  // namespace pushgate::bisect
