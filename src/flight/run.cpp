// Running a flight: one io_context; a driver coroutine starts ready jobs in
// allocation order, each job a coroutine that allocates hosts, runs its
// recipe's steps and records everything. Libvirt calls go to a worker pool.

#include <pushgate/flight.hpp>
#include <pushgate/scheduler.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

namespace pushgate::flight {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

bool terminal_bad(const std::string& s) {
  return s == "fail" || s == "broken" || s == "blocked" || s == "cancelled" || s == "starved";
}

std::string upper(const std::string& s) { return config::env_name(s, true); }

/// PUSHGATE_RV_<name> for every runvar. A name that had to change (`-`) never
/// replaces a runvar already named like its variable.
void put_runvars(std::map<std::string, std::string>& env, const std::map<std::string, std::string>& vars) {
  for (const auto& [k, v] : vars) {
    if (config::env_name(k) != k) env.emplace("PUSHGATE_RV_" + config::env_name(k), v);
  }
  for (const auto& [k, v] : vars) {
    if (config::env_name(k) == k) env["PUSHGATE_RV_" + k] = v;
  }
}

class Runner {
 public:
  Runner(const config::Config& cfg, store::Store& st, hosts::Registry& reg, FlightId id, const RunOptions& opt)
      : cfg_(cfg), st_(st), reg_(reg), id_(id), opt_(opt), cancel_(opt.cancel ? opt.cancel : &own_cancel_) {}

  Result<std::vector<store::Job>> run() {
    auto flight = st_.get_flight(id_);
    if (!flight) return flight.error();
    branch_ = flight->branch;
    if (const config::Branch* b = cfg_.find_branch(branch_)) priority_ = b->priority;
    // Retests and bisections wait behind normal work (SPEC section 4).
    if (flight->blessing == "real-retest" || flight->blessing == "real-bisect") priority_ -= 1000;
    // Others know this flight's waiters and hosts are alive by its run lock:
    // a caller that did not take it (a test, a tool) gets it taken here.
    std::optional<RunLock> own_lock;
    if (!RunLock::held(cfg_, id_)) {
      auto l = RunLock::acquire(cfg_, id_);
      if (!l) return l.error();
      own_lock.emplace(std::move(*l));
    }
    // Holding the run lock, any process still tagged with this flight is a
    // leftover of a runner that died (kill -9): it goes before anything runs.
    if (int n = containment_.kill_flights_except([this](FlightId f) { return f != id_; }); n > 0) {
      say("flight " + id_.str() + ": killed " + std::to_string(n) + " leftover step process(es) of an earlier run");
    }
    auto jobs = st_.list_jobs(id_);
    if (!jobs) return jobs.error();
    for (auto& j : *jobs) {
      // We hold the run lock: a job still marked running is one an earlier
      // run of this flight could not finish recording (it died, or its
      // store failed). It runs again; what it recorded is kept as an attempt.
      if (j.status == "running" || j.status == "preparing") {
        if (auto r = st_.requeue_job(id_, j.job, "interrupted (" + j.status + " when its runner stopped); run again"); !r) {
          return r.error();
        }
        say("flight " + id_.str() + " " + j.job + ": re-queued, its earlier run was interrupted");
        j.status = "queued";
      }
      status_[j.job] = j.status;
    }
    if (!flight->started) (void)st_.set_flight_times(id_, store::now(), std::nullopt);
    plan_critical_paths();

    std::unique_ptr<asio::signal_set> signals;
    if (opt_.handle_signals) {
      signals = std::make_unique<asio::signal_set>(io_, SIGINT, SIGTERM);
      wait_signal(*signals);
    }
    asio::co_spawn(io_, drive(std::move(signals)), asio::detached);
    io_.run();
    pool_.join();
    if (!error_.ok()) return error_;
    // A drained flight has jobs back in the queue: it has not finished (and
    // is no evidence of anything) until a later run completes them.
    bool left = std::any_of(status_.begin(), status_.end(), [](const auto& j) { return j.second == "queued"; });
    if (!left) (void)st_.set_flight_times(id_, std::nullopt, store::now());
    return st_.list_jobs(id_);
  }

 private:
  void say(const std::string& line) {
    if (opt_.progress) opt_.progress(line);
  }

