#pragma once
/// All git work, in-process through libgit2: bare mirrors, fetch, resolve,
/// ancestry, describe, log, compare-and-swap ref updates, fast-forward push.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pushgate/status.hpp>

namespace pushgate::git {

/// "staging" -> "refs/heads/staging"; names already under refs/ are kept.
std::string qualify_ref(std::string_view name);

/// True when `name` (qualified with qualify_ref) is a valid git ref name.
bool is_valid_ref_name(std::string_view name);

/// The git blob id of `content` (what `git hash-object` prints): the digest
/// of ABI records, so anyone can check one with git.
std::string blob_id(std::string_view content);

/// One commit as shown in reports.
struct Commit {
  std::string id;
  std::string author_name;
  std::string author_email;
  std::string subject;
  std::int64_t time = 0;  ///< author time, seconds since the epoch
  std::vector<std::string> parents;  ///< ids, first parent first
  std::string message;               ///< the full message
};

/// Which tags `describe` may use.
enum class DescribeTags { annotated, all };

using Progress = std::function<void(const std::string& line)>;

/// How a push treats its target.
struct PushOptions {
  /// A ref lock file at a local target older than this, found while
  /// pushgate's own writers are shut out, was left by a dead writer: removed.
  int stale_lock_seconds = 60;
  Progress warn;  ///< told of every stale lock removed (age, size)
};

/// True when `url` names a repository on this machine (a path or file://),
/// which push_ref() updates in place under the target's own ref lock.
bool is_local_url(const std::string& url);

/// Start-up check of a local push target: with pushgate's writers of it shut
/// out, a lock file of `ref` older than options.stale_lock_seconds is a dead
/// writer's and is removed (options.warn is told). Nothing to do for remote
/// URLs or a young lock.
Status clear_stale_ref_lock(const std::string& url, const std::string& ref, const PushOptions& options);

/// One local repository (normally a bare mirror). Not thread-safe: use one
/// Repository per thread.
class Repository {
 public:
  /// Open an existing repository.
  static Result<std::unique_ptr<Repository>> open(const std::string& path);
  /// Open `path`, creating an empty bare repository there if nothing exists.
  static Result<std::unique_ptr<Repository>> open_or_create_bare(const std::string& path);

  ~Repository();
  Repository(const Repository&) = delete;
  Repository& operator=(const Repository&) = delete;

  const std::string& path() const;

  /// Mirror every branch and tag of `url` into this repository. On failure
  /// (unreachable upstream) no ref is changed.
  Result<void> fetch(const std::string& url, const Progress& progress = {});

  /// Full commit id of a revision ("staging", "refs/tags/x", a sha prefix, "A~2").
  Result<std::string> resolve(const std::string& rev) const;
  /// Commit id a ref points at, or nullopt when the ref does not exist.
  Result<std::optional<std::string>> ref_target(const std::string& ref) const;
  /// Every ref under `prefix` (qualified names) with its commit id.
  Result<std::vector<std::pair<std::string, std::string>>> list_refs(const std::string& prefix) const;

  /// True when `ancestor` is `descendant` or one of its ancestors.
  Result<bool> is_ancestor(const std::string& ancestor, const std::string& descendant) const;
  Result<std::string> merge_base(const std::string& a, const std::string& b) const;

  /// Same text as `git describe` (annotated) or `git describe --tags` (all);
  /// not_found when no tag can describe it.
  Result<std::string> describe(const std::string& rev, DescribeTags tags = DescribeTags::annotated) const;
  /// describe, or the 12-character abbreviated id when no tag describes it.
  std::string describe_or_short(const std::string& rev) const;

  /// One commit (no history walk).
  Result<Commit> commit(const std::string& rev) const;

  /// Commits reachable from `to` and not from `from`, newest first
  /// (`git log from..to`). Empty `from` means the whole history of `to`.
  Result<std::vector<Commit>> log(const std::string& from, const std::string& to, std::size_t limit = 0) const;
  /// Commits reachable from `to` and not from `from`, parents before
  /// children (`git rev-list --topo-order --reverse from..to`); with their
  /// parents. invalid_argument when there are more than `limit`.
  Result<std::vector<Commit>> range_topological(const std::string& from, const std::string& to, std::size_t limit) const;

  /// Point `ref` at `new_id` only if it currently points at `expected_old`
  /// (nullopt: only if it does not exist). conflict otherwise.
  Result<void> update_ref(const std::string& ref, const std::string& new_id,
                          const std::optional<std::string>& expected_old, const std::string& log_message);
  /// Delete `ref` only if it points at `expected_old`.
  Result<void> delete_ref(const std::string& ref, const std::string& expected_old);

  /// Push `new_id` to `ref` on `url` as a fast-forward only, and only if the
  /// remote ref is `expected_old` (checked on the same connection that
  /// pushes, so the server compares it too). conflict when refused.
  Result<void> push(const std::string& url, const std::string& ref, const std::string& expected_old,
                    const std::string& new_id, const PushOptions& options = {});

  /// General compare-and-swap update of a remote ref: `expected_old`
  /// nullopt means the remote ref must not exist; `new_id` nullopt deletes
  /// it; `fast_forward_only` refuses a new value that does not descend from
  /// the old one. Atomic at the target for every transport: a local target
  /// gets the objects, then git_reference_create_matching under its ref lock
  /// (pushgate's writers of one target take turns on a flock there); a smart
  /// transport's server compares the advertised old value. conflict: the ref
  /// is not `expected_old` (it moved); unavailable: the update could not be
  /// made (ref locked, connection lost: read the ref again to know).
  Result<void> push_ref(const std::string& url, const std::string& ref, const std::optional<std::string>& expected_old,
                        const std::optional<std::string>& new_id, bool fast_forward_only,
                        const PushOptions& options = {});

  /// Value of `ref` on `url` (nullopt when absent), asked over the network.
  Result<std::optional<std::string>> remote_ref(const std::string& url, const std::string& ref);

 private:
  Result<void> push_local(const std::string& url, const std::string& full, const std::optional<std::string>& expected_old,
                          const std::optional<std::string>& new_id, const PushOptions& options);
  struct Impl;
  explicit Repository(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pushgate::git
