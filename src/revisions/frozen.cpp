// Frozen refs: pins of a dependency tree's revision for one consumer branch.
// They live in the tree's upstream (as osstest's frozen refs do) and are
// mirrored like every other ref; changes go upstream first, compare-and-swap.

#include <pushgate/revisions.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

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

/// STATE_DIR/locks/frozen.lock: frozen-ref changers take turns, and whoever
/// holds it owns every pending frozen intent (a changer records its intent
/// only while holding it, so an intent seen under the lock is a dead one's).
class FrozenLock {
 public:
  static Result<FrozenLock> acquire(const config::Config& config, bool wait) {
    std::string path = config.daemon.state_dir + "/locks/frozen.lock";
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::unavailable("cannot open " + path + ": " + std::strerror(errno));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait ? 30 : 0);
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        int e = errno;
        ::close(fd);
        return Status::unavailable("cannot lock " + path + ": " + std::strerror(e));
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        ::close(fd);
        return Status::conflict("another frozen-ref change is in progress (" + path + " is locked)",
                                "wait for it to finish and try again");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return FrozenLock(fd);
  }
  FrozenLock(FrozenLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FrozenLock& operator=(FrozenLock&&) = delete;
  FrozenLock(const FrozenLock&) = delete;
  ~FrozenLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit FrozenLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

std::string short_or_none(git::Repository& r, const std::string& id) {
  return id.empty() ? "(absent)" : r.describe_or_short(id);
}

/// Make the mirror's copy of `ref` equal `target` (nullopt: absent).
Result<void> sync_mirror(git::Repository& r, const std::string& ref, const std::optional<std::string>& target,
                         const std::string& message) {
  auto m = r.ref_target(ref);
  if (!m) return m.error();
  if (*m == target) return {};
  if (target) return r.update_ref(ref, *target, *m, message);
  return r.delete_ref(ref, **m);
}

/// The outcome of a frozen intent whose push errored or whose changer died,
/// read from the push URL: done / failed / refused, or unavailable when the
/// upstream cannot be asked (the intent stays pending).
struct Outcome {
  std::string state, note;
};
Result<Outcome> read_outcome(git::Repository& r, const config::Tree& tree, const store::FrozenChange& c,
                             bool we_compared_and_lost) {
  auto now_r = r.remote_ref(tree.push_url, c.ref);
  if (!now_r) return now_r.error();
  const std::string at = now_r->value_or("");
  if (at == c.new_rev && !we_compared_and_lost) {
    return Outcome{"done", "upstream found at the new value afterwards"};
  }
  if (at == c.old_rev) return Outcome{"failed", "upstream still at the old value: nothing changed"};
  return Outcome{"refused", "upstream is at " + short_or_none(r, at) + ", moved by someone else; nothing changed"};
}

/// Finish every pending intent; the caller holds the FrozenLock.
Result<std::vector<store::FrozenChange>> finish_dead_intents(const config::Config& config, Mirrors& mirrors,
                                                             store::Store& store,
                                                             const std::function<void(const std::string&)>& progress) {
  std::vector<store::FrozenChange> finished;
  auto pending = store.pending_frozen_changes();
  if (!pending) return pending.error();
  for (store::FrozenChange c : *pending) {
    const config::Tree* tree = config.find_tree(c.tree);
    if (!tree) {
      c.state = "failed";
      c.note = "its changer died and tree " + c.tree + " is no longer configured; outcome not checked";
    } else {
      auto repo = mirrors.repo(c.tree);
      if (!repo) return repo.error();
      auto out = read_outcome(**repo, *tree, c, false);
      if (!out) {
        if (progress) {
          progress("warning: frozen-ref change " + std::to_string(c.id) + " (" + c.ref + " in " + c.tree +
                   ") is still pending: " + out.error().message());
        }
        continue;
      }
      c.state = out->state;
      c.note = "its changer died; " + out->note;
      if (c.state == "done") {
        std::optional<std::string> target;
        if (!c.new_rev.empty()) target = c.new_rev;
        if (auto m = sync_mirror(**repo, c.ref, target, "pushgate: frozen " + c.branch + " (reconciled)"); !m) {
          return m.error().with_context("mirror of " + c.tree);
        }
      }
    }
    if (auto f = store.finish_frozen_change(c.id, c.state, c.note); !f) return f.error();
    if (progress) {
      progress("frozen-ref change " + std::to_string(c.id) + " (" + c.action + " " + c.ref + " in " + c.tree +
               ") reconciled: " + c.state + " (" + c.note + ")");
    }
    finished.push_back(c);
  }
  return finished;
}

}  // namespace

Result<std::vector<store::FrozenChange>> reconcile_frozen(const config::Config& config, Mirrors& mirrors,
                                                          store::Store& store,
                                                          const std::function<void(const std::string&)>& progress) {
  auto pending = store.pending_frozen_changes();
  if (!pending) return pending.error();
  if (pending->empty()) return std::vector<store::FrozenChange>{};
  auto lock = FrozenLock::acquire(config, /*wait=*/false);
  if (!lock) {
    if (lock.error().code() == StatusCode::conflict) return std::vector<store::FrozenChange>{};  // owner alive
    return lock.error();
  }
  return finish_dead_intents(config, mirrors, store, progress);
}

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
  auto lock = FrozenLock::acquire(config, /*wait=*/true);
  if (!lock) return lock.error();
  if (auto dead = finish_dead_intents(config, mirrors, store, {}); !dead) return dead.error();
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
  change.state = "intent";
  // The intent first (durable): a crash after the push below still leaves
  // a row for reconciliation to finish.
  auto id = store.record_frozen_change(change);
  if (!id) return id.error().with_context("recording the frozen-ref change (nothing was changed)");
  change.id = *id;

  // Upstream next: if someone moved the ref there, nothing changes here.
  const std::string what = "frozen " + std::string(action_name(req.action, non_ff));
  auto pushed = r.push_ref(tree->push_url, ref, current, target, /*fast_forward_only=*/false);
  if (!pushed) {
    auto out = read_outcome(r, *tree, change, pushed.error().code() == StatusCode::conflict);
    if (!out) {
      return Status::unavailable(what + ": " + pushed.error().message() + "; reading " + ref +
                                     " back failed too (" + out.error().message() + ")",
                                 "the change is recorded as pending (id " + std::to_string(change.id) +
                                     "); it is settled when the upstream can be reached again");
    }
    change.state = out->state;
    change.note = "push errored (" + pushed.error().message() + "); " + out->note;
    if (auto f = store.finish_frozen_change(change.id, change.state, change.note); !f) return f.error();
    if (change.state != "done") return pushed.error().with_context(what);
  } else {
    change.state = "done";
  }
  if (auto local = sync_mirror(r, ref, target, "pushgate: frozen " + req.branch); !local) {
    // Upstream has it; the next fetch brings the mirror along. Still finish the audit row.
    if (change.note.empty()) {
      (void)store.finish_frozen_change(change.id, "done", "mirror not updated: " + local.error().message());
    }
    return local.error().with_context("mirror of " + req.tree + " (upstream was changed)");
  }
  if (change.note.empty()) {
    if (auto f = store.finish_frozen_change(change.id, "done", ""); !f) {
      return f.error().with_context("audit (the ref was changed)");
    }
  }
  return change;
}

}  // namespace pushgate::revisions