  /// In the foreground (`flight run`): the first signal stops the flight
  /// now but cleanly (running steps killed, cleanup steps run, jobs cut
  /// short re-queued, nothing judged); a second one stops everything.
  void wait_signal(asio::signal_set& signals) {
    signals.async_wait([this, &signals](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (!cancel_->draining()) {
        say("signal " + std::to_string(sig) + ": stopping flight " + id_.str() +
            " (cleanup steps still run; again to stop at once)");
        cancel_->cut();
        wait_signal(signals);
      } else {
        say("signal " + std::to_string(sig) + ": stopping flight " + id_.str() + " at once");
        cancel_->cancel();
      }
    });
  }

  /// Remember the first store failure; the flight stops starting jobs.
  bool check(const Result<void>& r) {
    if (!r && error_.ok()) error_ = r.error();
    return r.has_value();
  }

  /// Critical path first (SPEC section 4): each job's expected seconds to
  /// the flight's end, from duration history, ranks it among its flight's
  /// waiting jobs. Without history every job counts the same default, so
  /// the deepest chains still go first.
  void plan_critical_paths() {
    std::map<std::string, bool> kinds;
    for (const auto& [job, status] : status_) {
      if (const config::Job* cj = cfg_.find_job(job)) kinds[job] = cj->kind == "build";
    }
    auto durations = scheduler::expected_durations(st_, kinds);
    if (!durations) {  // a ranking hint only: without it, builds first then by name
      say("flight " + id_.str() + ": no duration history (" + durations.error().message() + "); jobs ranked by name");
      return;
    }
    std::map<std::string, scheduler::JobShape> shapes;
    for (const auto& [job, build] : kinds) shapes[job] = {durations->at(job), cfg_.find_job(job)->depends};
    remaining_ = scheduler::remaining_paths(shapes);
  }

  scheduler::Candidate candidate(const std::string& job, const config::Job& cj) const {
    auto it = remaining_.find(job);
    return {id_, job, cj.kind == "build", priority_, it == remaining_.end() ? 0 : it->second};
  }

  void set_status(const std::string& job, const std::string& status, const std::string& reason) {
    status_[job] = status;
    check(st_.set_job_status(id_, job, status, reason));
    say("flight " + id_.str() + " " + job + ": " + status + (reason.empty() ? "" : " (" + reason + ")"));
  }

  asio::awaitable<void> drive(std::unique_ptr<asio::signal_set> signals) {
    asio::steady_timer tick(io_);
    for (;;) {
      std::vector<scheduler::Candidate> ready;
      bool queued_left = false;
      for (const auto& [job, status] : status_) {
        if (status != "queued") continue;
        // Draining, or the store failing (a database busy for longer than
        // the wait): what has not started stays queued for the next run.
        if (cancel_->draining() || !error_.ok()) continue;
        const config::Job* cj = cfg_.find_job(job);
        if (!cj) {
          set_status(job, "broken", "job " + job + " is no longer in the configuration");
          continue;
        }
        std::string bad_dep;
        bool deps_done = true, only_starved = true;
        for (const auto& d : cj->depends) {
          auto it = status_.find(d);
          if (it == status_.end()) continue;
          if (terminal_bad(it->second)) {
            bad_dep = d + " " + it->second;
            only_starved = only_starved && it->second == "starved";
          } else if (it->second != "pass") {
            deps_done = false;
          }
        }
        if (!bad_dep.empty()) {
          // SPEC section 4: blocked, or starved when what it waited for starved.
          block(job, only_starved ? "starved" : "blocked", bad_dep);
          continue;
        }
        if (deps_done) ready.push_back(candidate(job, *cj));
        else queued_left = true;
      }
      scheduler::order(ready);
      for (const auto& c : ready) {
        if (static_cast<int>(running_.size()) >= cfg_.daemon.max_parallel_jobs) {
          queued_left = true;
          break;
        }
        running_.insert(c.job);
        status_[c.job] = "preparing";
        check(st_.set_job_status(id_, c.job, "preparing", ""));
        asio::co_spawn(io_, run_job(c.job), asio::detached);
      }
      if (running_.empty() && (cancel_->draining() || !error_.ok() || (!queued_left && std::none_of(
                                   status_.begin(), status_.end(), [](const auto& s) { return s.second == "queued"; })))) {
        break;
      }
      tick.expires_after(std::chrono::milliseconds(opt_.poll_ms));
      co_await tick.async_wait(asio::use_awaitable);
    }
    if (signals) signals->cancel();
  }

