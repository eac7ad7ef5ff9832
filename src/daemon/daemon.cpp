// The daemon: one io_context for triggers and signals; every flight runs on
// its own thread with its own SQLite connection (WAL lets them write side by
// side) and reports back to the loop when done.

#include <pushgate/bisect.hpp>
#include <pushgate/api.hpp>
#include <pushgate/daemon.hpp>
#include <pushgate/flight.hpp>
#include <pushgate/notify.hpp>
#include <pushgate/push.hpp>
#include <pushgate/revisions.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <systemd/sd-daemon.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <memory>
#include <set>
#include <thread>

namespace pushgate::daemon {
namespace {

namespace asio = boost::asio;

/// An exclusive lock next to the database: one daemon per database.
class InstanceLock {
 public:
  ~InstanceLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status acquire(const std::string& database) {
    std::string path = database + ".daemon-lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return Status::unavailable("cannot open lock file " + path);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char buf[32] = {};
      ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "?";
      return Status::conflict("another pushgate daemon (pid " + pid + ") is using " + database,
                              "stop it first, or give this one another database");
    }
    std::string me = std::to_string(::getpid());
    (void)::ftruncate(fd_, 0);
    (void)::pwrite(fd_, me.data(), me.size(), 0);
    return {};
  }

 private:
  int fd_ = -1;
};

/// Why a flight thread starts: store::Flight::trigger_kind/detail for a new
/// flight; always: run even when the branch is up to date (a manual request).
struct Trigger {
  bool always = false;
  std::string kind, detail;
};

struct Running {
  std::thread thread;
  std::unique_ptr<hosts::Cancellation> cancel;
  std::atomic<bool> done{false};
};

class Daemon {
 public:
  Daemon(const config::Config& cfg, std::string database, const Options& opt)
      : cfg_(cfg), database_(std::move(database)), opt_(opt) {}

  Result<void> run() {
    if (auto bad = startup_checks(cfg_); !bad.empty()) {
      std::string msg = bad[0].to_string();
      for (std::size_t i = 1; i < bad.size(); ++i) msg += "\n" + bad[i].to_string();
      return Status::invalid_argument(msg, "`pushgate config check` lists the same problems");
    }
    if (Status s = lock_.acquire(database_); !s.ok()) return s;
    // Installed first: a SIGTERM during start-up (recovery can take a while)
    // is queued and drains the daemon once the loop runs, instead of killing it.
    asio::signal_set signals(io_, SIGINT, SIGTERM);
    auto st = open_store();
    if (!st) return st.error();
    store_ = std::move(*st);
    std::vector<store::Host> hs;
    for (const auto& h : cfg_.hosts) hs.push_back({h.name, h.kind, "enabled", "", 0, {}, "", h.flags});
    if (auto r = store_->sync_hosts(hs); !r) return r.error();
    if (Status s = recover(); !s.ok()) return s;
    for (const auto& b : cfg_.branches) {
      if (!b.cron.empty()) {
        auto c = CronExpr::parse(b.cron, cfg_.daemon.time_zone);
        if (!c) return c.error().with_context("branch " + b.name);
        cron_[b.name] = *c;
        next_cron_[b.name] = c->next_after(store::now()).value_or(INT64_MAX);
      }
    }
    if (!opt_.once) {
      auto token = api::load_token(cfg_);
      if (!token) return token.error();
      api::Context ctx;
      ctx.config = &cfg_;
      ctx.token = *token;
      ctx.read_requires_token = cfg_.daemon.read_requires_token;
      // Runs on an API worker: the request goes to the loop, which owns manual_.
      ctx.trigger = [this](const std::string& branch) {
        if (draining_) return Status::unavailable("the daemon is shutting down");
        asio::post(io_, [this, branch] { manual_.insert(branch); });
        return Status();
      };
      ctx.poll = [this](const std::string& branch, const std::string& why) {
        if (draining_) return Status::unavailable("the daemon is shutting down");
        asio::post(io_, [this, branch, why] { poll_now_[branch] = why; });
        return Status();
      };
      api::Limits limits;
      limits.workers = cfg_.daemon.api_workers;
      limits.max_connections = cfg_.daemon.api_max_connections;
      // API requests wait for a busy database a short while, then answer 503.
      auto server = api::Server::start(io_, cfg_.daemon.listen, ctx, [this] { return open_store(cfg_.daemon.api_busy_timeout_seconds * 1000); }, limits);
      if (!server) return server.error();
      server_ = std::move(*server);
      say("listening on http://" + cfg_.daemon.listen.substr(0, cfg_.daemon.listen.rfind(':')) + ":" +
          std::to_string(server_->port()) + "/ (API under /api/v1/, metrics at /metrics)");
    }
    wait_signal(signals);
    asio::co_spawn(io_, loop(signals), asio::detached);
    // systemd (Type=notify): ready once recovery is done and the API
    // listens; the loop pings the watchdog (no-ops outside systemd).
    if (!opt_.once) {
      std::uint64_t usec = 0;
      if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) watchdog_every_ = std::chrono::microseconds(usec / 2);
      sd_notifyf(0, "READY=1\nSTATUS=%zu branches, %zu hosts", cfg_.branches.size(), cfg_.hosts.size());
      asio::co_spawn(io_, watchdog(), asio::detached);
    }
    io_.run();
    server_.reset();  // waits for API handlers still running on its workers
    for (auto& [b, r] : running_) {
      if (r->thread.joinable()) r->thread.join();
    }
    // --once: what the cycle's flights queued gets its one try before exit
    // (failures stay queued for the service's retries).
    if (opt_.once && !draining_) deliver_notifications(*store_, nullptr);
    say("stopped");
    return {};
  }

