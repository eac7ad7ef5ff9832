// `pushgate flight create|run|show|list` and `pushgate host list|show|enable|disable`.

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <set>
#include <thread>

#include <pushgate/api.hpp>
#include <pushgate/flight.hpp>
#include <pushgate/hosts.hpp>
#include <pushgate/notify.hpp>
#include <pushgate/push.hpp>
#include <pushgate/revisions.hpp>

#include "context.hpp"

namespace pushgate::cli {

void sync_hosts(Context& ctx) {
  std::vector<store::Host> configured;
  for (const auto& h : ctx.config().hosts) configured.push_back({h.name, h.kind, "enabled", "", 0, {}, "", h.flags});
  must(ctx.store().sync_hosts(configured));
}

void notify_once(Context& ctx, const std::string& event, std::int64_t id) {
  notify::DeliverOptions o;
  o.only = std::make_pair(event, id);
  o.log = [](const std::string& line, bool warning) {
    std::cerr << (warning ? "warning: notification of " : "notification of ") << line << "\n";
  };
  auto d = notify::deliver_due(ctx.config(), ctx.store(), store::now(), o);
  if (!d) {
    std::cerr << "warning: notifications of " << event << " " << id << ": " << d.error().message() << "\n";
  } else if (d->retrying > 0) {
    std::cerr << "notifications of " << event << " " << id << ": " << d->retrying
              << " left queued; the daemon (`pushgate daemon`) retries them\n";
  }
}

namespace {

struct FlightArgs {
  std::string branch;
  std::vector<std::string> revs;
  std::vector<std::string> jobs;
  std::string blessing = "real";
  bool no_fetch = false;
  bool always = false;
  bool json = false;
  std::int64_t flight = 0;
  int limit = 20;
  std::string format = "text";
  std::string reason;
  // flight log
  std::string job, step;
  bool follow = false;
  int tail = 0, attempt = 0;
};

struct HostArgs {
  std::string host;
  std::string reason;
  bool json = false;
  int limit = 20;
};



/// Resolve and create a flight; nullopt when up to date (and not --always).
std::optional<FlightId> create(Context& ctx, const FlightArgs& a) {
  const config::Config& cfg = ctx.config();
  store::Store& st = ctx.store();
  auto ov = parse_overrides(a.revs);
  revisions::Mirrors mirrors(cfg);
  if (const config::Branch* b = cfg.find_branch(a.branch); b && !a.no_fetch) {
    for (const auto& t : revisions::trees_of(cfg, *b)) {
      auto r = mirrors.fetch(t, [](const std::string& l) { std::cerr << "  " << l << "\n"; });
      if (!r) fail(r.error(), kFailure);
    }
  }
  auto res = revisions::resolve(cfg, mirrors, &st, a.branch, ov);
  if (!res) fail(res.error(), code_of(res.error()));
  bool always = a.always || cfg.find_branch(a.branch)->always_run;
  if (res->up_to_date && !always) {
    std::cerr << "branch " << a.branch << " is up to date (input == tested ref " << res->tested_revision.substr(0, 12)
              << "); no flight created (use --always to test anyway)\n";
    return std::nullopt;
  }
  flight::CreateOptions opts;
  opts.blessing = a.blessing;
  opts.only_jobs = a.jobs;
  opts.trigger_kind = "manual";
  opts.trigger_detail = "by " + flight::invoking_user();
  auto id = flight::create(cfg, st, *res, opts);
  if (!id) fail(id.error(), code_of(id.error()));
  std::cerr << "flight " << id->str() << " created for " << a.branch
            << (res->baseline_flight ? " (baseline flight: tests the tested ref itself)" : "") << "\n";
  return *id;
}

std::string duration(const store::Step& s) {
  if (!s.started) return "";
  std::int64_t end = s.finished.value_or(store::now());
  return std::to_string(end - *s.started) + "s";
}

nlohmann::json flight_json(Context& ctx, FlightId id) {
  must(ctx.store().get_flight(id), kUsage);
  return must(api::flight_json(ctx.store(), id));
}

void show(Context& ctx, FlightId id, bool json) {
  if (json) {
    print_json(flight_json(ctx, id));
    return;
  }
  store::Store& st = ctx.store();
  auto f = must(st.get_flight(id), kUsage);
  std::cout << "flight " << f.id.str() << "  branch " << f.branch << "  blessing " << f.blessing
            << (f.outcome.empty() ? "" : "  outcome " + f.outcome) << "\n";
  if (!f.trigger_kind.empty()) std::cout << "triggered by " << verdict::trigger_text(f.trigger_kind, f.trigger_detail) << "\n";
  auto steps = must(st.list_steps(id));
  auto attempts = must(st.list_step_attempts(id));
  auto records = must(st.list_artifacts(id));
  auto line = [](const store::Step& s, const std::string& prefix) {
    std::cout << "      " << prefix << std::right << std::setw(2) << s.stepno << " " << std::left << std::setw(24)
              << s.testid << " " << std::setw(8) << s.status << " " << std::setw(6) << duration(s) << " "
              << s.log_path << "\n";
  };
  for (const auto& job : must(st.list_jobs(id))) {
    std::cout << "  " << std::left << std::setw(30) << job.job << " " << std::setw(9) << job.status << " "
              << job.status_reason << "\n";
    for (const auto& a : attempts) {
      if (a.step.job == job.job) line(a.step, "(attempt " + std::to_string(a.attempt) + ", run again) ");
    }
    for (const auto& s : steps) {
      if (s.job == job.job) line(s, "");
    }
    for (const auto& r : records) {
      if (r.job == job.job) {
        std::cout << "      ABI record " << r.key << " " << r.digest.substr(0, 12) << " (step " << r.stepno << ")\n";
      }
    }
  }
  for (const auto& n : must(st.notifications_of("flight", id.value))) {
    std::cout << "notified: " << notify::describe(n) << ": " << n.state
              << (n.state == "pending" ? ", next try " + human_time(n.next_at) : "")
              << (n.attempts > 1 ? " after " + std::to_string(n.attempts) + " attempts" : "")
              << (n.state != "sent" && !n.last_error.empty() ? " (" + n.last_error + ")" : "") << "\n";
  }
}

/// `pushgate flight log N JOB [STEP]`: one step's log, or every step of the
/// job in order under "==> N TESTID (status) <==" headers; --follow keeps
/// reading while they grow, moving on to later steps, until the job ends.
void show_log(Context& ctx, const FlightArgs& a) {
  const FlightId id{a.flight};
  store::Store& st = ctx.store();
  must(st.get_flight(id), kUsage);
  {
    std::vector<std::string> names;
    for (const auto& j : must(st.list_jobs(id))) names.push_back(j.job);
    if (std::find(names.begin(), names.end(), a.job) == names.end()) {
      fail_unknown("job", a.job, names, "see `pushgate flight show " + id.str() + "`");
    }
  }
  std::map<int, std::int64_t> next;  // stepno -> bytes printed
  std::set<int> ended;
  int current = -1;
  for (bool first = true;; first = false) {
    std::vector<store::Step> steps;
    if (a.attempt > 0) {
      for (const auto& s : must(st.list_step_attempts(id))) {
        if (s.attempt == a.attempt && s.step.job == a.job) steps.push_back(s.step);
      }
    } else {
      for (const auto& s : must(st.list_steps(id))) {
        if (s.job == a.job) steps.push_back(s);
      }
    }
    std::sort(steps.begin(), steps.end(), [](const auto& x, const auto& y) { return x.stepno < y.stepno; });
    if (!a.step.empty()) {
      std::erase_if(steps, [&](const store::Step& s) { return std::to_string(s.stepno) != a.step && s.testid != a.step; });
      if (steps.empty() && !a.follow) {
        fail(Status::not_found("job " + a.job + " of flight " + id.str() + " has no step \"" + a.step + "\""), kUsage);
      }
    }
    for (const auto& s : steps) {
      if (ended.count(s.stepno)) continue;
      flight::LogQuery q{a.job, std::to_string(s.stepno), a.attempt, next[s.stepno], first || !next.count(s.stepno) ? a.tail : 0};
      if (next[s.stepno] > 0) q.tail_lines = 0;
      auto slice = flight::read_log(ctx.config(), st, id, q);
      if (!slice) {
        std::cerr << "pushgate: " << slice.error().message() << "\n";
        ended.insert(s.stepno);
        continue;
      }
      if (a.step.empty() && current != s.stepno && (!slice->text.empty() || !slice->growing)) {
        std::cout << (current == -1 ? "" : "\n") << "==> " << s.stepno << " " << s.testid << " ("
                  << (slice->growing ? "running" : slice->status) << ") <==\n";
        current = s.stepno;
      }
      std::cout << slice->text << std::flush;
      next[s.stepno] = slice->offset + static_cast<std::int64_t>(slice->text.size());
      if (!slice->growing && next[s.stepno] >= slice->size) ended.insert(s.stepno);
      else if (next[s.stepno] < slice->size) break;  // more to read first: keep the order
    }
    if (!a.follow) break;
    // Done when the job has ended and every step's log is read out.
    std::string status;
    for (const auto& j : must(st.list_jobs(id))) {
      if (j.job == a.job) status = j.status;
    }
    bool job_over = status != "queued" && status != "preparing" && status != "running";
    bool all_read = std::all_of(steps.begin(), steps.end(), [&](const store::Step& s) { return ended.count(s.stepno) > 0; });
    if ((job_over || must(st.get_flight(id)).finished) && all_read) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

/// What the gate did with a judged flight, and the exit status that says it.
struct GateResult {
  bool tolerable = false, pushed = false;
  std::string result;  ///< pushed, nothing-to-push, not-pushed, not-tolerable
  std::string reason;
  int exit = kOk;
};

GateResult gate_result(const push::Gate& gate) {
  GateResult g;
  g.tolerable = verdict::tolerable(gate.verdict.outcome);
  g.pushed = gate.push && gate.push->pushed();
  g.reason = gate.decision.reason;
  if (gate.push && !gate.push->pushed()) {
    g.reason = "push " + gate.push->state + (gate.push->message.empty() ? "" : ": " + gate.push->message);
  }
  if (!g.tolerable) {
    g.result = "not-tolerable";
    g.exit = kNotTolerable;
  } else if (g.pushed) {
    g.result = "pushed";
  } else if (gate.baseline_flight && gate.flight.blessing == "real") {
    g.result = "nothing-to-push";  // it tested the tested ref itself
  } else {
    g.result = "not-pushed";
    g.exit = kNotPushed;
  }
  return g;
}

void run_flight(Context& ctx, const FlightArgs& a) {
  const config::Config& cfg = ctx.config();
  revisions::Mirrors mirrors(cfg);
  // Pushes a crash left half-done are finished before anything is resolved.
  must(push::reconcile(cfg, ctx.store(), mirrors, [](const std::string& l) { std::cerr << l << "\n"; },
                       [&cfg](const store::Store::Push& p) { return p.flight && flight::RunLock::held(cfg, *p.flight); }));
  std::optional<FlightId> id;
  if (a.flight) {
    id = FlightId{a.flight};
    must(ctx.store().get_flight(*id), kUsage);
  } else {
    if (a.branch.empty()) fail(Status::invalid_argument("give BRANCH or --flight N"), kUsage);
    id = create(ctx, a);
    if (!id) return;
  }
  // Held to the end (steps, verdict, push): a daemon restarting meanwhile leaves this flight alone.
  auto lock = must(flight::RunLock::acquire(cfg, *id));
  sync_hosts(ctx);
  auto reg = must(hosts::Registry::create(cfg));
  flight::RunOptions opts;
  opts.handle_signals = true;
  opts.progress = [](const std::string& line) { std::cerr << line << "\n"; };
  auto jobs = flight::run(cfg, ctx.store(), *reg, *id, opts);
  if (!jobs) fail(jobs.error());
  // Stopped by a signal: the jobs it cut short are queued again and nothing
  // is judged (SPEC section 9).
  if (std::any_of(jobs->begin(), jobs->end(), [](const store::Job& j) { return j.status == "queued"; })) {
    std::cerr << "flight " << id->str() << " stopped before its end; not judged. Its queued jobs run with "
              << "`pushgate flight run --flight " << id->str() << "` or at the daemon's next start\n";
    throw ExitError{kInterrupted};
  }
  push::Retester retest = [&](FlightId original, const std::vector<std::string>& regressed) {
    return flight::retest(cfg, ctx.store(), *reg, original, regressed, opts);
  };
  auto gate = must(push::finish_flight(cfg, ctx.store(), mirrors, *id, ctx.who, retest));
  notify_once(ctx, "flight", id->value);
  auto rep = must(push::report(cfg, ctx.store(), mirrors, gate));
  GateResult g = gate_result(gate);
  if (a.json) {
    nlohmann::json j = flight_json(ctx, *id);
    j["verdict"] = nlohmann::json::parse(verdict::render_json(rep));
    j["gate"] = {{"tolerable", g.tolerable}, {"pushed", g.pushed}, {"result", g.result}, {"reason", g.reason},
                 {"push_state", gate.push ? nlohmann::json(gate.push->state) : nlohmann::json()},
                 {"exit_status", g.exit}};
    print_json(j);
  } else {
    std::cout << verdict::render_text(rep);
    if (g.exit == kNotPushed) std::cerr << "flight " << id->str() << ": tolerable, not pushed: " << g.reason << "\n";
  }
  if (g.exit != kOk) throw ExitError{g.exit};
}

void report(Context& ctx, const FlightArgs& a) {
  if (a.format != "text" && a.format != "html" && a.format != "json") {
    fail(Status::invalid_argument("--format must be text, html or json"), kUsage);
  }
  const config::Config& cfg = ctx.config();
  FlightId id{a.flight};
  must(ctx.store().get_flight(id), kUsage);
  revisions::Mirrors mirrors(cfg);
  auto rep = must(push::flight_report(cfg, ctx.store(), mirrors, id));
  std::cout << (a.format == "json" ? verdict::render_json(rep) + "\n"
                : a.format == "html" ? verdict::render_html(rep)
                                     : verdict::render_text(rep));
}

void rejudge(Context& ctx, const FlightArgs& a) {
  const config::Config& cfg = ctx.config();
  FlightId id{a.flight};
  auto before = must(ctx.store().get_flight(id), kUsage);
  if (a.reason.empty()) fail(Status::invalid_argument("--reason is required: it is kept with both verdicts"), kUsage);
  auto gate = must(push::rejudge(cfg, ctx.store(), id, ctx.who, a.reason), kUsage);
  std::string now = verdict::to_string(gate.verdict.outcome);
  if (a.json) {
    print_json({{"flight", id.value}, {"before", before.outcome}, {"after", now}, {"who", ctx.who}, {"reason", a.reason}});
  } else {
    std::cout << "flight " << id.str() << ": " << before.outcome << " -> " << now << " (both verdicts kept; "
              << "`pushgate flight report " << id.str() << "` shows the new one)\n";
  }
}

void list_flights(Context& ctx, const FlightArgs& a) {
  store::FlightFilter f;
  f.branch = a.branch;
  f.limit = a.limit;
  if (!a.branch.empty()) must(api::check_names(ctx.config(), {.branch = a.branch}), kUsage);
  auto flights = must(ctx.store().list_flights(f));
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& fl : flights) {
      j.push_back(api::flight_summary_json(fl));
    }
    print_json(j);
    return;
  }
  for (const auto& fl : flights) {
    std::cout << std::setw(6) << fl.id.value << "  " << std::left << std::setw(20) << fl.branch << " " << std::setw(12)
              << fl.blessing << " " << std::setw(12) << (fl.outcome.empty() ? "-" : fl.outcome) << " "
              << age(fl.created) << std::right << "\n";
  }
  if (flights.empty()) std::cout << "no flights\n";
}

const store::Host& find_host(const std::vector<store::Host>& hosts, const std::string& name) {
  for (const auto& h : hosts) {
    if (h.host == name) return h;
  }
  std::vector<std::string> names;
  for (const auto& h : hosts) names.push_back(h.host);
  fail_unknown("host", name, names, "see `pushgate host list`");
}

}  // namespace

void add_flight_commands(CLI::App& app, Context& ctx) {
  static FlightArgs fa;
  auto* fl = app.add_subcommand("flight", "Create, run and inspect flights");
  fl->require_subcommand(1);
  auto revision_options = [](CLI::App* c) {
    c->add_option("--rev", fa.revs, "override a tree's revision: TREE=REV (repeatable)");
    c->add_option("--blessing", fa.blessing, "real, real-retest, real-bisect, adhoc or play");
    c->add_option("--job", fa.jobs, "run only these jobs of the matrix (repeatable)");
    c->add_flag("--no-fetch", fa.no_fetch, "use the mirrors as they are");
    c->add_flag("--always", fa.always, "create a flight even when the branch is up to date");
  };
  auto* create_cmd = fl->add_subcommand("create", "Resolve revisions and create a flight of BRANCH; prints its number");
  create_cmd->add_option("branch", fa.branch, "branch name")->required();
  revision_options(create_cmd);
  create_cmd->add_flag("--json", fa.json, "machine-readable output");
  create_cmd->callback([&ctx] {
    auto id = create(ctx, fa);
    if (fa.json) print_json({{"flight", id ? nlohmann::json(id->value) : nlohmann::json()}, {"up_to_date", !id}});
    else if (id) std::cout << id->str() << "\n";
  });
  auto* run_cmd = fl->add_subcommand("run",
                                     "Create and run a flight of BRANCH in the foreground (Ctrl-C cancels), then judge it\n"
                                     "and push if tolerable. Exit 0 tolerable and pushed (or a baseline flight, nothing to push), "
                                     "5 tolerable but not pushed (push off, blocked, not a real flight, push refused), "
                                     "3 not tolerable, 4 interrupted, 1 error.");
  run_cmd->add_option("branch", fa.branch, "branch name");
  run_cmd->add_option("--flight", fa.flight, "run the queued jobs of an existing flight instead");
  revision_options(run_cmd);
  run_cmd->add_flag("--json", fa.json, "print the finished flight as JSON");
  run_cmd->callback([&ctx] { run_flight(ctx, fa); });
  auto* show_cmd = fl->add_subcommand("show", "Jobs and steps of flight N with statuses, durations and logs");
  show_cmd->add_option("flight", fa.flight, "flight number")->required();
  show_cmd->add_flag("--json", fa.json, "machine-readable output");
  show_cmd->callback([&ctx] { show(ctx, FlightId{fa.flight}, fa.json); });
  auto* report_cmd = fl->add_subcommand("report", "The verdict report of flight N (text like osstest's mail, HTML or JSON)");
  report_cmd->add_option("flight", fa.flight, "flight number")->required();
  report_cmd->add_option("--format", fa.format, "text, html or json");
  report_cmd->callback([&ctx] { report(ctx, fa); });
  auto* rejudge_cmd = fl->add_subcommand(
      "rejudge", "Judge finished flight N again by today's evidence and store that verdict beside the old one\n"
                 "(audited: who and --reason). Never pushes. Reports show the newest verdict.");
  rejudge_cmd->add_option("flight", fa.flight, "flight number")->required();
  rejudge_cmd->add_option("--reason", fa.reason, "why it is judged again (required, kept)")->required();
  rejudge_cmd->add_flag("--json", fa.json, "machine-readable output");
  rejudge_cmd->callback([&ctx] { rejudge(ctx, fa); });
  auto* log_cmd = fl->add_subcommand(
      "log", "The log of STEP (a number or testid) of JOB in flight N; without STEP every step of the job in order.\n"
             "--follow keeps printing while the step runs, and the steps after it, until the job ends.");
  log_cmd->add_option("flight", fa.flight, "flight number")->required()->check(CLI::PositiveNumber);
  log_cmd->add_option("job", fa.job, "job name")->required();
  log_cmd->add_option("step", fa.step, "step number or testid (default: every step)");
  log_cmd->add_flag("-f,--follow", fa.follow, "follow the log while the job runs");
  log_cmd->add_option("--tail", fa.tail, "start with only the last N lines of each step")->check(CLI::PositiveNumber);
  log_cmd->add_option("--attempt", fa.attempt, "the steps of attempt K, which a daemon restart interrupted")
      ->check(CLI::PositiveNumber);
  log_cmd->callback([&ctx] { show_log(ctx, fa); });
  auto* list_cmd = fl->add_subcommand("list", "Recent flights, newest first");
  list_cmd->add_option("--branch", fa.branch, "only this branch");
  list_cmd->add_option("--limit", fa.limit, "at most this many")->check(CLI::PositiveNumber);
  list_cmd->add_flag("--json", fa.json, "machine-readable output");
  list_cmd->callback([&ctx] { list_flights(ctx, fa); });

  static HostArgs ha;
  auto* host = app.add_subcommand("host", "Test hosts: state, history, enable and disable");
  host->require_subcommand(1);
  auto* hl = host->add_subcommand("list", "Every configured host with its state and holder");
  hl->add_flag("--json", ha.json, "machine-readable output");
  hl->callback([&ctx] {
    sync_hosts(ctx);
    auto hosts = must(ctx.store().list_hosts());
    if (ha.json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& h : hosts) j.push_back(api::host_json(h));
      print_json(j);
      return;
    }
    for (const auto& h : hosts) {
      std::cout << std::left << std::setw(16) << h.host << " " << std::setw(10) << h.kind << " " << std::setw(12)
                << h.state << " " << (h.held_flight ? "held by " + h.held_flight->str() + "." + h.held_job : "free")
                << (h.state_reason.empty() ? "" : "  (" + h.state_reason + ")") << std::right << "\n";
    }
  });
  auto* hs = host->add_subcommand("show", "One host: state, flags and its last uses");
  hs->add_option("host", ha.host, "host name")->required();
  hs->add_option("--limit", ha.limit, "history entries")->check(CLI::PositiveNumber);
  hs->add_flag("--json", ha.json, "machine-readable output");
  hs->callback([&ctx] {
    sync_hosts(ctx);
    auto hosts = must(ctx.store().list_hosts());
    const store::Host& h = find_host(hosts, ha.host);
    auto events = must(ctx.store().host_history(ha.host, ha.limit));
    if (ha.json) {
      nlohmann::json j = api::host_json(h);
      j["history"] = nlohmann::json::array();
      for (const auto& e : events) j["history"].push_back(api::host_event_json(e));
      print_json(j);
      return;
    }
    std::cout << h.host << " (" << h.kind << "): " << h.state << (h.state_reason.empty() ? "" : " - " + h.state_reason)
              << "\n  flags:";
    for (const auto& f : h.flags) std::cout << " " << f;
    std::cout << "\n  consecutive broken jobs: " << h.consecutive_broken << "\n";
    for (const auto& e : events) {
      std::cout << "  " << age(e.at) << " " << e.event
                << (e.flight ? " flight " + e.flight->str() + " " + e.job + (e.role.empty() ? "" : " as " + e.role) : "")
                << (e.detail.empty() ? "" : " (" + e.detail + ")") << "\n";
    }
  });
  auto state_cmd = [&ctx](CLI::App* parent, const char* name, const char* state, const char* help) {
    auto* c = parent->add_subcommand(name, help);
    c->add_option("host", ha.host, "host name")->required();
    c->add_option("--reason", ha.reason, "recorded with the change");
    c->callback([&ctx, state] {
      sync_hosts(ctx);
      auto hosts = must(ctx.store().list_hosts());
      find_host(hosts, ha.host);
      std::string reason = ha.reason.empty() ? std::string(state) + " by " + ctx.who : ha.reason + " (" + ctx.who + ")";
      if (std::string(state) == "enabled") reason = "";
      must(ctx.store().set_host_state(ha.host, state, reason));
      std::cout << "host " << ha.host << ": " << state << "\n";
    });
  };
  state_cmd(host, "enable", "enabled", "Put a host back into service (also after quarantine)");
  state_cmd(host, "disable", "disabled", "Take a host out of service");
}

}  // namespace pushgate::cli