  void block(const std::string& job, const std::string& status, const std::string& why) {
    store::Step s{id_, job, 1, "build-check", status, store::now(), store::now(), ""};
    check(st_.put_step(s));
    set_status(job, status, "dependency " + why);
  }

  /// osstest's record of a job that got no host in time: step hosts-allocate, starved.
  void starve(const std::string& job, const std::string& why) {
    // A re-run of a broken job that finds no host stays broken: starving
    // it would turn pushgate's trouble into n/a in the verdict.
    if (auto it = avoid_.find(job); it != avoid_.end() && !it->second.empty()) {
      set_status(job, "broken", "broken, and no host for running it again: " + why);
      return;
    }
    store::Step s{id_, job, 1, "hosts-allocate", "starved", store::now(), store::now(), ""};
    check(st_.put_step(s));
    set_status(job, "starved", why);
  }

  /// A reusable earlier build: same inputs, passed, outputs still there.
  bool try_reuse(const std::string& job, std::map<std::string, std::string>& vars) {
    auto builds = st_.find_builds(job, vars["build_inputs"], id_);
    if (!builds) return false;
    for (const auto& [flight, synth] : *builds) {
      std::string dir;
      for (const auto& v : synth) {
        if (v.name == "build_dir") dir = v.value;
      }
      std::error_code ec;
      if (dir.empty() || !std::filesystem::is_directory(dir, ec)) continue;
      for (const auto& v : synth) check(st_.set_runvar(id_, {job, v.name, v.value, true}));
      check(st_.set_runvar(id_, {job, "reused_from", flight.str() + "." + job, true}));
      set_status(job, "pass", "reused build of flight " + flight.str());
      return true;
    }
    return false;
  }

  std::map<std::string, std::string> runvars_of(const std::string& job) {
    std::map<std::string, std::string> out;
    auto vars = st_.list_runvars(id_, job);
    if (vars) {
      for (const auto& v : *vars) out[v.name] = v.value;
    }
    return out;
  }