 private:
  Result<std::unique_ptr<store::Store>> open_store(int busy_ms = store::StoreOptions{}.busy_timeout_ms) {
    if (opt_.open_store) return opt_.open_store(database_);
    store::StoreOptions o;
    o.path = database_;
    o.busy_timeout_ms = busy_ms;
    return store::Store::open(o);
  }

  void say(const std::string& line) {
    if (opt_.log) opt_.log(line);
  }

  /// SPEC section 9: interrupted steps broken, their jobs re-queued once,
  /// hosts of dead jobs released, pending pushes reconciled; unfinished
  /// flights are resumed by the loop.
  Status recover() {
    auto rec = store_->recover_after_restart(
        "daemon restart", [this](FlightId f) { return flight::RunLock::held(cfg_, f); });
    if (!rec) return rec.error();
    for (FlightId f : rec->in_use) say("flight " + f.str() + ": left alone, another process is running it");
    // Step processes a killed pushgate left running (their cgroup or tag
    // names the flight); those of flights a live process runs stay.
    hosts::Containment containment(cfg_.daemon.state_dir);
    if (int n = containment.kill_flights_except([this](FlightId f) { return flight::RunLock::held(cfg_, f); }); n > 0) {
      say("killed " + std::to_string(n) + " leftover step process(es) of interrupted flights");
    }
    for (const auto& s : rec->interrupted_steps) {
      hosts::append_log(s.log_path, "pushgate: broken (daemon restart)");
      say("flight " + s.flight.str() + " " + s.job + " step " + std::to_string(s.stepno) + " " + s.testid +
          ": broken (daemon restart)");
    }
    for (const auto& j : rec->requeued) say("flight " + j.first.str() + " " + j.second + ": re-queued after restart");
    for (const auto& j : rec->given_up) say("flight " + j.first.str() + " " + j.second + ": broken, interrupted twice");
    // Ref locks a killed push left at local targets (issue 19).
    for (const auto& b : cfg_.branches) {
      git::PushOptions po;
      po.stale_lock_seconds = cfg_.daemon.stale_ref_lock_seconds;
      po.warn = [this](const std::string& w) { say("warning: " + w); };
      if (Status s = git::clear_stale_ref_lock(cfg_.push_url(b), b.tested, po); !s.ok()) say("branch " + b.name + ": " + s.message());
    }
    revisions::Mirrors mirrors(cfg_);
    auto done = push::reconcile(cfg_, *store_, mirrors, [this](const std::string& l) { say(l); },
                                [this](const store::Store::Push& p) {
                                  return p.flight && flight::RunLock::held(cfg_, *p.flight);
                                });
    if (!done) return done.error();
    // Frozen-ref changes whose changer died between intent and outcome.
    if (auto fz = revisions::reconcile_frozen(cfg_, mirrors, *store_, [this](const std::string& l) { say(l); }); !fz) {
      say("warning: reconciling frozen-ref changes: " + fz.error().message());
    }
    const std::set<std::int64_t> probes = probes_of_running_bisections();
    for (FlightId f : rec->unfinished) {
      auto fl = store_->get_flight(f);
      if (!fl) return fl.error();
      if (!cfg_.find_branch(fl->branch)) {
        say("flight " + f.str() + " of " + fl->branch + ": not resumed, the branch is no longer configured");
        continue;
      }
      if (fl->blessing == "real-bisect" && probes.count(f.value)) continue;  // its bisection resumes it
      resume_.emplace_back(f, fl->branch);
    }
    return {};
  }

