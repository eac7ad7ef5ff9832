// libgit2 wrappers. Every libgit2 object is held by a unique_ptr with its
// free function, every error becomes a Status with libgit2's own message.

#include <pushgate/git.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include <git2.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace pushgate::git {
namespace {

void ensure_init() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
template <typename T, void (*Free)(T*)>
using Ptr = std::unique_ptr<T, Deleter<T, Free>>;

using RepoPtr = Ptr<git_repository, git_repository_free>;
using ObjectPtr = Ptr<git_object, git_object_free>;
using CommitPtr = Ptr<git_commit, git_commit_free>;
using RefPtr = Ptr<git_reference, git_reference_free>;
using RemotePtr = Ptr<git_remote, git_remote_free>;
using WalkPtr = Ptr<git_revwalk, git_revwalk_free>;
using DescribePtr = Ptr<git_describe_result, git_describe_result_free>;
using RefIterPtr = Ptr<git_reference_iterator, git_reference_iterator_free>;

std::string last_error() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

Status error_status(int rc, const std::string& what) {
  std::string msg = what + ": " + last_error();
  switch (rc) {
    case GIT_ENOTFOUND: return Status::not_found(msg);
    case GIT_EINVALIDSPEC: return Status::invalid_argument(msg);
    case GIT_EMODIFIED:
    case GIT_EEXISTS:
    case GIT_ENONFASTFORWARD: return Status::conflict(msg);
    // A lock file says nothing about the ref's value: trouble, not a verdict.
    case GIT_ELOCKED: return Status::unavailable(msg, "another writer holds the ref's lock; retry");
    default: return Status::unavailable(msg);
  }
}

std::string oid_str(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, oid);
  return buf;
}

}  // namespace

std::string qualify_ref(std::string_view name) {
  if (name.starts_with("refs/") || name == "HEAD") return std::string(name);
  return "refs/heads/" + std::string(name);
}

bool is_valid_ref_name(std::string_view name) {
  ensure_init();
  int valid = 0;
  std::string full = qualify_ref(name);
  if (git_reference_name_is_valid(&valid, full.c_str()) < 0) return false;
  return valid != 0;
}

std::string blob_id(std::string_view content) {
  ensure_init();
  git_oid oid;
  if (git_odb_hash(&oid, content.data(), content.size(), GIT_OBJECT_BLOB) < 0) return {};
  char hex[GIT_OID_HEXSZ + 1] = {};
  git_oid_tostr(hex, sizeof hex, &oid);
  return hex;
}

struct Repository::Impl {
  RepoPtr repo;
  std::string path;

  Result<CommitPtr> lookup_commit(const std::string& rev) const {
    git_object* obj = nullptr;
    int rc = git_revparse_single(&obj, repo.get(), rev.c_str());
    if (rc < 0) {
      // A plain branch or tag name that is not unambiguous as a revision.
      if (!rev.starts_with("refs/")) {
        for (const char* prefix : {"refs/heads/", "refs/tags/"}) {
          std::string full = prefix + rev;
          if (git_revparse_single(&obj, repo.get(), full.c_str()) == 0) { rc = 0; break; }
        }
      }
      if (rc < 0) {
        return Status::not_found("revision \"" + rev + "\" not found in " + path,
                                 "check the name, or fetch the mirror first");
      }
    }
    ObjectPtr holder(obj);
    git_object* peeled = nullptr;
    if (int prc = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT); prc < 0) {
      return error_status(prc, "revision \"" + rev + "\" is not a commit");
    }
    return CommitPtr(reinterpret_cast<git_commit*>(peeled));
  }
};

