#pragma once
// Test support: temporary directories, running real child processes, and
// building real git repositories with libgit2.

#include <cstdint>
#include <filesystem>
#include <map>
#include <thread>
#include <mutex>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace pushgate::test {

/// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str(const std::string& rel = "") const { return rel.empty() ? path_.string() : (path_ / rel).string(); }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& p, const std::string& text);
std::string read_file(const std::filesystem::path& p);

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

/// Run argv as a child process (no shell) and wait; `env` entries are added.
RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
              const std::string& cwd = "");
/// Run the pushgate binary under test with these arguments.
RunResult pushgate(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {});
/// Path of the built pushgate binary.
std::string pushgate_binary();
/// tests/data directory.
std::filesystem::path data_dir();
/// Repository top directory.
std::filesystem::path source_dir();

/// A background child process in its own process group; the whole group
/// is killed (SIGKILL) and reaped on destruction.
class Background {
 public:
  explicit Background(const std::vector<std::string>& argv, const std::string& log_path = "/dev/null");
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  int pid() const { return pid_; }
  /// Wait for the process to exit; its exit code, or -1 after `timeout_ms`.
  int wait(int timeout_ms);
  /// Send a signal to the process itself (not its group).
  void signal(int sig);

 private:
  int pid_ = -1;
  bool reaped_ = false;
};

/// A free TCP port on 127.0.0.1 (bound once, then released).
int free_port();
/// Wait until something accepts connections on 127.0.0.1:port.
bool wait_for_port(int port, int timeout_ms = 5000);

/// One HTTP/1.1 request to 127.0.0.1:port over a real socket (Connection: close).
struct HttpResult {
  int status = 0;  ///< 0 when the connection failed
  std::string body;
  std::string headers;  ///< the status line and header lines, as received
};
HttpResult http(int port, const std::string& method, const std::string& target, const std::string& body = "",
                const std::map<std::string, std::string>& headers = {});

/// A real receiver of notifications on 127.0.0.1: an HTTP server that
/// records each request and answers `status`, or an SMTP server that
/// records each message (envelope and data, dots unstuffed). Runs on a
/// thread of its own until destroyed.
class Receiver {
 public:
  enum class Protocol { http, smtp };
  struct Message {
    std::string request;     ///< HTTP: "POST /path"
    std::string headers;     ///< HTTP: header lines as received
    std::string mail_from;   ///< SMTP: MAIL FROM's address
    std::vector<std::string> rcpt;  ///< SMTP: RCPT TO addresses
    std::string body;        ///< HTTP body, or the mail as received in DATA
  };
  explicit Receiver(Protocol protocol, int status = 200);
  ~Receiver();
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;
  int port() const { return port_; }
  void set_status(int status);  ///< HTTP: the answer from now on
  std::vector<Message> messages() const;
  /// Wait until `n` messages arrived (false on timeout).
  bool wait_for(std::size_t n, int timeout_ms = 10000) const;

 private:
  void serve();
  void http_session(int fd);
  void smtp_session(int fd);
  Protocol protocol_;
  int listen_fd_ = -1, port_ = 0;
  std::atomic<int> status_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Message> messages_;  // GUARDED_BY(mutex_)
  std::thread thread_;
};

/// Headless Chromium's command line (no sandbox, no network chatter), its
/// profile in `profile_dir`; add --dump-dom or --screenshot=F and a URL.
std::vector<std::string> chromium(const std::string& profile_dir, const std::string& window = "1200,700");
/// `chrome` with `flags` and then `url` (one Chromium run's argv).
std::vector<std::string> with_url(std::vector<std::string> chrome, const std::string& url,
                                  const std::vector<std::string>& flags);
/// Where tests keep screenshots for people to look at: under the build
/// directory (build/tests/test-artifacts), never the checkout. Created.
std::filesystem::path artifacts_dir();

/// `git daemon` serving every repository under `base` on 127.0.0.1, with
/// push enabled. url("x.git") gives git://127.0.0.1:PORT/x.git.
class GitDaemon {
 public:
  explicit GitDaemon(const std::string& base);
  std::string url(const std::string& repo) const;
  bool ok() const { return ok_; }

