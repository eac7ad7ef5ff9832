// `pushgate revisions BRANCH` and `pushgate frozen add|list|move|remove`.

#include <iomanip>
#include <iostream>
#include <set>

#include <pushgate/api.hpp>
#include <pushgate/revisions.hpp>

#include "context.hpp"

namespace pushgate::cli {
namespace {

struct RevisionsArgs {
  std::string branch;
  std::vector<std::string> revs;
  bool no_fetch = false;
  bool json = false;
};

struct FrozenArgs {
  std::string tree, branch, rev, reason;
  bool from_last_tolerable = false;
  bool force = false;
  bool no_fetch = false;
  bool history = false;
  bool json = false;
  int limit = 50;
};


void fetch(Context& ctx, revisions::Mirrors& mirrors, const std::vector<std::string>& trees) {
  for (const std::string& t : trees) {
    auto r = mirrors.fetch(t, [](const std::string& line) { std::cerr << "  " << line << "\n"; });
    if (!r) fail(r.error().with_context("fetch"), kFailure);
  }
  (void)ctx;
}

void show_revisions(Context& ctx, const RevisionsArgs& a) {
  const config::Config& cfg = ctx.config();
  const config::Branch* b = cfg.find_branch(a.branch);
  auto overrides = parse_overrides(a.revs);
  revisions::Mirrors mirrors(cfg);
  if (b && !a.no_fetch) fetch(ctx, mirrors, revisions::trees_of(cfg, *b));
  auto res = revisions::resolve(cfg, mirrors, &ctx.store(), a.branch, overrides);
  if (!res) fail(res.error(), code_of(res.error()));
  revisions::describe(*res, mirrors);
  if (a.json) {
    nlohmann::json j{{"branch", res->branch},
                     {"tested_revision", res->tested_revision},
                     {"up_to_date", res->up_to_date},
                     {"baseline_flight", res->baseline_flight}};
    j["trees"] = nlohmann::json::array();
    for (const auto& t : res->trees) {
      j["trees"].push_back({{"tree", t.tree}, {"url", t.url}, {"revision", t.revision}, {"source", t.source},
                            {"ref", t.ref}, {"describe", t.describe}});
    }
    print_json(j);
    return;
  }
  std::cout << "branch " << res->branch << "\n";
  for (const auto& t : res->trees) {
    std::cout << "  " << std::left << std::setw(10) << t.tree << " " << t.revision.substr(0, 12) << "  "
              << std::setw(28) << t.source << " " << t.describe << "\n";
  }
  if (res->baseline_flight) {
    std::cout << "baseline flight: no flight has tested the tested ref yet; the next flight tests it and does not push\n";
  } else if (res->up_to_date) {
    std::cout << "up to date: the input ref equals the tested ref; nothing new to test\n";
  }
}

void frozen_change(Context& ctx, const FrozenArgs& a, revisions::FrozenAction action) {
  const config::Config& cfg = ctx.config();
  store::Store& st = ctx.store();
  revisions::Mirrors mirrors(cfg);
  if (action != revisions::FrozenAction::remove && a.rev.empty() == !a.from_last_tolerable) {
    fail(Status::invalid_argument("give exactly one of --rev REV or --from-last-tolerable"), kUsage);
  }
  if (!a.no_fetch && cfg.find_tree(a.tree)) fetch(ctx, mirrors, {a.tree});
  revisions::FrozenRequest req;
  req.action = action;
  req.tree = a.tree;
  req.branch = a.branch;
  req.revision = a.rev;
  req.from_last_tolerable = a.from_last_tolerable;
  req.force = a.force;
  req.who = ctx.who;
  req.reason = a.reason;
  auto r = revisions::change_frozen(cfg, mirrors, st, req);
  if (!r) fail(r.error(), code_of(r.error()));
  if (a.json) {
    print_json(api::frozen_change_json(*r));
    return;
  }
  std::cout << r->action << " " << r->ref << " in " << r->tree;
  if (!r->old_rev.empty()) std::cout << "\n  old: " << r->old_rev.substr(0, 12);
  if (!r->new_rev.empty()) std::cout << "\n  new: " << r->new_rev.substr(0, 12) << " (" << r->describe << ")";
  std::cout << "\n";
}

void frozen_list(Context& ctx, const FrozenArgs& a) {
  const config::Config& cfg = ctx.config();
  if (a.history) {
    auto h = must(ctx.store().frozen_history(a.tree, a.branch, a.limit));
    if (a.json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& c : h) j.push_back(api::frozen_change_json(c));
      print_json(j);
      return;
    }
    for (const auto& c : h) {
      std::cout << human_time(c.at) << " " << c.who << " " << c.action << " " << c.tree << " " << c.branch << " "
                << (c.old_rev.empty() ? "-" : c.old_rev.substr(0, 12)) << " -> "
                << (c.new_rev.empty() ? "-" : c.new_rev.substr(0, 12)) << " " << c.describe
                << (c.reason.empty() ? "" : " (" + c.reason + ")")
                << (c.state == "done" ? "" : " [" + c.state + (c.note.empty() ? "" : ": " + c.note) + "]") << "\n";
    }
    if (h.empty()) std::cout << "no frozen-ref changes recorded\n";
    return;
  }
  revisions::Mirrors mirrors(cfg);
  if (!a.no_fetch) {
    std::vector<std::string> all;
    for (const auto& t : cfg.trees) all.push_back(t.name);
    fetch(ctx, mirrors, all);
  }
  auto list = must(revisions::list_frozen(cfg, mirrors));
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& f : list) j.push_back(api::frozen_json(cfg, f));
    print_json(j);
    return;
  }
  for (const auto& f : list) {
    std::cout << std::left << std::setw(10) << f.tree << " " << std::setw(20) << f.branch << " "
              << f.revision.substr(0, 12) << "  " << f.describe
              << (cfg.find_branch(f.branch) ? "" : "  (no such branch configured)") << "\n";
  }
  if (list.empty()) std::cout << "no frozen refs\n";
}

}  // namespace

