// `pushgate branch status|block|unblock|force`.

#include <iomanip>
#include <iostream>

#include <pushgate/api.hpp>
#include <pushgate/push.hpp>
#include <pushgate/revisions.hpp>

#include "context.hpp"

namespace pushgate::cli {
const config::Branch& branch_of(Context& ctx, const std::string& name) {
  const config::Config& cfg = ctx.config();
  if (const config::Branch* b = cfg.find_branch(name)) return *b;
  std::vector<std::string> names;
  for (const auto& b : cfg.branches) names.push_back(b.name);
  fail_unknown("branch", name, names, "see `pushgate branch status`");
}

const config::Job& job_of(Context& ctx, const std::string& name) {
  const config::Config& cfg = ctx.config();
  if (const config::Job* j = cfg.find_job(name)) return *j;
  std::vector<std::string> names;
  for (const auto& j : cfg.jobs) names.push_back(j.name);
  fail_unknown("job", name, names, "the jobs are in the configuration's \"jobs\"");
}

namespace {

struct BranchArgs {
  std::string branch, rev, reason;
  bool json = false;
  bool no_fetch = false;
};

void status(Context& ctx, const BranchArgs& a) {
  const config::Config& cfg = ctx.config();
  store::Store& st = ctx.store();
  revisions::Mirrors mirrors(cfg);
  nlohmann::json all = nlohmann::json::array();
  for (const auto& b : cfg.branches) {
    if (!a.branch.empty() && b.name != a.branch) continue;
    if (!a.no_fetch) (void)mirrors.fetch(b.tree);
    nlohmann::json j = api::branch_json(must(push::branch_status(cfg, st, mirrors, b)));
    all.push_back(j);
  }
  if (a.json) {
    print_json(a.branch.empty() ? all : all.at(0));
    return;
  }
  for (const auto& j : all) {
    std::cout << j["branch"].get<std::string>() << " (" << j["tree"].get<std::string>() << ")\n";
    if (j.contains("tested_revision")) {
      std::cout << "  tested:      " << j["tested_revision"].get<std::string>().substr(0, 12) << " "
                << j["tested_describe"].get<std::string>();
      if (j.contains("tested_commit_time")) std::cout << ", committed " << age(j["tested_commit_time"]);
      std::cout << "\n";
    } else {
      std::cout << "  tested:      (no tested ref yet)\n";
    }
    if (j.contains("last_flight")) {
      std::cout << "  last flight: " << j["last_flight"] << " "
                << (j["last_outcome"].get<std::string>().empty() ? "(unfinished)" : j["last_outcome"].get<std::string>())
                << ", " << age(j["last_flight_created"]) << "\n";
    }
    if (j["streak"]["flights"].get<int>() > 0) {
      std::cout << "  streak:      " << j["streak"]["flights"] << " " << j["streak"]["kind"].get<std::string>() << "\n";
    }
    if (!j["blocked"].is_null()) std::cout << "  BLOCKED:     " << j["blocked"].get<std::string>() << "\n";
    if (!j["push_enabled"].get<bool>()) std::cout << "  push disabled in the configuration\n";
    if (j.contains("last_push")) {
      std::cout << "  last push:   " << j["last_push"]["state"].get<std::string>() << " "
                << j["last_push"]["new"].get<std::string>().substr(0, 12) << ", " << age(j["last_push"]["at"]) << "\n";
    }
    if (j["push_failures"].get<int>() > 0) {
      std::cout << "  PUSH FAILING: " << j["push_failures"] << " failed or refused in a row: "
                << j["last_push"]["message"].get<std::string>() << "\n";
    }
  }
}

}  // namespace

void add_branch_commands(CLI::App& app, Context& ctx) {
  static BranchArgs ba;
  auto* br = app.add_subcommand("branch", "Branch status and operator controls (block, unblock, force)");
  br->require_subcommand(1);
  auto* st = br->add_subcommand("status", "Tested revision, age, last flight, streak, push state");
  st->add_option("branch", ba.branch, "only this branch");
  st->add_flag("--no-fetch", ba.no_fetch, "use the mirrors as they are");
  st->add_flag("--json", ba.json, "machine-readable output");
  st->callback([&ctx] {
    if (!ba.branch.empty()) branch_of(ctx, ba.branch);
    status(ctx, ba);
  });
  auto* block = br->add_subcommand("block", "Never push BRANCH until unblocked (audited)");
  block->add_option("branch", ba.branch, "branch")->required();
  block->add_option("--reason", ba.reason, "why (recorded)")->required();
  block->callback([&ctx] {
    branch_of(ctx, ba.branch);
    must(ctx.store().set_branch_blocked(ba.branch, true, ctx.who, ba.reason));
    std::cout << "branch " << ba.branch << " blocked: " << ba.reason << "\n";
  });
  auto* unblock = br->add_subcommand("unblock", "Allow pushes of BRANCH again (audited)");
  unblock->add_option("branch", ba.branch, "branch")->required();
  unblock->add_option("--reason", ba.reason, "why (recorded)");
  unblock->callback([&ctx] {
    branch_of(ctx, ba.branch);
    must(ctx.store().set_branch_blocked(ba.branch, false, ctx.who, ba.reason));
    std::cout << "branch " << ba.branch << " unblocked\n";
  });
  auto* force = br->add_subcommand("force", "Push REV to BRANCH's tested ref regardless of any verdict (fast-forward only, audited)");
  force->add_option("branch", ba.branch, "branch")->required();
  force->add_option("rev", ba.rev, "revision of the branch's tree")->required();
  force->add_option("--reason", ba.reason, "why (recorded)")->required();
  force->callback([&ctx] {
    const config::Branch& b = branch_of(ctx, ba.branch);
    const config::Config& cfg = ctx.config();
    revisions::Mirrors mirrors(cfg);
    must(mirrors.fetch(b.tree));
    git::Repository* repo = must(mirrors.repo(b.tree));
    auto to = repo->resolve(ba.rev);
    if (!to) fail(Status::invalid_argument("revision \"" + ba.rev + "\" not found in tree " + b.tree), kUsage);
    auto from = must(repo->ref_target(b.tested));
    if (!from) fail(Status::not_found("branch " + b.name + " has no tested ref " + b.tested + " yet"));
    auto r = must(push::push_branch(cfg, ctx.store(), mirrors, b.name, std::nullopt, *from, *to, ctx.who));
    must(ctx.store().record_branch_audit({0, b.name, "force", r.state + " " + *to, ctx.who, ba.reason, 0}));
    if (!r.pushed()) fail(Status::conflict("force push " + r.state + ": " + r.message));
    std::cout << r.message << "\n";
  });
}

}  // namespace pushgate::cli