  /// The probe flights of every running bisection (their bisection resumes them).
  std::set<std::int64_t> probes_of_running_bisections() {
    std::set<std::int64_t> out;
    auto rows = store_->list_bisections({"running", "", 1000});
    if (!rows) return out;
    for (const auto& r : *rows) {
      auto probes = store_->bisection_probes(r.id);
      if (!probes) continue;
      for (const auto& p : *probes) out.insert(p.flight.value);
    }
    return out;
  }

  /// SPEC section 9: the first SIGTERM/SIGINT drains (no new flight, job
  /// or step; running steps get the grace period, then are killed; cleanup
  /// steps run; jobs cut short are re-queued for the next start); a second
  /// one stops at once (still nothing judged).
  void wait_signal(asio::signal_set& signals) {
    signals.async_wait([this, &signals](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (!draining_) {
        say("signal " + std::to_string(sig) + ": draining (no new flights, jobs or steps; running steps get " +
            std::to_string(opt_.drain_seconds) + "s; again to stop at once)");
        draining_ = true;
        sd_notify(0, "STOPPING=1\nSTATUS=draining");
        drain_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(opt_.drain_seconds);
        for (auto& [b, r] : running_) r->cancel->drain();
      } else {
        say("signal " + std::to_string(sig) + ": stopping at once");
        for (auto& [b, r] : running_) r->cancel->cancel();
      }
      wait_signal(signals);
    });
  }

  static constexpr int kResumeAfterErrorSeconds = 10;

  /// From a flight thread: resume this flight after a pause (its branch
  /// gets no new flight meanwhile).
  void retry_later(FlightId id, const std::string& branch) {
    std::lock_guard lock(retry_mutex_);
    retry_.push_back({id, branch, std::chrono::steady_clock::now() + std::chrono::seconds(kResumeAfterErrorSeconds)});
  }

  bool pending_resume(const std::string& branch) const {
    {
      std::lock_guard lock(retry_mutex_);
      for (const auto& r : retry_) {
        if (r.branch == branch) return true;
      }
    }
    for (const auto& r : resume_) {
      if (r.second == branch) return true;
    }
    return false;
  }

  bool busy(const std::string& branch) {
    auto it = running_.find(branch);
    return it != running_.end() && !it->second->done;
  }

  /// Should `branch` get a flight now, and why (cron or poll)? Nothing
  /// blocking happens here: a due poll starts a flight thread, which
  /// fetches, resolves and stops quietly when the branch is up to date.
  std::optional<Trigger> due(const config::Branch& b, std::int64_t now) {
    bool cron_due = false;
    if (auto it = cron_.find(b.name); it != cron_.end()) {
      if (opt_.once) {
        // Fired since this branch's last flight?
        auto flights = store_->list_flights({.branch = b.name, .limit = 1});
        std::int64_t since = flights && !flights->empty() ? flights->front().created : now - 86400;
        auto next = it->second.next_after(since);
        cron_due = next && *next <= now;
      } else if (now >= next_cron_[b.name]) {
        cron_due = true;
        next_cron_[b.name] = it->second.next_after(now).value_or(INT64_MAX);
      }
    }
    bool poll_due = false;
    if (b.poll_seconds > 0) {
      int interval = std::max(b.poll_seconds, opt_.poll_floor_seconds);
      if (opt_.once || now >= next_poll_[b.name]) {
        next_poll_[b.name] = now + interval;
        poll_due = true;  // the flight thread fetches, resolves and skips when up to date
      }
    }
    if (cron_due) return Trigger{false, "cron", b.cron};
    if (poll_due) return Trigger{false, "poll", "every " + std::to_string(std::max(b.poll_seconds, opt_.poll_floor_seconds)) + "s"};
    return std::nullopt;
  }