  asio::awaitable<void> run_job(std::string job) {
    const config::Job* cj = cfg_.find_job(job);
    auto vars = runvars_of(job);
    if (cj->kind == "build" && try_reuse(job, vars)) {
      running_.erase(job);
      co_return;
    }

    // Hosts: wait for eligible ones to be free, up to the starvation limit.
    asio::steady_timer wait(io_);
    auto deadline = Clock::now() + std::chrono::seconds(cfg_.daemon.starve_after_seconds);
    scheduler::Allocation alloc;
    const scheduler::Candidate me = candidate(job, *cj);
    // A pinned role (pin_<role> = HOST, a bisection probe) takes only that host.
    scheduler::RoleFlags wanted = cj->hosts;
    for (auto& [role, flags] : wanted) {
      if (auto pin = vars.find(kPinPrefix + role); pin != vars.end()) flags.push_back(scheduler::kHostFlagPrefix + pin->second);
    }
    bool waiting = false;
    auto stop_waiting = [&] {
      if (waiting) check(st_.clear_waiting(id_, job));
    };
    for (;;) {
      if (cancel_->draining()) {
        stop_waiting();
        set_status(job, "queued", "drained before it got hosts; it runs at the next start");
        running_.erase(job);
        co_return;
      }
      auto r = scheduler::try_allocate(st_, me, wanted,
                                       [this](FlightId f) { return RunLock::held(cfg_, f); }, avoid_[job]);
      if (!r) {
        stop_waiting();
        if (r.error().code() == StatusCode::not_found) starve(job, r.error().message());
        else set_status(job, "broken", r.error().message());
        running_.erase(job);
        co_return;
      }
      if (r->has_value()) {
        alloc = r->value();
        stop_waiting();
        break;
      }
      if (!waiting) {
        // Tell other flights (and processes) this job is in the queue.
        check(st_.set_waiting({id_, job, me.priority, me.build, scheduler::encode_roles(wanted), me.remaining}));
        waiting = true;
      }
      if (Clock::now() >= deadline) {
        stop_waiting();
        starve(job, "no eligible host was free within " + std::to_string(cfg_.daemon.starve_after_seconds) + "s");
        running_.erase(job);
        co_return;
      }
      wait.expires_after(std::chrono::milliseconds(opt_.poll_ms));
      co_await wait.async_wait(asio::use_awaitable);
    }
    for (const auto& [role, host] : alloc) {
      check(st_.set_runvar(id_, {job, role, host, true}));
      say("flight " + id_.str() + " " + job + ": " + role + " = " + host);
    }
    set_status(job, "running", "");
    // What this job runs is what it built: a build job, or a job with no
    // build job, records the input revisions as built now (a re-run
    // overwrites the attempt before); its steps may refine them through
    // $PUSHGATE_OUTPUTS. The verdict matches baselines on these (SPEC section 5).
    if (cj->kind == "build" || !vars.count("buildjob")) {
      for (const auto& t : cfg_.trees) {
        if (auto rev = vars.find("revision_" + t.name); rev != vars.end()) {
          check(st_.set_runvar(id_, {job, "built_revision_" + t.name, rev->second, true}));
        }
      }
    }

    // A fresh work directory and log directory per attempt (issue 12 item 3).
    int attempt = 1;
    if (auto before = st_.list_step_attempts(id_)) {
      for (const auto& a : *before) {
        if (a.step.job == job) attempt = std::max(attempt, a.attempt + 1);
      }
    }
    std::string workdir = work_dir(cfg_, id_, job, attempt);
    std::error_code ec;
    std::filesystem::create_directories(workdir, ec);
    std::map<std::string, std::string> env{{"PUSHGATE_FLIGHT", id_.str()},
                                           {"PUSHGATE_BRANCH", branch_},
                                           {"PUSHGATE_JOB", job},
                                           {"PUSHGATE_WORKDIR", workdir},
                                           {"PUSHGATE_CONFIG_DIR", cfg_.dir},
                                           {"PUSHGATE_STATE_DIR", cfg_.daemon.state_dir}};
    for (const auto& t : cfg_.trees) env["PUSHGATE_MIRROR_" + upper(t.name)] = t.mirror;
    // Every build job it depends on, by name (a reused build has the
    // build_dir of the flight that built it); PUSHGATE_BUILD_DIR is the
    // buildjob's, the first build dependency.
    for (const auto& d : cj->depends) {
      const config::Job* dj = cfg_.find_job(d);
      if (!dj || dj->kind != "build") continue;
      auto bvars = runvars_of(d);
      if (auto dir = bvars.find("build_dir"); dir != bvars.end()) env["PUSHGATE_BUILD_DIR_" + upper(d)] = dir->second;
    }
    if (auto b = vars.find("buildjob"); b != vars.end()) {
      auto bvars = runvars_of(b->second);
      if (bvars.count("build_dir")) env["PUSHGATE_BUILD_DIR"] = bvars["build_dir"];
    }
    std::map<std::string, hosts::Host*> roles;
    for (const auto& [role, host] : alloc) {
      hosts::Host* h = reg_.find(host);
      roles[role] = h;
      env["PUSHGATE_" + upper(role)] = host;
      env["PUSHGATE_" + upper(role) + "_ADDRESS"] = h ? h->address() : "";
    }
    // A job with no host roles runs its commands on the controller.
    std::unique_ptr<hosts::Host> controller;
    const config::Recipe& recipe = cfg_.recipes.at(cj->recipe);
    // SPEC section 4: broken if any step ended broken, else fail if a fatal
    // step failed; the first fatal failure skips the normal steps after it.
    std::string job_status = "pass", job_reason;
    bool any_broken = false;
    std::string broken_reason;
    // SPEC section 9: a drain lets running steps finish, starts no normal
    // step, still runs cleanup (`always`) steps; a job cut short this way is
    // re-queued for the next start, never judged.
    bool cut_short = false;
    for (std::size_t k = 0; k < recipe.steps.size(); ++k) {
      const config::Step& step = recipe.steps[k];
      bool failed = job_status != "pass";
      if (failed && !step.always) continue;
      if (!step.always && cancel_->draining()) {
        cut_short = true;
        continue;
      }
      if (cancel_->cancelled()) continue;  // a hard stop: not even cleanup
      int stepno = static_cast<int>(k) + 1;
      const std::string role = config::step_role(*cj, step);
      hosts::Host* host = roles.count(role) ? roles[role] : nullptr;
      // A command with no host role runs on the controller. An operation with
      // no host (config checks prevent it; a host removed from the config can
      // still cause it) is broken below.
      if (!host && step.op.empty() && role.empty()) {
        if (!controller) controller = hosts::make_local(config::Host{"controller", "local"});
        host = controller.get();
      }
      std::string log = log_path(cfg_, id_, job, stepno, step.testid, attempt);
      std::filesystem::create_directories(std::filesystem::path(log).parent_path(), ec);
      std::ofstream(log, std::ios::app).close();
      auto started = store::now();
      check(st_.put_step({id_, job, stepno, step.testid, "running", started, std::nullopt, log}));
      say("flight " + id_.str() + " " + job + " step " + std::to_string(stepno) + " " + step.testid + ": running");
      auto t0 = Clock::now();

      hosts::StepContext ctx;
      ctx.flight = id_;
      ctx.job = job;
      ctx.stepno = stepno;
      ctx.testid = step.testid;
      ctx.log_path = log;
      ctx.workdir = workdir;
      ctx.env = env;
      put_runvars(ctx.env, runvars_of(job));
      std::string outputs = workdir + "/.outputs-" + std::to_string(stepno);
      std::filesystem::remove(outputs, ec);
      ctx.env["PUSHGATE_OUTPUTS"] = outputs;
      const std::string records_in = workdir + "/.artifacts-" + std::to_string(stepno);
      std::filesystem::remove_all(records_in, ec);
      std::filesystem::create_directories(records_in, ec);
      ctx.env["PUSHGATE_ARTIFACTS"] = records_in;
      ctx.env["PUSHGATE_STEPNO"] = std::to_string(stepno);
      ctx.env["PUSHGATE_TESTID"] = step.testid;
      if (host) {
        ctx.env["PUSHGATE_HOST"] = host->name();
        ctx.env["PUSHGATE_HOST_ADDRESS"] = host->address();
      }
      ctx.timeout_seconds = step.timeout;
      ctx.inherit = cfg_.daemon.step_env;
      ctx.roles = roles;
      ctx.role = role;
      ctx.cancel = cancel_;
      ctx.pool = &pool_;
      ctx.place = containment_.place(id_, job, stepno);
      ctx.log_max_bytes = step.log_max_bytes ? step.log_max_bytes : cfg_.daemon.step_log_max_bytes;

      const bool killed_before = cancel_->killed_running();
      hosts::StepOutcome out;
      if (!host) {
        out = hosts::StepOutcome::broken("no host in role \"" + role + "\" for " +
                                         (step.op.empty() ? "command" : "operation " + step.op));
      } else if (!step.run.empty()) {
        out = co_await host->run_command(step.run, step.on_failure, ctx);
      } else {
        out = co_await host->run_op(step.op, ctx);
        // An operation that failed counts as the step's configured failure status;
        // infrastructure trouble stays broken.
        if (out.status == "fail") out.status = step.on_failure;
      }
      // Killed by the end of a drain's grace period, or a hard stop: the
      // step did not get to finish; its result says nothing about the code.
      const bool killed = out.status != "pass" && !killed_before && cancel_->killed_running();
      if (killed) {
        out = hosts::StepOutcome::broken("interrupted by shutdown");
        cut_short = true;
      }
      // ABI records: kept from a step that ran to its end (passed or
      // failed); one the harness got wrong makes the step broken.
      if (out.status == "pass" || out.status == "fail") {
        auto records = collect_records(records_in, records_dir(cfg_, id_, job, attempt), id_, job, stepno);
        if (!records) {
          out = hosts::StepOutcome::broken("ABI records: " + records.error().to_string());
        } else {
          for (const auto& r : *records) {
            check(st_.put_artifact(r));
            hosts::append_log(log, "pushgate: ABI record " + r.key + " " + r.digest);
          }
        }
      }
      std::filesystem::remove_all(records_in, ec);
      if (!out.message.empty()) hosts::append_log(log, "pushgate: " + out.message);
      check(st_.put_step({id_, job, stepno, step.testid, out.status, started, store::now(), log}));
      double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1fs", secs);
      say("flight " + id_.str() + " " + job + " step " + std::to_string(stepno) + " " + step.testid + ": " +
          out.status + " (" + buf + (out.message.empty() ? "" : ", " + out.message) + ")");
      read_outputs(job, outputs);
      std::string why = "step " + std::to_string(stepno) + " " + step.testid + ": " + out.message;
      if (out.status == "broken" && !any_broken) {
        any_broken = true;
        broken_reason = why;
      }
      if (out.status != "pass" && job_status == "pass" && !(step.non_fatal && out.status == "fail")) {
        job_status = out.status;
        job_reason = why;
      }
    }
    if (any_broken) {
      job_status = "broken";
      job_reason = broken_reason;
    }
    if (cut_short) {
      // Back to the queue: this attempt's steps and outputs move to the
      // attempt tables; the hosts are given back with no result counted
      // against them.
      check(st_.requeue_job(id_, job, "cut short by shutdown; it runs again at the next start"));
      status_[job] = "queued";
      check(st_.release_hosts(id_, job));
      say("flight " + id_.str() + " " + job + ": re-queued (cut short by shutdown)");
      running_.erase(job);
      co_return;
    }
    // SPEC section 4 / issue 12 item 5: broken is pushgate's trouble, not
    // the code's; the job runs again (bounded, on another host when one
    // fits) before the verdict. Every attempt stays in the attempt tables.
    int retries = vars.count("broken_retries") ? std::atoi(vars["broken_retries"].c_str()) : 0;
    if (job_status == "broken" && retries < cfg_.daemon.retry_broken && !cancel_->draining()) {
      check(st_.set_runvar(id_, {job, "broken_retries", std::to_string(retries + 1), true}));
      check(st_.requeue_job(id_, job, "attempt " + std::to_string(attempt) + " broken (" + job_reason + "); run again (" +
                                          std::to_string(retries + 1) + " of " + std::to_string(cfg_.daemon.retry_broken) +
                                          ")"));
      check(st_.release_hosts(id_, job));
      for (const auto& [role, host] : alloc) {
        avoid_[job].insert(host);
        auto q = st_.record_host_result(host, job_status, cfg_.daemon.quarantine_after);
        if (q && *q) say("host " + host + " quarantined: it broke " + std::to_string(cfg_.daemon.quarantine_after) +
                         " consecutive jobs; `pushgate host enable " + host + "` after repair");
      }
      status_[job] = "queued";
      say("flight " + id_.str() + " " + job + ": broken (" + job_reason + "), run again");
      running_.erase(job);
      co_return;
    }
    if (job_status == "pass" && cj->kind == "build") check(st_.set_runvar(id_, {job, "build_dir", workdir, true}));
    // The job's status first: a crash before its hosts are given back leaves
    // a finished job (restart recovery frees the hosts), never a "running"
    // one that would be run again.
    set_status(job, job_status, job_reason);
    check(st_.release_hosts(id_, job));
    for (const auto& [role, host] : alloc) {
      auto q = st_.record_host_result(host, job_status, cfg_.daemon.quarantine_after);
      if (q && *q) say("host " + host + " quarantined: it broke " + std::to_string(cfg_.daemon.quarantine_after) +
                       " consecutive jobs; `pushgate host enable " + host + "` after repair");
    }
    running_.erase(job);
  }

