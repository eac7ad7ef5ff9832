// SPEC section 3: the revision of every tree for a branch's next flight.

#include <pushgate/revisions.hpp>

#include <algorithm>

namespace pushgate::revisions {

Result<git::Repository*> Mirrors::repo(const std::string& tree) {
  auto it = repos_.find(tree);
  if (it != repos_.end()) return it->second.get();
  const config::Tree* t = config_.find_tree(tree);
  if (!t) return Status::invalid_argument("unknown tree \"" + tree + "\"");
  auto r = git::Repository::open_or_create_bare(t->mirror);
  if (!r) return r.error();
  git::Repository* raw = r->get();
  repos_[tree] = std::move(r).value();
  return raw;
}

Result<void> Mirrors::fetch(const std::string& tree, const git::Progress& progress) {
  auto r = repo(tree);
  if (!r) return r.error();
  const config::Tree* t = config_.find_tree(tree);
  auto f = (*r)->fetch(t->upstream, progress);
  if (!f) return f.error().with_context("tree " + tree);
  return {};
}

const Resolved* Resolution::find(const std::string& tree) const {
  auto it = std::find_if(trees.begin(), trees.end(), [&](const Resolved& r) { return r.tree == tree; });
  return it == trees.end() ? nullptr : &*it;
}

std::vector<std::string> trees_of(const config::Config& config, const config::Branch& branch) {
  std::vector<std::string> out{branch.tree};
  if (branch.trees.empty()) {
    for (const auto& t : config.trees) {
      if (t.name != branch.tree) out.push_back(t.name);
    }
  } else {
    for (const auto& t : branch.trees) {
      if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    }
  }
  return out;
}

namespace {

std::vector<std::string> branch_names(const config::Config& c) {
  std::vector<std::string> out;
  for (const auto& b : c.branches) out.push_back(b.name);
  return out;
}

/// Read `ref` in `tree`'s mirror; a missing ref is an error naming why we wanted it.
Result<std::string> read_ref(git::Repository& repo, const std::string& tree, const std::string& ref,
                             const std::string& why) {
  auto v = repo.ref_target(ref);
  if (!v) return v.error();
  if (!v->has_value()) {
    return Status::not_found("ref " + git::qualify_ref(ref) + " (" + why + ") not found in the mirror of tree " + tree,
                             "fetch the mirror (drop --no-fetch) or check the branch configuration");
  }
  return v->value();
}

/// The full name of a `sources.ref` value: a full name (`refs/...`) as it
/// is; a short one as a branch (`refs/heads/X`) or a tag (`refs/tags/X`,
/// also written `tags/X`), whichever the mirror has. Both, at different
/// commits, is an error: git itself would warn that the name is ambiguous.
Result<std::string> source_ref(git::Repository& repo, const std::string& tree, const std::string& name) {
  if (name.starts_with("refs/")) return name;
  if (name.starts_with("tags/")) return "refs/" + name;
  std::string head = "refs/heads/" + name, tag = "refs/tags/" + name;
  auto h = repo.ref_target(head);
  if (!h) return h.error();
  auto t = repo.ref_target(tag);
  if (!t) return t.error();
  if (h->has_value() && t->has_value() && **h != **t) {
    return Status::invalid_argument("ref \"" + name + "\" is both a branch and a tag, at different commits, in tree " +
                                        tree,
                                    "write sources." + tree + ".ref as " + head + " or " + tag);
  }
  if (!h->has_value() && t->has_value()) return tag;
  return head;
}

}  // namespace

Result<Resolution> resolve(const config::Config& config, Mirrors& mirrors, const store::Store* store,
                           const std::string& branch_name, const std::map<std::string, std::string>& overrides) {
  const config::Branch* branch = config.find_branch(branch_name);
  if (!branch) {
    std::string hint = config::did_you_mean(branch_name, branch_names(config));
    return Status::invalid_argument("unknown branch \"" + branch_name + "\"",
                                    hint.empty() ? "see `pushgate config check` for the configured branches" : hint);
  }
  std::vector<std::string> trees = trees_of(config, *branch);
  for (const auto& [tree, rev] : overrides) {
    if (std::find(trees.begin(), trees.end(), tree) == trees.end()) {
      return Status::invalid_argument("--rev " + tree + "=" + rev + ": branch " + branch_name + " does not use tree \"" +
                                      tree + "\"");
    }
  }

  Resolution res;
  res.branch = branch_name;
  for (const std::string& tree : trees) {
    const config::Tree* t = config.find_tree(tree);
    auto repo = mirrors.repo(tree);
    if (!repo) return repo.error();
    git::Repository& r = **repo;
    Resolved out;
    out.tree = tree;
    out.url = t->upstream;

    if (auto o = overrides.find(tree); o != overrides.end()) {
      auto id = r.resolve(o->second);
      if (!id) {
        return Status::invalid_argument("--rev " + tree + "=" + o->second + ": no such revision in tree " + tree,
                                        "fetch the mirror, or give a full commit id");
      }
      out.revision = *id;
      out.source = "override";
    } else if (tree == branch->tree) {
      auto input = read_ref(r, tree, branch->input, "input of branch " + branch_name);
      if (!input) return input.error();
      out.revision = *input;
      out.source = "input";
      out.ref = git::qualify_ref(branch->input);
    } else {
      std::string frozen = t->frozen_ref(branch_name);
      auto fv = r.ref_target(frozen);
      if (!fv) return fv.error();
      if (fv->has_value()) {
        out.revision = fv->value();
        out.source = "frozen";
        out.ref = git::qualify_ref(frozen);
      } else {
        std::string ref, source, why;
        if (auto s = branch->sources.find(tree); s != branch->sources.end()) {
          if (s->second.kind == config::Source::Kind::tested_of) {
            ref = config.find_branch(s->second.value)->tested;
            source = "tested-of:" + s->second.value;
          } else {
            auto full = source_ref(r, tree, s->second.value);
            if (!full) return full.error();
            ref = *full;
            source = "ref:" + s->second.value;
          }
        } else if (const config::Branch* gate = config.gate_of(tree)) {
          ref = gate->tested;
          source = "tested-of:" + gate->name;
        } else {
          return Status::invalid_argument("branch " + branch_name + " has no revision source for tree " + tree,
                                          "add sources." + tree + " to the branch");
        }
        auto v = read_ref(r, tree, ref, source + " for branch " + branch_name);
        if (!v) return v.error();
        out.revision = *v;
        out.source = source;
        out.ref = git::qualify_ref(ref);
      }
    }
    res.trees.push_back(std::move(out));
  }

  // The baseline: the tested ref of the tree under test.
  auto repo = mirrors.repo(branch->tree);
  if (!repo) return repo.error();
  auto tested = (*repo)->ref_target(branch->tested);
  if (!tested) return tested.error();
  res.tested_revision = tested->value_or("");
  Resolved& under_test = res.trees.front();
  bool overridden = overrides.count(branch->tree) > 0;
  if (!res.tested_revision.empty() && store && !overridden) {
    auto done = store->revision_tested(branch_name, branch->tree, res.tested_revision);
    if (!done) return done.error();
    if (!*done) {
      // Moved by hand (or never tested): test the tested ref itself first.
      res.baseline_flight = true;
      under_test.revision = res.tested_revision;
      under_test.source = "tested-of:" + branch_name;
      under_test.ref = git::qualify_ref(branch->tested);
    }
  }
  res.up_to_date = !res.baseline_flight && !overridden && under_test.revision == res.tested_revision;
  return res;
}

void describe(Resolution& res, Mirrors& mirrors) {
  for (Resolved& r : res.trees) {
    auto repo = mirrors.repo(r.tree);
    r.describe = repo ? (*repo)->describe_or_short(r.revision) : r.revision.substr(0, 12);
  }
}

std::vector<std::pair<std::string, std::string>> runvars(const Resolution& res) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Resolved& r : res.trees) {
    out.emplace_back("tree_" + r.tree, r.url);
    out.emplace_back("revision_" + r.tree, r.revision);
    out.emplace_back("revsrc_" + r.tree, r.source);
  }
  return out;
}

}  // namespace pushgate::revisions
