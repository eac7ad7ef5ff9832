// pushgate bisect list|show|start|run|cancel (SPEC section 7).

#include <fstream>
#include <iomanip>
#include <iostream>

#include <pushgate/bisect.hpp>
#include <pushgate/flight.hpp>

#include <pushgate/push.hpp>
#include <pushgate/verdict.hpp>

#include "context.hpp"

namespace pushgate::cli {

namespace {

struct BisectArgs {
  std::int64_t id = 0;
  std::string branch, job, testid, status;
  std::int64_t flight = 0, basis = 0;
  bool equiv_hosts = false;
  bool json = false;
  bool dot = false;
  std::string svg;
  int limit = 20;
  int parallel = 0;
};

std::int64_t find_failure(Context& ctx, const BisectArgs& a) {
  // The newest finished real flight of BRANCH where JOB TESTID failed.
  auto flights = must(ctx.store().list_flights({.branch = a.branch, .blessings = {"real"}, .limit = 200}));
  for (const auto& f : flights) {
    if (!f.finished) continue;
    if (verdict::is_abi_item(a.testid)) {  // issue 18: the verdict says where a record changed
      auto gate = must(push::stored_gate(ctx.config(), ctx.store(), f.id));
      if (!gate) continue;
      for (const auto& r : gate->verdict.abi) {
        if (r.job == a.job && r.key == verdict::abi_key(a.testid) && r.state == "changed") return f.id.value;
      }
      continue;
    }
    auto steps = must(ctx.store().list_steps(f.id));
    for (const auto& s : steps) {
      if (s.job == a.job && s.testid == a.testid && s.status == "fail") return f.id.value;
    }
  }
  fail(Status::invalid_argument("no recent real flight of " + a.branch + " failed " + a.job + " " + a.testid,
                                "give the failing flight with --flight N"),
       kUsage);
}

void print(const bisect::Bisection& b, bool json) {
  if (json) {
    print_json(bisect::to_json(b));
  } else {
    std::cout << bisect::report(b);
  }
}

int exit_for(const bisect::Bisection& b) {
  if (b.interrupted) return kInterrupted;
  if (b.status == bisect::State::complete) return kOk;
  return kNotTolerable;
}

}  // namespace

void add_bisect_commands(CLI::App& app, Context& ctx) {
  static BisectArgs a;
  auto* bi = app.add_subcommand("bisect", "Bisections: which commit made a regression (docs/bisection.md)");
  bi->require_subcommand(1);

  auto* list = bi->add_subcommand("list", "Bisections, newest first");
  list->add_option("--branch", a.branch, "only this branch");
  list->add_option("--status", a.status, "only this status (running, complete, inconclusive, inconsistent, "
                                         "unreproducible, doubtful, cancelled)");
  list->add_option("--limit", a.limit, "at most this many")->check(CLI::PositiveNumber);
  list->add_flag("--json", a.json, "machine-readable output (schemas/api/bisections.schema.json)");
  list->callback([&ctx] {
    const config::Config& cfg = ctx.config();
    if (!a.status.empty()) must(bisect::parse_state(a.status), kUsage);
    if (!a.branch.empty()) branch_of(ctx, a.branch);
    auto rows = must(ctx.store().list_bisections({a.status, a.branch, a.limit}));
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : rows) {
      auto b = must(bisect::load(cfg, ctx.store(), r.id));
      if (a.json) {
        auto full = bisect::to_json(b);
        full.erase("nodes");
        j.push_back(full);
        continue;
      }
      std::string what;
      for (const auto& t : b.targets) what += (what.empty() ? "" : ", ") + t.job + " " + t.testid;
      std::cout << std::setw(5) << b.id << "  " << std::left << std::setw(16) << b.branch << " flight "
                << std::setw(6) << b.flight.str() << " " << std::setw(14) << bisect::to_string(b.status) << std::right
                << " " << what;
      if (b.culprit) std::cout << "  first bad " << b.culprit->tree << " " << b.culprit->id.substr(0, 12);
      std::cout << "  (" << b.flights.size() << " flights, " << age(b.created) << ")\n";
    }
    if (a.json) print_json(j);
  });