  /// Lines "name=value" a step wrote to $PUSHGATE_OUTPUTS become output runvars.
  void read_outputs(const std::string& job, const std::string& path) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq == std::string::npos || eq == 0) continue;
      check(st_.set_runvar(id_, {job, line.substr(0, eq), line.substr(eq + 1), true}));
    }
  }

  const config::Config& cfg_;
  store::Store& st_;
  hosts::Registry& reg_;
  FlightId id_;
  RunOptions opt_;
  hosts::Cancellation own_cancel_;
  hosts::Containment containment_{cfg_.daemon.state_dir};
  hosts::Cancellation* cancel_;
  asio::io_context io_;
  asio::thread_pool pool_{2};
  std::string branch_;
  int priority_ = 0;
  std::map<std::string, std::string> status_;  // job -> status, on the io_context thread only
  std::set<std::string> running_;
  std::map<std::string, std::set<std::string>> avoid_;  // job -> hosts a broken attempt ran on
  std::map<std::string, std::int64_t> remaining_;  // job -> expected seconds to the flight's end
  Status error_;
};

}  // namespace

Result<std::vector<store::Job>> run(const config::Config& config, store::Store& store, hosts::Registry& hosts,
                                    FlightId flight, const RunOptions& options) {
  Runner r(config, store, hosts, flight, options);
  return r.run();
}

}  // namespace pushgate::flight
