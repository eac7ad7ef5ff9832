// Frozen refs: pins of a dependency tree's revision for one consumer branch.
// They live in the tree's upstream (as osstest's frozen refs do) and are
// mirrored like every other ref; changes go upstream first, compare-and-swap.

#include <pushgate/revisions.hpp>

#include <algorithm>

namespace pushgate::revisions {
namespace {

template <typename T>
std::vector<std::string> names(const std::vector<T>& v) {
  std::vector<std::string> out;
  for (const T& x : v) out.push_back(x.name);
  return out;
}

Status unknown(const std::string& what, const std::string& name, const std::vector<std::string>& known) {
  std::string hint = config::did_you_mean(name, known);
  return Status::invalid_argument("unknown " + what + " \"" + name + "\"",
                                  hint.empty() ? "see `pushgate config check` for what is configured" : hint);
}

const char* action_name(FrozenAction a, bool forced) {
  switch (a) {
    case FrozenAction::add: return "add";
    case FrozenAction::move: return forced ? "force-move" : "move";
    case FrozenAction::remove: return "remove";
  }
  return "?";
}

}  // namespace

Result<std::vector<Frozen>> list_frozen(const config::Config& config, Mirrors& mirrors) {
  std::vector<Frozen> out;
  for (const config::Tree& t : config.trees) {
    auto repo = mirrors.repo(t.name);
    if (!repo) return repo.error();
    // Everything before {branch} is the namespace of this tree's frozen refs.
    std::string full = git::qualify_ref(t.frozen_pattern);
    std::string prefix = full.substr(0, full.find("{branch}"));
    std::string suffix = full.substr(full.find("{branch}") + 8);
    auto refs = (*repo)->list_refs(prefix);
    if (!refs) return refs.error();
    for (const auto& [name, id] : *refs) {
      if (!name.ends_with(suffix)) continue;
      std::string branch = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
      out.push_back({t.name, branch, name, id, (*repo)->describe_or_short(id)});
    }
  }
  return out;
}

Result<store::FrozenChange> change_frozen(const config::Config& config, Mirrors& mirrors, store::Store& store,
                                          const FrozenRequest& req) {
  const config::Tree* tree = config.find_tree(req.tree);
  if (!tree) return unknown("tree", req.tree, names(config.trees));
  const config::Branch* branch = config.find_branch(req.branch);
  if (!branch) return unknown("branch", req.branch, names(config.branches));
  if (branch->tree == req.tree) {
    return Status::invalid_argument("tree " + req.tree + " is the tree under test of branch " + req.branch,
                                    "frozen refs pin the branch's dependencies, not the tree it tests");
  }
  auto needed = trees_of(config, *branch);
  if (std::find(needed.begin(), needed.end(), req.tree) == needed.end()) {
    return Status::invalid_argument("branch " + req.branch + " does not use tree " + req.tree);
  }
  auto repo = mirrors.repo(req.tree);
  if (!repo) return repo.error();
  git::Repository& r = **repo;
  const std::string ref = git::qualify_ref(tree->frozen_ref(req.branch));
  auto current_r = r.ref_target(ref);
  if (!current_r) return current_r.error();
  std::optional<std::string> current = *current_r;

  std::optional<std::string> target;
  bool non_ff = false;
  if (req.action != FrozenAction::remove) {
    std::string rev = req.revision;
    if (req.from_last_tolerable) {
      auto last = store.last_tolerable_revision(req.branch, req.tree);
      if (!last) return last.error();
      if (!last->has_value()) {
        return Status::not_found("no tolerable real flight of " + req.branch + " has tested tree " + req.tree + " yet",
                                 "pass --rev REV instead");
      }
      rev = last->value().second;
    }
    if (rev.empty()) return Status::invalid_argument("no revision given", "pass --rev REV or --from-last-tolerable");
    auto id = r.resolve(rev);
    if (!id) {
      return Status::invalid_argument("revision \"" + rev + "\" not found in tree " + req.tree,
                                      "fetch the mirror (drop --no-fetch), or check the revision");
    }
    target = *id;
  }

  switch (req.action) {
    case FrozenAction::add:
      if (current) {
        return Status::conflict(ref + " already exists in " + req.tree + " at " + r.describe_or_short(*current),
                                "use `pushgate frozen move`");
      }
      break;
    case FrozenAction::move: {
      if (!current) return Status::not_found(ref + " does not exist in " + req.tree, "use `pushgate frozen add`");
      if (*current == *target) {
        return Status::invalid_argument(ref + " already points at " + r.describe_or_short(*target));
      }
      auto ff = r.is_ancestor(*current, *target);
      if (!ff) return ff.error();
      non_ff = !*ff;
      if (non_ff && !req.force) {
        return Status::conflict("moving " + ref + " from " + r.describe_or_short(*current) + " to " +
                                    r.describe_or_short(*target) + " is not a fast-forward",
                                "pass --force to move it anyway");
      }
      break;
    }
    case FrozenAction::remove:
      if (!current) return Status::not_found(ref + " does not exist in " + req.tree);
      break;
  }

  // Upstream first: if someone moved the ref there, nothing changes here.
  auto pushed = r.push_ref(tree->push_url, ref, current, target, /*fast_forward_only=*/false);
  if (!pushed) return pushed.error().with_context("frozen " + std::string(action_name(req.action, non_ff)));
  Result<void> local = target ? r.update_ref(ref, *target, current, "pushgate: frozen " + req.branch)
                              : r.delete_ref(ref, *current);
  if (!local) return local.error().with_context("mirror of " + req.tree);

  store::FrozenChange change;
  change.tree = req.tree;
  change.branch = req.branch;
  change.ref = ref;
  change.action = action_name(req.action, non_ff);
  change.old_rev = current.value_or("");
  change.new_rev = target.value_or("");
  change.describe = target ? r.describe_or_short(*target) : "";
  change.who = req.who;
  change.reason = req.reason;
  change.at = store::now();
  auto rec = store.record_frozen_change(change);
  if (!rec) return rec.error().with_context("audit (the ref was changed)");
  return change;
}

}  // namespace pushgate::revisions