void add_revision_commands(CLI::App& app, Context& ctx) {
  static RevisionsArgs ra;
  auto* rev = app.add_subcommand("revisions", "Show which revision of every tree the next flight of BRANCH tests, and why");
  rev->add_option("branch", ra.branch, "branch name")->required();
  rev->add_option("--rev", ra.revs, "override a tree's revision: TREE=REV (repeatable)");
  rev->add_flag("--no-fetch", ra.no_fetch, "use the mirrors as they are");
  rev->add_flag("--json", ra.json, "machine-readable output");
  rev->callback([&ctx] { show_revisions(ctx, ra); });

  static FrozenArgs fa;
  auto* fz = app.add_subcommand("frozen", "Frozen refs: pin a dependency tree's revision for one branch");
  fz->require_subcommand(1);
  auto common = [](CLI::App* c, bool with_rev) {
    c->add_option("tree", fa.tree, "the dependency tree (e.g. libvirt)")->required();
    c->add_option("branch", fa.branch, "the consumer branch (e.g. xen-4.7-testing)")->required();
    if (with_rev) c->add_option("--rev", fa.rev, "revision to pin (branch, tag or commit of TREE)");
    c->add_option("--reason", fa.reason, "recorded in the audit log");
    c->add_flag("--no-fetch", fa.no_fetch, "do not fetch the tree first");
    c->add_flag("--json", fa.json, "machine-readable output");
  };
  auto* add = fz->add_subcommand("add", "Create the frozen ref of TREE for BRANCH");
  common(add, true);
  add->add_flag("--from-last-tolerable", fa.from_last_tolerable,
                "pin the revision of TREE used by BRANCH's newest tolerable flight");
  add->callback([&ctx] { frozen_change(ctx, fa, revisions::FrozenAction::add); });
  auto* move = fz->add_subcommand("move", "Move the frozen ref (fast-forward only unless --force)");
  common(move, true);
  move->add_flag("--from-last-tolerable", fa.from_last_tolerable,
                 "move to the revision of TREE used by BRANCH's newest tolerable flight");
  move->add_flag("--force", fa.force, "allow a move that is not a fast-forward");
  move->callback([&ctx] { frozen_change(ctx, fa, revisions::FrozenAction::move); });
  auto* rm = fz->add_subcommand("remove", "Delete the frozen ref; BRANCH then follows its configured source");
  common(rm, false);
  rm->callback([&ctx] { frozen_change(ctx, fa, revisions::FrozenAction::remove); });
  auto* list = fz->add_subcommand("list", "List frozen refs, or with --history every recorded change");
  list->add_flag("--history", fa.history, "show the audit log instead");
  list->add_option("--tree", fa.tree, "with --history: only this tree");
  list->add_option("--branch", fa.branch, "with --history: only this branch");
  list->add_option("--limit", fa.limit, "with --history: at most this many entries")->check(CLI::PositiveNumber);
  list->add_flag("--no-fetch", fa.no_fetch, "use the mirrors as they are");
  list->add_flag("--json", fa.json, "machine-readable output");
  list->callback([&ctx] { frozen_list(ctx, fa); });
}

}  // namespace pushgate::cli