Repository::Repository(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Repository::~Repository() = default;

const std::string& Repository::path() const { return impl_->path; }

Result<std::unique_ptr<Repository>> Repository::open(const std::string& path) {
  ensure_init();
  git_repository* repo = nullptr;
  if (int rc = git_repository_open_ext(&repo, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr); rc < 0) {
    return error_status(rc, "cannot open git repository " + path);
  }
  auto impl = std::make_unique<Impl>();
  impl->repo.reset(repo);
  impl->path = path;
  return std::unique_ptr<Repository>(new Repository(std::move(impl)));
}

Result<std::unique_ptr<Repository>> Repository::open_or_create_bare(const std::string& path) {
  ensure_init();
  git_repository* repo = nullptr;
  if (git_repository_open_ext(&repo, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) < 0) {
    // Made aside and renamed into place: two processes (or flight threads)
    // creating the same mirror at once both end up with one whole
    // repository, never one's config.lock in the other's way (issue 12).
    static std::atomic<unsigned> seq{0};
    std::error_code ec;
    std::filesystem::path target(path);
    if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), ec);
    std::string tmp = path + ".init-" + std::to_string(::getpid()) + "-" + std::to_string(seq++);
    git_repository* made = nullptr;
    if (int rc = git_repository_init(&made, tmp.c_str(), 1); rc < 0) {
      std::filesystem::remove_all(tmp, ec);
      return error_status(rc, "cannot create bare repository " + path);
    }
    git_repository_free(made);
    if (::rename(tmp.c_str(), path.c_str()) != 0) std::filesystem::remove_all(tmp, ec);  // another was first
    if (int rc = git_repository_open_ext(&repo, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr); rc < 0) {
      return error_status(rc, "cannot create bare repository " + path);
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->repo.reset(repo);
  impl->path = path;
  return std::unique_ptr<Repository>(new Repository(std::move(impl)));
}

namespace {

using Clock = std::chrono::steady_clock;

/// Progress of a long fetch: a line at most every half second (objects
/// received and indexed, the rate), never one per ref.
class FetchProgress {
 public:
  explicit FetchProgress(const Progress* p) : progress_(p) {}
  bool on() const { return progress_ && *progress_; }
  void objects(std::size_t received, std::size_t indexed, std::size_t total, std::size_t bytes) {
    if (!on() || total < 2000) return;  // small fetches: the summary says enough
    auto now = Clock::now();
    bool last = indexed == total;
    if (!last && now - last_line_ < std::chrono::milliseconds(500)) return;
    if (last && said_last_) return;
    said_last_ = last;
    last_line_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.1f MiB/s", secs > 0 ? static_cast<double>(bytes) / (1 << 20) / secs : 0.0);
    (*progress_)("objects: " + std::to_string(received) + "/" + std::to_string(total) + " received, " +
                 std::to_string(indexed) + " indexed, " + rate);
  }
  void line(const std::string& l) {
    if (on()) (*progress_)(l);
  }

 private:
  const Progress* progress_;
  Clock::time_point start_ = Clock::now(), last_line_{};
  bool said_last_ = false;
};

int on_transfer(const git_indexer_progress* stats, void* payload) {
  static_cast<FetchProgress*>(payload)->objects(stats->received_objects, stats->indexed_objects,
                                                stats->total_objects, stats->received_bytes);
  return 0;
}

/// Every ref of a repository and its target (symbolic refs left out).
std::map<std::string, std::string> ref_snapshot(git_repository* repo) {
  std::map<std::string, std::string> out;
  git_reference_iterator* it = nullptr;
  if (git_reference_iterator_new(&it, repo) < 0) return out;
  RefIterPtr holder(it);
  git_reference* ref = nullptr;
  while (git_reference_next(&ref, it) == 0) {
    RefPtr r(ref);
    if (git_reference_type(ref) == GIT_REFERENCE_DIRECT) out[git_reference_name(ref)] = oid_str(git_reference_target(ref));
  }
  return out;
}

/// What a fetch changed, said briefly: the first few refs by name, then counts.
void report_changes(const std::map<std::string, std::string>& before, const std::map<std::string, std::string>& after,
                    const std::string& url, FetchProgress& p) {
  std::vector<std::string> lines;
  std::size_t added = 0, moved = 0, removed = 0;
  for (const auto& [name, id] : after) {
    auto it = before.find(name);
    if (it == before.end()) {
      ++added;
      lines.push_back("new " + name + " -> " + id.substr(0, 12));
    } else if (it->second != id) {
      ++moved;
      lines.push_back("updated " + name + " " + it->second.substr(0, 12) + " -> " + id.substr(0, 12));
    }
  }
  for (const auto& [name, id] : before) {
    if (!after.count(name)) {
      ++removed;
      lines.push_back("deleted " + name + " (was " + id.substr(0, 12) + ")");
    }
  }
  constexpr std::size_t kShown = 10;
  for (std::size_t i = 0; i < lines.size() && i < kShown; ++i) p.line(lines[i]);
  if (lines.size() > kShown) p.line("... and " + std::to_string(lines.size() - kShown) + " more");
  p.line("fetched " + url + ": " + std::to_string(added) + " new, " + std::to_string(moved) + " updated, " +
         std::to_string(removed) + " deleted refs");
}

/// The mirror transport for local upstreams: `git fetch` as a child
/// process. libgit2 1.5's local transport builds the pack in-process and
/// walks every tree of the history it already has: measured on a
/// 100k-commit repository, 8x slower and 4x the memory of `git clone
/// --mirror` for a first mirror, 80x slower than `git fetch` for one new
/// commit (docs/architecture.md, bench/mirror_bench). Over the network
/// (git://, https, ssh) libgit2 matches git and is used.
Status fetch_with_git(const std::string& gitdir, const std::string& url, FetchProgress& p) {
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return Status::unavailable(std::string("pipe: ") + std::strerror(errno));
  std::vector<std::string> args = {"git", "--git-dir=" + gitdir, "-c", "gc.auto=0", "-c", "fetch.writeCommitGraph=false",
                                   "fetch", "--prune", "--no-tags", "--quiet"};
  if (p.on()) args.back() = "--progress";
  args.insert(args.end(), {"--", url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Made before fork: after it, in a threaded process, only
  // async-signal-safe calls (no setenv, no malloc). A small environment:
  // git needs no secret the daemon holds.
  std::vector<std::string> env_strings = {"GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "LANG=C"};
  for (const char* name : {"PATH", "HOME", "TMPDIR"}) {
    if (const char* v = std::getenv(name)) env_strings.push_back(std::string(name) + "=" + v);
  }
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return Status::unavailable(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(err_pipe[1], 2);
    ::execvpe("git", argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(err_pipe[1]);
  // git's progress: lines ended by \r while counting, \n at each phase's end.
  std::string pending, errors;
  auto last_line = Clock::now() - std::chrono::seconds(1);
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(err_pipe[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      char c = buf[i];
      if (c != '\r' && c != '\n') {
        pending += c;
        continue;
      }
      if (pending.empty()) continue;
      bool phase_end = c == '\n' || pending.find(", done") != std::string::npos;
      bool progress_line = pending.find("objects:") != std::string::npos || pending.find("deltas:") != std::string::npos;
      if (!progress_line) {
        if (errors.size() < 4096) errors += pending + "\n";
      } else if (phase_end || Clock::now() - last_line >= std::chrono::milliseconds(500)) {
        last_line = Clock::now();
        std::string l = pending.starts_with("remote: ") ? pending.substr(8) : pending;
        p.line(l);
      }
      pending.clear();
    }
  }
  ::close(err_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  while (!errors.empty() && errors.back() == '\n') errors.pop_back();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return Status::unavailable("fetch from " + url + " failed: cannot run git (the mirror transport for local upstreams)");
  }
  return Status::unavailable("fetch from " + url + " failed: git fetch: " + (errors.empty() ? "exit " + std::to_string(WEXITSTATUS(status)) : errors));
}
}  // namespace

namespace {

/// Serialises the writers of one repository (fetch, local ref updates, the
/// push's temporary source ref) across threads and processes: libgit2 takes
/// a lock file per ref and fails, not waits, when another writer holds it.
/// flock on GITDIR/pushgate.lock; the kernel drops it if the process dies.
class WriteLock {
 public:
  explicit WriteLock(git_repository* repo) {
    std::string path = std::string(git_repository_path(repo)) + "pushgate.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return;  // a read-only repository has no writers to wait for
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }

  /// For a repository only pushgate writes (a mirror): while this is held,
  /// every ref lock file in it was left by a writer killed mid-update.
  /// Removes them, so one kill -9 does not fail every later fetch.
  static void clear_dead_ref_locks(git_repository* repo) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path dir(git_repository_path(repo));
    fs::remove(dir / "packed-refs.lock", ec);
    for (auto it = fs::recursive_directory_iterator(dir / "refs", ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->path().extension() == ".lock") fs::remove(it->path(), ec);
    }
  }
  ~WriteLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace

Result<void> Repository::fetch(const std::string& url, const Progress& progress) {
  FetchProgress p(&progress);
  git_repository* repo = impl_->repo.get();
  p.line("fetching " + url + " into " + impl_->path);
  WriteLock lock(repo);
  WriteLock::clear_dead_ref_locks(repo);
  auto before = ref_snapshot(repo);
  if (is_local_url(url)) {
    if (Status s = fetch_with_git(git_repository_path(repo), url, p); !s.ok()) return s.with_context("git");
  } else {
    git_remote* remote = nullptr;
    if (int rc = git_remote_create_anonymous(&remote, repo, url.c_str()); rc < 0) {
      return error_status(rc, "invalid upstream " + url);
    }
    RemotePtr holder(remote);
    git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
    opts.callbacks.transfer_progress = on_transfer;
    opts.callbacks.payload = &p;
    opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    // A mirror: refs deleted upstream go too (a removed frozen ref must stop pinning).
    opts.prune = GIT_FETCH_PRUNE;
    const char* specs[] = {"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"};
    git_strarray refspecs{const_cast<char**>(specs), 2};
    if (int rc = git_remote_fetch(remote, &refspecs, &opts, "pushgate: fetch"); rc < 0) {
      return error_status(rc, "fetch from " + url + " failed").with_context("git");
    }
  }
  // git wrote a new pack behind libgit2's back: look for it now, not at the first miss.
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, repo) == 0) {
    git_odb_refresh(odb);
    git_odb_free(odb);
  }
  report_changes(before, ref_snapshot(repo), url, p);
  return {};
}

Result<std::string> Repository::resolve(const std::string& rev) const {
  auto c = impl_->lookup_commit(rev);
  if (!c) return c.error();
  return oid_str(git_commit_id(c->get()));
}

Result<std::optional<std::string>> Repository::ref_target(const std::string& ref) const {
  git_reference* r = nullptr;
  std::string full = qualify_ref(ref);
  int rc = git_reference_lookup(&r, impl_->repo.get(), full.c_str());
  if (rc == GIT_ENOTFOUND) return std::optional<std::string>{};
  if (rc < 0) return error_status(rc, "cannot read ref " + full);
  RefPtr holder(r);
  git_object* obj = nullptr;
  if (int prc = git_reference_peel(&obj, r, GIT_OBJECT_COMMIT); prc < 0) {
    return error_status(prc, "ref " + full + " does not point at a commit");
  }
  ObjectPtr oh(obj);
  return std::optional<std::string>(oid_str(git_object_id(obj)));
}

Result<std::vector<std::pair<std::string, std::string>>> Repository::list_refs(const std::string& prefix) const {
  git_reference_iterator* it = nullptr;
  if (int rc = git_reference_iterator_new(&it, impl_->repo.get()); rc < 0) return error_status(rc, "list refs");
  RefIterPtr holder(it);
  std::vector<std::pair<std::string, std::string>> out;
  git_reference* r = nullptr;
  while (git_reference_next(&r, it) == 0) {
    RefPtr rh(r);
    std::string name = git_reference_name(r);
    if (!name.starts_with(prefix)) continue;
    git_object* obj = nullptr;
    if (git_reference_peel(&obj, r, GIT_OBJECT_COMMIT) == 0) {
      out.emplace_back(name, oid_str(git_object_id(obj)));
      git_object_free(obj);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<bool> Repository::is_ancestor(const std::string& ancestor, const std::string& descendant) const {
  auto a = impl_->lookup_commit(ancestor);
  if (!a) return a.error();
  auto d = impl_->lookup_commit(descendant);
  if (!d) return d.error();
  const git_oid* ao = git_commit_id(a->get());
  const git_oid* dob = git_commit_id(d->get());
  if (git_oid_equal(ao, dob)) return true;
  int rc = git_graph_descendant_of(impl_->repo.get(), dob, ao);
  if (rc < 0) return error_status(rc, "ancestry check");
  return rc == 1;
}

Result<std::string> Repository::merge_base(const std::string& a, const std::string& b) const {
  auto ca = impl_->lookup_commit(a);
  if (!ca) return ca.error();
  auto cb = impl_->lookup_commit(b);
  if (!cb) return cb.error();
  git_oid out;
  if (int rc = git_merge_base(&out, impl_->repo.get(), git_commit_id(ca->get()), git_commit_id(cb->get())); rc < 0) {
    return error_status(rc, "no merge base of " + a + " and " + b);
  }
  return oid_str(&out);
}

namespace {

/// git's abbreviation length when core.abbrev is unset: from the number of
/// packed objects (git's approximate count), 2^n objects -> n/2 hex digits
/// rounded up, at least 7 (10 on the Xen repository). libgit2 then makes it
/// longer where needed to stay unique, as git does.
int auto_abbrev(git_repository* repo) {
  unsigned long count = 0;
  std::error_code ec;
  std::filesystem::path packs = std::filesystem::path(git_repository_path(repo)) / "objects" / "pack";
  for (auto it = std::filesystem::directory_iterator(packs, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    if (it->path().extension() != ".idx") continue;
    int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    unsigned char head[8], last[4];
    // Version 2 (magic \377tOc, version 2): the fan-out table follows the
    // 8-byte header; version 1 starts with it. Its last entry is the count.
    off_t fanout = 0;
    if (::pread(fd, head, 8, 0) == 8 && std::memcmp(head, "\377tOc", 4) == 0) fanout = 8;
    if (::pread(fd, last, 4, fanout + 255 * 4) == 4) {
      count += (static_cast<unsigned long>(last[0]) << 24) | (static_cast<unsigned long>(last[1]) << 16) |
               (static_cast<unsigned long>(last[2]) << 8) | last[3];
    }
    ::close(fd);
  }
  int msb = 0;
  for (unsigned long x = count; x >>= 1;) ++msb;
  int len = (msb + 1 + 1) / 2;
  return std::max(len, 7);
}

}  // namespace

namespace {
Commit commit_of(git_commit* c) {
  const git_signature* a = git_commit_author(c);
  const char* summary = git_commit_summary(c);
  Commit out{oid_str(git_commit_id(c)), a->name ? a->name : "", a->email ? a->email : "", summary ? summary : "",
             static_cast<std::int64_t>(a->when.time), {}, {}};
  for (unsigned i = 0; i < git_commit_parentcount(c); ++i) out.parents.push_back(oid_str(git_commit_parent_id(c, i)));
  const char* msg = git_commit_message(c);
  out.message = msg ? msg : "";
  return out;
}

/// What a describe depends on besides the commit: the tags (loose and
/// packed refs) and the packs (the abbreviation grows with the object
/// count). Changed by any writer, this process or another.
std::string describe_fingerprint(git_repository* repo) {
  std::string dir = git_repository_path(repo);
  std::string out;
  for (const char* p : {"packed-refs", "refs/tags", "objects/pack"}) {
    struct stat st {};
    if (::stat((dir + p).c_str(), &st) == 0) {
      out += std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "/" +
             std::to_string(st.st_size) + ";";
    } else {
      out += "-;";
    }
  }
  return out;
}

/// describe results by (repository, commit, tags, fingerprint), shared by
/// every Repository of the process: a status page asks for the same few
/// commits on every request, and a describe can walk much history.
class DescribeCache {
 public:
  std::optional<std::string> get(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  void put(const std::string& key, const std::string& value) {
    std::lock_guard lock(mutex_);
    if (map_.size() >= 4096) map_.clear();  // bounded; refilled by what is asked for
    map_[key] = value;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> map_;  // GUARDED_BY(mutex_)
};
DescribeCache& describe_cache() {
  static DescribeCache c;
  return c;
}
}  // namespace

Result<std::string> Repository::describe(const std::string& rev, DescribeTags tags) const {
  auto c = impl_->lookup_commit(rev);
  if (!c) return c.error();
  const std::string key = impl_->path + "\n" + oid_str(git_commit_id(c->get())) + (tags == DescribeTags::all ? "\nt\n" : "\na\n") +
                          describe_fingerprint(impl_->repo.get());
  if (auto hit = describe_cache().get(key)) {
    if (hit->empty()) return Status::not_found("no tag describes " + rev);
    return *hit;
  }
  git_describe_options opts = GIT_DESCRIBE_OPTIONS_INIT;
  opts.describe_strategy = tags == DescribeTags::all ? GIT_DESCRIBE_TAGS : GIT_DESCRIBE_DEFAULT;
  git_describe_result* res = nullptr;
  if (int rc = git_describe_commit(&res, reinterpret_cast<git_object*>(c->get()), &opts); rc < 0) {
    Status s = Status::not_found("no tag describes " + rev + ": " + last_error());
    if (rc == GIT_ENOTFOUND) describe_cache().put(key, "");
    return s;
  }
  DescribePtr holder(res);
  git_describe_format_options fopts = GIT_DESCRIBE_FORMAT_OPTIONS_INIT;
  fopts.abbreviated_size = static_cast<unsigned>(auto_abbrev(impl_->repo.get()));
  git_buf buf = GIT_BUF_INIT;
  if (int rc = git_describe_format(&buf, res, &fopts); rc < 0) return error_status(rc, "describe " + rev);
  std::string out(buf.ptr, buf.size);
  git_buf_dispose(&buf);
  describe_cache().put(key, out);
  return out;
}

std::string Repository::describe_or_short(const std::string& rev) const {
  if (auto d = describe(rev, DescribeTags::all)) return *d;
  if (auto id = resolve(rev)) return id->substr(0, 12);
  return rev;
}

Result<Commit> Repository::commit(const std::string& rev) const {
  auto c = impl_->lookup_commit(rev);
  if (!c) return c.error();
  return commit_of(c->get());
}

Result<std::vector<Commit>> Repository::log(const std::string& from, const std::string& to, std::size_t limit) const {
  auto tc = impl_->lookup_commit(to);
  if (!tc) return tc.error();
  git_revwalk* w = nullptr;
  if (int rc = git_revwalk_new(&w, impl_->repo.get()); rc < 0) return error_status(rc, "log");
  WalkPtr holder(w);
  git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
  git_revwalk_push(w, git_commit_id(tc->get()));
  if (!from.empty()) {
    auto fc = impl_->lookup_commit(from);
    if (!fc) return fc.error();
    git_revwalk_hide(w, git_commit_id(fc->get()));
  }
  std::vector<Commit> out;
  git_oid oid;
  while (git_revwalk_next(&oid, w) == 0) {
    git_commit* c = nullptr;
    if (git_commit_lookup(&c, impl_->repo.get(), &oid) < 0) continue;
    CommitPtr ch(c);
    out.push_back(commit_of(c));
    if (limit && out.size() >= limit) break;
  }
  return out;
}

Result<std::vector<Commit>> Repository::range_topological(const std::string& from, const std::string& to,
                                                           std::size_t limit) const {
  auto tc = impl_->lookup_commit(to);
  if (!tc) return tc.error();
  auto fc = impl_->lookup_commit(from);
  if (!fc) return fc.error();
  git_revwalk* w = nullptr;
  if (int rc = git_revwalk_new(&w, impl_->repo.get()); rc < 0) return error_status(rc, "rev-list");
  WalkPtr holder(w);
  git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
  git_revwalk_push(w, git_commit_id(tc->get()));
  git_revwalk_hide(w, git_commit_id(fc->get()));
  std::vector<Commit> out;
  git_oid oid;
  while (git_revwalk_next(&oid, w) == 0) {
    if (out.size() >= limit) {
      return Status::invalid_argument(from.substr(0, 12) + ".." + to.substr(0, 12) + " has more than " +
                                      std::to_string(limit) + " commits");
    }
    git_commit* c = nullptr;
    if (int rc = git_commit_lookup(&c, impl_->repo.get(), &oid); rc < 0) return error_status(rc, "rev-list");
    CommitPtr ch(c);
    out.push_back(commit_of(c));
  }
  return out;
}

Result<void> Repository::update_ref(const std::string& ref, const std::string& new_id,
                                    const std::optional<std::string>& expected_old, const std::string& log_message) {
  std::string full = qualify_ref(ref);
  if (!is_valid_ref_name(full)) return Status::invalid_argument("invalid ref name \"" + ref + "\"");
  auto target = impl_->lookup_commit(new_id);
  if (!target) return target.error();
  git_reference* out = nullptr;
  int rc;
  WriteLock lock(impl_->repo.get());
  WriteLock::clear_dead_ref_locks(impl_->repo.get());
  if (expected_old) {
    git_oid old;
    if (git_oid_fromstr(&old, expected_old->c_str()) < 0) {
      return Status::invalid_argument("expected old value \"" + *expected_old + "\" is not a full commit id");
    }
    rc = git_reference_create_matching(&out, impl_->repo.get(), full.c_str(), git_commit_id(target->get()), 1, &old,
                                       log_message.c_str());
  } else {
    rc = git_reference_create(&out, impl_->repo.get(), full.c_str(), git_commit_id(target->get()), 0,
                              log_message.c_str());
  }
  if (rc < 0) {
    auto now = ref_target(full);
    std::string actual = now && now->has_value() ? now->value() : "nothing";
    if (rc == GIT_EMODIFIED || rc == GIT_EEXISTS || rc == GIT_ENOTFOUND) {
      return Status::conflict("ref " + full + " moved: expected " + (expected_old ? *expected_old : "no ref") +
                                  ", found " + actual,
                              "re-read the ref and retry");
    }
    return error_status(rc, "cannot update " + full);
  }
  git_reference_free(out);
  return {};
}

Result<void> Repository::delete_ref(const std::string& ref, const std::string& expected_old) {
  std::string full = qualify_ref(ref);
  WriteLock lock(impl_->repo.get());
  WriteLock::clear_dead_ref_locks(impl_->repo.get());
  git_reference* r = nullptr;
  if (int rc = git_reference_lookup(&r, impl_->repo.get(), full.c_str()); rc < 0) {
    return error_status(rc, "cannot delete " + full);
  }
  RefPtr holder(r);
  const git_oid* cur = git_reference_target(r);
  if (!cur || oid_str(cur) != expected_old) {
    return Status::conflict("ref " + full + " moved: expected " + expected_old + ", found " + (cur ? oid_str(cur) : "symbolic"));
  }
  if (int rc = git_reference_delete(r); rc < 0) return error_status(rc, "cannot delete " + full);
  return {};
}

namespace {
struct PushState {
  std::string rejected;
};
int on_push_update(const char* refname, const char* status, void* payload) {
  if (status) static_cast<PushState*>(payload)->rejected = std::string(refname) + ": " + status;
  return 0;
}
}  // namespace

Result<void> Repository::push(const std::string& url, const std::string& ref, const std::string& expected_old,
                              const std::string& new_id, const PushOptions& options) {
  return push_ref(url, ref, expected_old, new_id, true, options);
}

bool is_local_url(const std::string& url) {
  if (url.starts_with("file://")) return true;
  if (url.find("://") != std::string::npos) return false;
  // scp-like "host:path" is ssh; a path has no ':' before its first '/'.
  auto colon = url.find(':');
  return colon == std::string::npos || url.find('/') < colon;
}

namespace {

std::string local_path(const std::string& url) { return url.starts_with("file://") ? url.substr(7) : url; }

/// Copy into `dst` every object reachable from `tip` that `dst` lacks. A
/// tree already there has all it holds, so the walk stops at it.
Status copy_missing(git_odb* src, git_odb* dst, const git_oid* id) {
  if (git_odb_exists(dst, id)) return {};
  git_odb_object* obj = nullptr;
  if (git_odb_read(&obj, src, id) < 0) return Status::not_found("object " + oid_str(id) + ": " + last_error());
  Ptr<git_odb_object, git_odb_object_free> holder(obj);
  git_object_t type = git_odb_object_type(obj);
  std::vector<git_oid> children;
  if (type == GIT_OBJECT_TREE) {
    const char* data = static_cast<const char*>(git_odb_object_data(obj));
    std::size_t n = git_odb_object_size(obj), i = 0;
    // Entries: "<mode> <name>\0<20-byte id>".
    while (i < n) {
      const char* nul = static_cast<const char*>(std::memchr(data + i, 0, n - i));
      if (!nul || static_cast<std::size_t>(nul - data) + 1 + GIT_OID_RAWSZ > n) break;
      bool gitlink = std::strncmp(data + i, "160000 ", 7) == 0;  // a submodule commit lives elsewhere
      git_oid child;
      git_oid_fromraw(&child, reinterpret_cast<const unsigned char*>(nul + 1));
      if (!gitlink) children.push_back(child);
      i = static_cast<std::size_t>(nul - data) + 1 + GIT_OID_RAWSZ;
    }
  }
  for (const git_oid& c : children) {
    if (Status s = copy_missing(src, dst, &c); !s.ok()) return s;
  }
  git_oid written;
  if (git_odb_write(&written, dst, git_odb_object_data(obj), git_odb_object_size(obj), type) < 0) {
    return Status::unavailable("write object " + oid_str(id) + ": " + last_error());
  }
  return {};
}

/// Commits of `tip` not in `dst`, then their trees and blobs.
Status copy_commits(git_repository* src_repo, git_odb* src, git_odb* dst, const git_oid* tip) {
  git_revwalk* w = nullptr;
  if (git_revwalk_new(&w, src_repo) < 0) return Status::internal("revwalk: " + last_error());
  WalkPtr holder(w);
  git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
  if (git_revwalk_push(w, tip) < 0) return Status::not_found("commit " + oid_str(tip) + ": " + last_error());
  git_oid id;
  std::vector<git_oid> missing;
  // Stop at commits the target has: everything below them is there too.
  git_revwalk_add_hide_cb(w, [](const git_oid* c, void* odb) { return git_odb_exists(static_cast<git_odb*>(odb), c); }, dst);
  while (git_revwalk_next(&id, w) == 0) missing.push_back(id);
  for (const git_oid& c : missing) {
    git_commit* commit = nullptr;
    if (git_commit_lookup(&commit, src_repo, &c) < 0) return Status::not_found("commit " + oid_str(&c) + ": " + last_error());
    CommitPtr ch(commit);
    if (Status s = copy_missing(src, dst, git_commit_tree_id(commit)); !s.ok()) return s;
    if (Status s = copy_missing(src, dst, &c); !s.ok()) return s;
  }
  return {};
}

std::string age_text(std::int64_t seconds) { return std::to_string(seconds) + "s"; }

/// REQUIRES: the target's WriteLock is held, so no pushgate writer is
/// updating `full` there. Its lock file, if older than the stale age, was
/// left by a dead writer: removed (options.warn is told). Younger: a live
/// writer's, unavailable when `young_is_error`.
Status clear_stale_lock(git_repository* target, const std::string& path, const std::string& full,
                        const PushOptions& options, bool young_is_error = true) {
  std::string lock = std::string(git_repository_path(target)) + full + ".lock";
  std::error_code ec;
  if (!std::filesystem::exists(lock, ec)) return {};
  auto mtime = std::filesystem::last_write_time(lock, ec);
  if (ec) return {};
  auto age = std::chrono::duration_cast<std::chrono::seconds>(std::filesystem::file_time_type::clock::now() - mtime).count();
  if (age < options.stale_lock_seconds) {
    if (!young_is_error) return {};
    return Status::unavailable("ref " + full + " on " + path + " is locked by " + lock + " (age " + age_text(age) + ")",
                               "another writer is updating it; retried, and removed once older than " +
                                   age_text(options.stale_lock_seconds));
  }
  auto size = std::filesystem::file_size(lock, ec);
  std::filesystem::remove(lock, ec);
  if (options.warn) {
    options.warn("removed stale ref lock " + lock + " (age " + age_text(age) + ", " + std::to_string(size) +
                 " bytes): its writer is gone");
  }
  return {};
}

}  // namespace

namespace {
/// Connect to `url` for pushing and read the value of `full` there.
Status connect_and_read(git_remote* remote, git_remote_callbacks* cbs, const std::string& url,
                        const std::string& full, std::string& value) {
  if (int rc = git_remote_connect(remote, GIT_DIRECTION_PUSH, cbs, nullptr, nullptr); rc < 0) {
    return Status::unavailable("cannot connect to " + url + ": " + last_error(), "check the URL and that it is reachable");
  }
  const git_remote_head** heads = nullptr;
  size_t n = 0;
  if (git_remote_ls(&heads, &n, remote) < 0) return Status::unavailable("cannot list refs of " + url + ": " + last_error());
  value.clear();
  for (size_t i = 0; i < n; ++i) {
    if (full == heads[i]->name) value = oid_str(&heads[i]->oid);
  }
  return {};
}
}  // namespace

Result<std::optional<std::string>> Repository::remote_ref(const std::string& url, const std::string& ref) {
  git_remote* remote = nullptr;
  if (int rc = git_remote_create_anonymous(&remote, impl_->repo.get(), url.c_str()); rc < 0) {
    return error_status(rc, "invalid url " + url);
  }
  RemotePtr holder(remote);
  git_remote_callbacks cbs = GIT_REMOTE_CALLBACKS_INIT;
  std::string value;
  if (Status s = connect_and_read(remote, &cbs, url, qualify_ref(ref), value); !s.ok()) return s;
  git_remote_disconnect(remote);
  return value.empty() ? std::optional<std::string>{} : std::optional<std::string>(value);
}

Result<void> Repository::push_ref(const std::string& url, const std::string& ref,
                                  const std::optional<std::string>& expected_old,
                                  const std::optional<std::string>& new_id, bool fast_forward_only,
                                  const PushOptions& options) {
  std::string full = qualify_ref(ref);
  if (!is_valid_ref_name(full)) return Status::invalid_argument("invalid ref name \"" + ref + "\"");
  if (fast_forward_only && expected_old && new_id) {
    auto ff = is_ancestor(*expected_old, *new_id);
    if (!ff) return ff.error().with_context("push " + full);
    if (!*ff) {
      return Status::conflict("push " + full + ": " + *new_id + " does not descend from " + *expected_old,
                              "only fast-forward updates are allowed here");
    }
  }
  if (is_local_url(url)) return push_local(url, full, expected_old, new_id, options);
  git_remote* remote = nullptr;
  if (int rc = git_remote_create_anonymous(&remote, impl_->repo.get(), url.c_str()); rc < 0) {
    return error_status(rc, "invalid push url " + url);
  }
  RemotePtr holder(remote);
  PushState st;
  git_remote_callbacks cbs = GIT_REMOTE_CALLBACKS_INIT;
  cbs.push_update_reference = on_push_update;
  cbs.payload = &st;
  std::string remote_value;
  if (Status s = connect_and_read(remote, &cbs, url, full, remote_value); !s.ok()) return s;
  std::string want = expected_old.value_or("");
  if (remote_value != want) {
    git_remote_disconnect(remote);
    return Status::conflict("update of " + full + " on " + url + " refused: it is " +
                                (remote_value.empty() ? "absent" : remote_value) + ", expected " +
                                (want.empty() ? "absent" : want),
                            "someone else moved it meanwhile; nothing was changed");
  }
  // libgit2 pushes from a local ref: use a private temporary one, held under
  // the write lock so a concurrent push from this mirror cannot swap it.
  WriteLock lock(impl_->repo.get());
  WriteLock::clear_dead_ref_locks(impl_->repo.get());
  const std::string tmp = "refs/pushgate/push-source";
  std::string spec;
  RefPtr tmpholder;
  if (new_id) {
    git_oid nid;
    if (git_oid_fromstr(&nid, new_id->c_str()) < 0) return Status::invalid_argument("not a full commit id: " + *new_id);
    git_reference* tmpref = nullptr;
    if (int rc = git_reference_create(&tmpref, impl_->repo.get(), tmp.c_str(), &nid, 1, "pushgate: push source");
        rc < 0) {
      return error_status(rc, "prepare push");
    }
    tmpholder.reset(tmpref);
    spec = (fast_forward_only ? "" : "+") + tmp + ":" + full;
  } else {
    spec = ":" + full;
  }
  const char* specs[] = {spec.c_str()};
  git_strarray refspecs{const_cast<char**>(specs), 1};
  git_push_options opts = GIT_PUSH_OPTIONS_INIT;
  opts.callbacks = cbs;
  int rc = git_remote_upload(remote, &refspecs, &opts);
  std::string upload_error = rc < 0 ? last_error() : "";
  if (tmpholder) git_reference_delete(tmpholder.get());
  git_remote_disconnect(remote);
  if (rc < 0) return Status::unavailable("push " + full + " to " + url + " failed: " + upload_error);
  // libgit2 returns success even when the server refused the ref.
  // The server's words, verbatim: whether the ref moved is for the caller
  // to find out by reading it again (a lock or a hook is not a move).
  if (!st.rejected.empty()) {
    return Status::unavailable("push to " + url + " rejected by the server: " + st.rejected,
                               "read the ref again: moved means refused, unchanged means retry");
  }
  return {};
}

namespace {
/// The repository a local push URL names.
Result<RepoPtr> open_local_target(const std::string& path) {
  ensure_init();
  git_repository* raw = nullptr;
  if (git_repository_open_ext(&raw, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) < 0) {
    return Status::unavailable("cannot open push target " + path + ": " + last_error(), "check the push URL");
  }
  return RepoPtr(raw);
}
}  // namespace

Status clear_stale_ref_lock(const std::string& url, const std::string& ref, const PushOptions& options) {
  if (!is_local_url(url)) return {};
  std::string path = local_path(url);
  auto target = open_local_target(path);
  if (!target) return target.error();
  WriteLock turn(target->get());
  return clear_stale_lock(target->get(), path, qualify_ref(ref), options, /*young_is_error=*/false);
}

Result<void> Repository::push_local(const std::string& url, const std::string& full,
                                    const std::optional<std::string>& expected_old,
                                    const std::optional<std::string>& new_id, const PushOptions& options) {
  std::string path = local_path(url);
  auto opened = open_local_target(path);
  if (!opened) return opened.error();
  RepoPtr target = std::move(*opened);
  // pushgate's writers of this target take turns: while we hold this, a ref
  // lock file of theirs can only be a dead writer's.
  WriteLock turn(target.get());
  git_oid nid, oid_old;
  if (new_id && git_oid_fromstr(&nid, new_id->c_str()) < 0) return Status::invalid_argument("not a full commit id: " + *new_id);
  if (expected_old && git_oid_fromstr(&oid_old, expected_old->c_str()) < 0) {
    return Status::invalid_argument("expected old value \"" + *expected_old + "\" is not a full commit id");
  }
  if (new_id) {
    git_odb *src = nullptr, *dst = nullptr;
    if (git_repository_odb(&src, impl_->repo.get()) < 0 || git_repository_odb(&dst, target.get()) < 0) {
      if (src) git_odb_free(src);
      return Status::unavailable("cannot open object databases: " + last_error());
    }
    Ptr<git_odb, git_odb_free> sh(src), dh(dst);
    if (Status s = copy_commits(impl_->repo.get(), src, dst, &nid); !s.ok()) return s.with_context("push to " + path);
  }
  if (Status s = clear_stale_lock(target.get(), path, full, options); !s.ok()) return s;
  git_reference* out = nullptr;
  int rc;
  std::string msg = "pushgate: push";
  if (!new_id) {
    git_reference* r = nullptr;
    rc = git_reference_lookup(&r, target.get(), full.c_str());
    if (rc == 0) {
      RefPtr h(r);
      const git_oid* cur = git_reference_target(r);
      if (!expected_old || !cur || !git_oid_equal(cur, &oid_old)) rc = GIT_EMODIFIED;
      else rc = git_reference_delete(r);  // libgit2 checks the value under the lock
    }
  } else if (expected_old) {
    rc = git_reference_create_matching(&out, target.get(), full.c_str(), &nid, 1, &oid_old, msg.c_str());
  } else {
    rc = git_reference_create(&out, target.get(), full.c_str(), &nid, 0, msg.c_str());
  }
  if (out) git_reference_free(out);
  if (rc == GIT_EMODIFIED || rc == GIT_EEXISTS || (rc == GIT_ENOTFOUND && expected_old)) {
    git_reference* now = nullptr;
    std::string actual = "absent";
    if (git_reference_lookup(&now, target.get(), full.c_str()) == 0) {
      RefPtr h(now);
      if (const git_oid* t = git_reference_target(now)) actual = oid_str(t);
    }
    return Status::conflict("update of " + full + " on " + path + " refused: it is " + actual + ", expected " +
                                expected_old.value_or("absent"),
                            "someone else moved it meanwhile; nothing was changed");
  }
  if (rc < 0) return error_status(rc, "update " + full + " on " + path);
  return {};
}

}  // namespace pushgate::git