 private:
  int port_;
  bool ok_ = false;
  std::unique_ptr<Background> proc_;
};

/// A libvirtd of the test's own: run as user nobody in session mode under a
/// fresh directory in /tmp, so a test can stop it (SIGSTOP) or migrate to
/// it without touching the system libvirtd other tests use. It serves the
/// qemu driver (session) and the test driver. Needs root (to drop to
/// nobody) and libvirtd; `reason` says why not when !ok().
class PrivateLibvirtd {
 public:
  PrivateLibvirtd();
  ~PrivateLibvirtd();  ///< resumes, kills and removes it
  PrivateLibvirtd(const PrivateLibvirtd&) = delete;
  PrivateLibvirtd& operator=(const PrivateLibvirtd&) = delete;
  bool ok() const { return ok_; }
  const std::string& reason() const { return reason_; }
  /// "qemu+unix:///session?socket=..." or "test+unix:///default?socket=...".
  std::string uri(const std::string& driver) const;
  int pid() const;
  void stop();    ///< SIGSTOP: it accepts nothing, answers nothing
  void resume();  ///< SIGCONT

 private:
  std::filesystem::path dir_;
  std::unique_ptr<Background> proc_;
  bool ok_ = false;
  std::string reason_;
};

/// Column `col` of every row `sql` returns on the SQLite database at
/// `path`, one per line (a connection of its own).
std::string column_lines(const std::string& path, const std::string& sql, int col);
/// The first line of `sql`'s plan that reads a table growing with history
/// in full (SCAN of steps, jobs, runvars, flights, attempts, pushes, events,
/// audit, verdicts), or empty. Allowed: a partial index holding only rows
/// in a current state (jobs_active, flights_unfinished), and an unfiltered
/// newest-first list walked in key order and stopped by its LIMIT.
std::string history_scan(const std::string& db_path, const std::string& sql);

/// A bare repository at `path` with a history of `commits` commits on
/// master, written through `git fast-import` (fast at 100k+ commits): each
/// commit changes one of 2000 files; every `merge_every`th commit merges a
/// side branch of 3 commits; an annotated tag v1, v2, ... every
/// `tag_every` commits. Deterministic.
/// Whether JSON `body` follows schemas/`schema` (valijson); empty when it
/// does, else the reasons and the body.
std::string schema_errors(const std::string& schema, const std::string& body);

void generate_history(const std::string& path, int commits, int tag_every = 300, int merge_every = 1000);

/// Builds commits, branches and tags in a real repository with libgit2.
/// Commits are deterministic: author "Test <test@example.org>", times
/// increasing from a fixed start.
class GitRepoBuilder {
 public:
  /// Create (or open) a bare repository at `path`.
  explicit GitRepoBuilder(const std::string& path);
  ~GitRepoBuilder();
  GitRepoBuilder(const GitRepoBuilder&) = delete;
  GitRepoBuilder& operator=(const GitRepoBuilder&) = delete;

  /// New commit with `files` (path -> content, merged over the parent's tree)
  /// on top of `parents` (ids); returns its id. Does not move any ref.
  std::string commit(const std::string& message, const std::vector<std::string>& parents,
                     const std::map<std::string, std::string>& files = {},
                     const std::string& author = "Test Author <author@example.org>");
  /// Commit on top of branch `branch` (created if missing) and move it.
  std::string commit_on(const std::string& branch, const std::string& message,
                        const std::map<std::string, std::string>& files = {},
                        const std::string& author = "Test Author <author@example.org>");
  void set_branch(const std::string& branch, const std::string& id);
  void lightweight_tag(const std::string& name, const std::string& id);
  void annotated_tag(const std::string& name, const std::string& id, const std::string& message = "release");
  std::string head_of(const std::string& branch) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  void* repo_ = nullptr;
  std::int64_t time_ = 1700000000;
};

}  // namespace pushgate::test