  auto* show = bi->add_subcommand("show", "One bisection: its status, the first bad commit, flights and nodes");
  show->add_option("id", a.id, "bisection id")->required();
  show->add_flag("--json", a.json, "machine-readable output (schemas/api/bisection.schema.json)");
  show->add_flag("--dot", a.dot, "print the revision graph in Graphviz dot language");
  show->add_option("--svg", a.svg, "write the revision graph as SVG to this file (needs graphviz)");
  show->callback([&ctx] {
    auto b = must(bisect::load(ctx.config(), ctx.store(), a.id), kUsage);
    if (!a.svg.empty()) {
      std::string svg = must(bisect::to_svg(b));
      std::ofstream out(a.svg);
      out << svg;
      if (!out) fail(Status::unavailable("cannot write " + a.svg));
    }
    if (a.dot) {
      std::cout << bisect::to_dot(b);
      return;
    }
    print(b, a.json);
  });

  auto* start = bi->add_subcommand(
      "start", "Start bisecting step TESTID of JOB on BRANCH: the failing flight (default: the newest real flight\n"
               "where it failed) against its baseline (default: the flight the verdict compared it with).\n"
               "Prints the new bisection's id; `pushgate bisect run ID` or the daemon advances it.");
  start->add_option("branch", a.branch, "branch name")->required();
  start->add_option("job", a.job, "job name")->required();
  start->add_option("testid", a.testid, "step testid")->required();
  start->add_option("--flight", a.flight, "the failing flight");
  start->add_option("--basis", a.basis, "the last pass to bisect against");
  start->add_flag("--equiv-hosts", a.equiv_hosts, "probes may run on any host with the job's flags");
  start->add_flag("--json", a.json, "print {\"id\": N}");
  start->callback([&ctx] {
    const config::Config& cfg = ctx.config();
    branch_of(ctx, a.branch);
    job_of(ctx, a.job);
    FlightId flight{a.flight ? a.flight : find_failure(ctx, a)};
    auto fl = must(ctx.store().get_flight(flight), kUsage);
    if (fl.branch != a.branch) fail(Status::invalid_argument("flight " + flight.str() + " is of branch " + fl.branch), kUsage);
    bisect::StartOptions o;
    o.who = ctx.who;
    o.same_hosts = !a.equiv_hosts && cfg.daemon.bisect_same_hosts;
    if (a.basis) o.basis = FlightId{a.basis};
    auto id = bisect::start(cfg, ctx.store(), flight, {{a.job, a.testid}}, o);
    if (!id) fail(id.error(), code_of(id.error()));
    if (a.json) {
      print_json({{"id", *id}});
    } else {
      std::cout << "bisection " << *id << ": " << a.job << " " << a.testid << " of flight " << flight.str()
                << "; `pushgate bisect run " << *id << "` runs it\n";
    }
  });

  auto* run = bi->add_subcommand("run", "Advance bisection ID in the foreground until it ends (Ctrl-C stops; run\n"
                                        "again to resume). Exit 0 complete, 3 ended without a culprit, 4 stopped.");
  run->add_option("id", a.id, "bisection id")->required();
  run->add_flag("--json", a.json, "print the bisection as JSON at the end");
  run->add_option("--parallel", a.parallel, "probe flights at once on equivalent hosts (default: daemon.bisect_parallel)")
      ->check(CLI::Range(1, 16));
  run->callback([&ctx] {
    const config::Config& cfg = ctx.config();
    must(ctx.store().get_bisection(a.id), kUsage);
    sync_hosts(ctx);
    auto reg = must(hosts::Registry::create(cfg));
    revisions::Mirrors mirrors(cfg);
    bisect::AdvanceOptions o;
    o.handle_signals = true;
    o.parallel = a.parallel ? a.parallel : cfg.daemon.bisect_parallel;
    o.progress = [](const std::string& line) { std::cerr << line << "\n"; };
    auto b = must(bisect::run(cfg, ctx.store(), mirrors, *reg, a.id, o));
    if (bisect::finished(b.status)) notify_once(ctx, "bisection", a.id);
    print(b, a.json);
    if (int code = exit_for(b); code != kOk) throw ExitError{code};
  });

  auto* cancel = bi->add_subcommand("cancel", "Stop bisection ID (its results are kept)");
  cancel->add_option("id", a.id, "bisection id")->required();
  cancel->callback([&ctx] {
    auto r = bisect::cancel(ctx.store(), a.id, ctx.who);
    if (!r) fail(r.error(), code_of(r.error()));
    std::cout << "bisection " << a.id << " cancelled\n";
  });
}

}  // namespace pushgate::cli