  void start(const std::string& branch, std::optional<FlightId> existing, Trigger why) {
    auto r = std::make_unique<Running>();
    r->cancel = std::make_unique<hosts::Cancellation>();
    Running* raw = r.get();
    r->thread = std::thread([this, raw, branch, existing, why] {
      flight_thread(branch, existing, why, *raw->cancel);
      raw->done = true;
      asio::post(io_, [] {});  // wake the loop
    });
    if (auto old = running_.find(branch); old != running_.end() && old->second->thread.joinable()) {
      old->second->thread.join();
    }
    running_[branch] = std::move(r);
  }

  /// SPEC section 6: pending intents whose owner is gone (a remote that did
  /// not answer at start-up, an outcome that was unknown) are finished by
  /// reconciliation, periodically, on a thread of its own (libgit2 blocks).
  void start_reconcile() {
    static const std::string kKey = "(reconcile)";  // not a branch name: names have no parentheses
    if (busy(kKey)) return;
    auto r = std::make_unique<Running>();
    r->cancel = std::make_unique<hosts::Cancellation>();
    Running* raw = r.get();
    r->thread = std::thread([this, raw] {
      if (auto st = open_store()) {
        if (auto pending = (*st)->pending_pushes(); pending && !pending->empty()) {
          revisions::Mirrors mirrors(cfg_);
          auto done = push::reconcile(cfg_, **st, mirrors, [this](const std::string& l) { say(l); },
                                      [this](const store::Store::Push& p) {
                                        return p.flight && flight::RunLock::held(cfg_, *p.flight);
                                      });
          if (!done) say("warning: reconciling pending pushes: " + done.error().message());
        }
        if (auto pending = (*st)->pending_frozen_changes(); pending && !pending->empty()) {
          revisions::Mirrors mirrors(cfg_);
          auto fz = revisions::reconcile_frozen(cfg_, mirrors, **st, [this](const std::string& l) { say(l); });
          if (!fz) say("warning: reconciling frozen-ref changes: " + fz.error().message());
        }
      }
      raw->done = true;
      asio::post(io_, [] {});
    });
    if (auto old = running_.find(kKey); old != running_.end() && old->second->thread.joinable()) old->second->thread.join();
    running_[kKey] = std::move(r);
  }

  /// Issue 15 item 5: queued notifications go out on a thread of their own
  /// (mail servers and webhooks block), one attempt each, failures retried
  /// with backoff; a receiver that is down never holds a flight.
  void start_notify() {
    static const std::string kKey = "(notify)";  // not a branch name: names have no parentheses
    if (busy(kKey)) return;
    auto due = store_->due_notifications(store::now(), 1);
    if (!due || due->empty()) return;
    auto r = std::make_unique<Running>();
    r->cancel = std::make_unique<hosts::Cancellation>();
    Running* raw = r.get();
    r->thread = std::thread([this, raw] {
      if (auto st = open_store()) deliver_notifications(**st, raw->cancel.get());
      raw->done = true;
      asio::post(io_, [] {});
    });
    if (auto old = running_.find(kKey); old != running_.end() && old->second->thread.joinable()) old->second->thread.join();
    running_[kKey] = std::move(r);
  }

  void deliver_notifications(store::Store& st, const hosts::Cancellation* cancel) {
    notify::DeliverOptions o;
    o.log = [this](const std::string& line, bool warning) { say((warning ? "warning: notification of " : "notification of ") + line); };
    if (cancel) o.stop = [cancel] { return cancel->draining() || cancel->cancelled(); };
    auto d = notify::deliver_due(cfg_, st, store::now(), o);
    if (!d) say("warning: notifications: " + d.error().message());
  }

  void flight_thread(const std::string& branch, std::optional<FlightId> existing, const Trigger& why,
                     hosts::Cancellation& cancel) {
    const bool always = why.always;
    auto st = open_store();
    if (!st) {
      say("branch " + branch + ": " + st.error().message());
      return;
    }
    store::Store& s = **st;
    revisions::Mirrors mirrors(cfg_);
    FlightId id;
    if (existing) {
      id = *existing;
      say("flight " + id.str() + " of " + branch + ": resuming");
    } else {
      // A push still pending (its outcome unknown) is finished first: a new
      // flight now would test and push the same thing again.
      if (auto pending = s.pending_pushes()) {
        for (const auto& p : *pending) {
          if (p.branch == branch) {
            say("branch " + branch + ": no new flight while push " + std::to_string(p.id) + " is pending reconciliation");
            return;
          }
        }
      }
      const config::Branch* b = cfg_.find_branch(branch);
      // One info line per poll: what each fetch brought and how long it
      // took, then what the poll decided (issue 16 item 4).
      const auto poll_start = std::chrono::steady_clock::now();
      auto secs = [](std::chrono::steady_clock::time_point since) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2fs",
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count());
        return std::string(buf);
      };
      std::string fetched;
      for (const auto& t : revisions::trees_of(cfg_, *b)) {
        const auto t0 = std::chrono::steady_clock::now();
        std::string result = "unchanged";
        auto f = mirrors.fetch(t, [&](const std::string& line) {
          // "fetched URL: 0 new, 1 updated, 0 deleted refs"
          if (line.starts_with("fetched ")) {
            if (auto colon = line.rfind(": "); colon != std::string::npos) result = line.substr(colon + 2);
          }
        });
        if (!f) {
          say("warning: branch " + branch + ": fetch failed (" + t + ", after " + secs(t0) +
              "), no flight this round: " + f.error().message());
          return;
        }
        fetched += (fetched.empty() ? "" : ", ") + t + " " + secs(t0) + " (" + result + ")";
      }
      auto res = revisions::resolve(cfg_, mirrors, &s, branch);
      if (!res) {
        say("warning: branch " + branch + ": polled in " + secs(poll_start) + ", fetched " + fetched + "; " +
            res.error().message());
        return;
      }
      const bool run = !res->up_to_date || always || b->always_run;
      say("branch " + branch + ": polled in " + secs(poll_start) + ", fetched " + fetched + "; " +
          (!run                   ? std::string("up to date, no flight")
           : res->baseline_flight ? std::string("tested ref never tested, baseline flight")
           : res->up_to_date      ? std::string("up to date, flight anyway (always_run)")
                                  : std::string("new revisions, flight")));
      if (!run) return;
      flight::CreateOptions how;
      how.trigger_kind = why.kind;
      how.trigger_detail = why.detail;
      if (res->baseline_flight) how.trigger_detail += (how.trigger_detail.empty() ? "" : "; ") + std::string("baseline flight");
      auto created = flight::create(cfg_, s, *res, how);
      if (!created) {
        say("branch " + branch + ": " + created.error().message());
        return;
      }
      id = *created;
      say("flight " + id.str() + " of " + branch + " created" + (res->baseline_flight ? " (baseline flight)" : ""));
    }
    auto lock = flight::RunLock::acquire(cfg_, id);
    if (!lock) {
      say("flight " + id.str() + ": " + lock.error().message());
      return;
    }
    auto reg = hosts::Registry::create(cfg_);
    if (!reg) return;
    flight::RunOptions ro;
    ro.cancel = &cancel;
    ro.progress = [this](const std::string& l) { say(l); };
    auto jobs = flight::run(cfg_, s, **reg, id, ro);
    if (!jobs) {
      // A store that failed (a database busy beyond the wait): nothing the
      // flight recorded is lost and its queued jobs stay queued; it resumes.
      say("warning: flight " + id.str() + ": " + jobs.error().message() + "; resuming it in " +
          std::to_string(kResumeAfterErrorSeconds) + "s");
      retry_later(id, branch);
      return;
    }
    if (cancel.draining()) {
      say("flight " + id.str() + ": drained, not judged; its queued jobs run at the next start");
      return;
    }
    push::Retester retest = [&](FlightId original, const std::vector<std::string>& regressed) {
      return flight::retest(cfg_, s, **reg, original, regressed, ro);
    };
    auto gate = push::finish_flight(cfg_, s, mirrors, id, "daemon", retest);
    if (!gate) {
      say("flight " + id.str() + ": " + gate.error().message());
      if (gate.error().code() == StatusCode::unavailable && !cancel.draining()) retry_later(id, branch);
      return;
    }
    say(gate->verdict.subject(gate->push && gate->push->pushed()) +
        (gate->push ? "" : " (" + gate->decision.reason + ")"));
    if (gate->push && (gate->push->state == "failed" || gate->push->state == "refused")) {
      auto streaks = s.consecutive_push_failures();
      int n = streaks && streaks->count(gate->flight.branch) ? streaks->at(gate->flight.branch) : 1;
      say("warning: push of " + gate->flight.branch + " " + gate->push->state + " (" + std::to_string(n) +
          " in a row): " + gate->push->message);
    }
    if (gate->push) {
      for (const auto& w : gate->push->warnings) say("warning: " + w);
    }
    // SPEC section 7: every regression that survived the retest is bisected.
    if (cfg_.daemon.bisect && gate->flight.blessing == "real" && gate->verdict.outcome == verdict::Outcome::regressions) {
      bisect::StartOptions bo;
      bo.who = "daemon";
      bo.same_hosts = cfg_.daemon.bisect_same_hosts;
      auto started = bisect::start_for_flight(cfg_, s, id, bo);
      if (!started) {
        say("warning: flight " + id.str() + ": no bisection: " + started.error().message());
      } else {
        for (auto b : *started) say("flight " + id.str() + ": bisection " + std::to_string(b) + " started");
      }
    }
  }

  /// SPEC section 7: running bisections advance one probe flight at a time,
  /// on a thread of their own; their jobs rank below every branch flight's.
  void start_bisections() {
    static const std::string kKey = "(bisect)";  // not a branch name: names have no parentheses
    if (busy(kKey)) return;
    auto running = store_->list_bisections({"running", "", 1});
    if (!running || running->empty()) return;
    auto r = std::make_unique<Running>();
    r->cancel = std::make_unique<hosts::Cancellation>();
    Running* raw = r.get();
    r->thread = std::thread([this, raw] {
      auto st = open_store();
      auto reg = hosts::Registry::create(cfg_);
      if (st && reg) {
        revisions::Mirrors mirrors(cfg_);
        auto rows = (*st)->list_bisections({"running", "", 100});
        for (const auto& row : rows ? *rows : std::vector<store::Store::BisectionRow>{}) {
          if (raw->cancel->draining()) break;
          bisect::AdvanceOptions o;
          o.cancel = raw->cancel.get();
          o.parallel = cfg_.daemon.bisect_parallel;
          o.progress = [this](const std::string& l) { say(l); };
          auto b = bisect::advance(cfg_, **st, mirrors, **reg, row.id, o);
          if (!b) say("warning: bisection " + std::to_string(row.id) + ": " + b.error().message());
        }
      }
      raw->done = true;
      asio::post(io_, [] {});
    });
    if (auto old = running_.find(kKey); old != running_.end() && old->second->thread.joinable()) old->second->thread.join();
    running_[kKey] = std::move(r);
  }

  /// WATCHDOG=1 every half of systemd's WatchdogSec, from the event loop
  /// itself: a loop that hangs stops the pings and systemd restarts it.
  asio::awaitable<void> watchdog() {
    if (watchdog_every_.count() == 0) co_return;
    asio::steady_timer t(io_);
    for (;;) {
      sd_notify(0, "WATCHDOG=1");
      t.expires_after(watchdog_every_);
      co_await t.async_wait(asio::use_awaitable);
    }
  }

  asio::awaitable<void> loop(asio::signal_set& signals) {
    asio::steady_timer tick(io_);
    for (;;) {
      std::int64_t now = store::now();
      if (!draining_) {
        {
          std::lock_guard lock(retry_mutex_);
          for (auto it = retry_.begin(); it != retry_.end();) {
            if (std::chrono::steady_clock::now() < it->at) {
              ++it;
              continue;
            }
            resume_.emplace_back(it->flight, it->branch);
            it = retry_.erase(it);
          }
        }
        // Unfinished flights first, oldest first, one per branch at a time.
        for (auto it = resume_.begin(); it != resume_.end();) {
          if (busy(it->second)) {
            ++it;
            continue;
          }
          start(it->second, it->first, Trigger{});
          it = resume_.erase(it);
        }
        for (const auto& b : cfg_.branches) {
          if (busy(b.name) || pending_resume(b.name)) continue;
          // --once: each due trigger once; a branch whose flight ended is done.
          if (opt_.once && running_.count(b.name)) continue;
          // A webhook: poll now (still skipped when up to date).
          std::optional<Trigger> hooked;
          if (auto h = poll_now_.find(b.name); h != poll_now_.end()) {
            hooked = Trigger{false, "webhook", h->second};
            poll_now_.erase(h);
          }
          if (manual_.erase(b.name)) start(b.name, std::nullopt, Trigger{true, "manual", "over the API"});
          else if (auto d = due(b, now)) start(b.name, std::nullopt, hooked ? *hooked : *d);
          else if (hooked) start(b.name, std::nullopt, *hooked);
        }
      } else {
        const bool late = std::chrono::steady_clock::now() > drain_deadline_;
        for (auto& [b, r] : running_) {
          if (late) r->cancel->cut();
          else r->cancel->drain();
        }
      }
      // --once records bisections and leaves them to `pushgate bisect run` or the service.
      if (!draining_ && !opt_.once && cfg_.daemon.bisect) start_bisections();
      if (!draining_ && !opt_.once && std::chrono::steady_clock::now() >= next_reconcile_) {
        next_reconcile_ = std::chrono::steady_clock::now() + std::chrono::seconds(cfg_.daemon.reconcile_seconds);
        start_reconcile();
      }
      if (!draining_ && std::chrono::steady_clock::now() >= next_notify_) {
        next_notify_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        start_notify();
      }
      bool any_running = false;
      for (auto& [b, r] : running_) any_running = any_running || !r->done;
      bool retries = false;
      {
        std::lock_guard lock(retry_mutex_);
        retries = !retry_.empty();
      }
      if (!any_running && (draining_ || (opt_.once && resume_.empty() && !retries))) break;
      tick.expires_after(std::chrono::milliseconds(250));
      co_await tick.async_wait(asio::use_awaitable);
    }
    signals.cancel();
    io_.stop();  // also ends the HTTP listener and its connections
  }

  const config::Config& cfg_;
  std::string database_;
  Options opt_;
  InstanceLock lock_;
  std::unique_ptr<store::Store> store_;  // the loop's own connection
  asio::io_context io_;
  std::unique_ptr<api::Server> server_;  // after io_: destroyed first
  std::map<std::string, std::unique_ptr<Running>> running_;  // by branch; loop thread only
  std::map<std::string, CronExpr> cron_;
  std::map<std::string, std::int64_t> next_cron_, next_poll_;
  std::vector<std::pair<FlightId, std::string>> resume_;  // unfinished flights and their branches, oldest first
  std::set<std::string> manual_;    // branches with a manual request pending (loop thread only)
  std::map<std::string, std::string> poll_now_;  // branches a webhook asked to poll, and why (loop thread only)
  std::atomic<bool> draining_{false};  // read by API workers
  std::chrono::microseconds watchdog_every_{0};  // half of systemd's WatchdogSec; 0: no watchdog
  struct Retry {
    FlightId flight;
    std::string branch;
    std::chrono::steady_clock::time_point at;
  };
  mutable std::mutex retry_mutex_;
  std::vector<Retry> retry_;  // GUARDED_BY(retry_mutex_): flights to resume after a store error
  std::chrono::steady_clock::time_point drain_deadline_;
  std::chrono::steady_clock::time_point next_notify_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point next_reconcile_ =
      std::chrono::steady_clock::now();  // start-up recovery reconciles first; this is the next round
};

}  // namespace

std::vector<config::Diagnostic> startup_checks(const config::Config& cfg) {
  std::vector<config::Diagnostic> out;
  auto error = [&](const std::string& ptr, const std::string& msg) { out.push_back({cfg.path, ptr, 0, 0, msg, false}); };
  for (std::size_t i = 0; i < cfg.branches.size(); ++i) {
    const auto& b = cfg.branches[i];
    if (b.cron.empty()) continue;
    if (auto c = CronExpr::parse(b.cron); !c) {
      error("/branches/" + std::to_string(i) + "/schedule/cron", c.error().message());
    }
  }
  if (Status z = check_time_zone(cfg.daemon.time_zone); !z.ok()) error("/daemon/time_zone", z.message());
  if (!cfg.notify.smtp_password_file.empty() && ::access(cfg.notify.smtp_password_file.c_str(), R_OK) != 0) {
    error("/notify/smtp_password_file", "cannot read the SMTP password file " + cfg.notify.smtp_password_file);
  }
  if (auto t = config::api_token(cfg); !t) {
    error(cfg.daemon.api_token_env.empty() ? "/daemon/api_token_file" : "/daemon/api_token_env", t.error().message());
  }
  return out;
}

Result<void> run(const config::Config& config, const std::string& database, const Options& options) {
  Daemon d(config, database, options);
  return d.run();
}

}  // namespace pushgate::daemon
