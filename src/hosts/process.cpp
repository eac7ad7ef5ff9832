// Child processes for steps: fork + execve into a new process group (and
// the step's cgroup, before the child can fork), output read through a pipe
// into the capped log, the pidfd awaited on the io_context, a steady_timer
// watchdog that kills the whole group on timeout.

#include <pushgate/hosts.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>


namespace pushgate::hosts {

void Cancellation::drain() {
  std::lock_guard lock(mutex_);
  draining_ = true;
}

void Cancellation::cut() {
  std::lock_guard lock(mutex_);
  if (killed_running_) return;  // once: cleanup steps started after it must run
  draining_ = killed_running_ = true;
  for (int g : groups_) {
    ::kill(-g, SIGKILL);
    killed_.insert(g);
  }
}

void Cancellation::cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = draining_ = killed_running_ = true;
  for (int g : groups_) {
    ::kill(-g, SIGKILL);
    killed_.insert(g);
  }
}

bool Cancellation::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

bool Cancellation::draining() const {
  std::lock_guard lock(mutex_);
  return draining_;
}

bool Cancellation::killed_running() const {
  std::lock_guard lock(mutex_);
  return killed_running_;
}

bool Cancellation::add(int pgid) {
  std::lock_guard lock(mutex_);
  if (cancelled_) return false;
  groups_.insert(pgid);
  return true;
}

bool Cancellation::remove(int pgid) {
  std::lock_guard lock(mutex_);
  groups_.erase(pgid);
  return killed_.erase(pgid) > 0;
}

std::string ProcessResult::describe() const {
  if (!error.empty()) return error;
  if (cancelled) return "cancelled";
  if (timed_out) return "timed out";
  if (signal) return "killed by signal " + std::to_string(signal);
  return "exit status " + std::to_string(exit_code);
}

std::string log_stamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ ", &tm);
  return buf;
}

void append_log(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::app);
  std::istringstream lines(text);
  const std::string stamp = log_stamp();
  for (std::string line; std::getline(lines, line);) out << stamp << line << "\n";
}

namespace {

/// The step's output on its way to the log: written as it comes up to the
/// head budget, then only the newest `tail` bytes are kept (a ring), written
/// after a marker when the step ends. A write error (disk full, file size
/// limit) is remembered; output is still read so the step never blocks.
class LogSink {
 public:
  LogSink(int fd, std::int64_t max_bytes)
      : fd_(fd), head_(max_bytes > 0 ? max_bytes / 2 : -1), tail_(max_bytes > 0 ? max_bytes - max_bytes / 2 : 0) {}

  /// Output as read: each line starts with the UTC time its first byte came.
  void put(const char* data, std::size_t n) {
    std::string stamp;
    while (n > 0) {
      if (line_start_) {
        if (stamp.empty()) stamp = log_stamp();
        raw(stamp.data(), stamp.size());
        line_start_ = false;
      }
      const char* nl = static_cast<const char*>(std::memchr(data, '\n', n));
      std::size_t len = nl ? static_cast<std::size_t>(nl - data) + 1 : n;
      raw(data, len);
      line_start_ = nl != nullptr;
      data += len;
      n -= len;
    }
  }

 private:
  void raw(const char* data, std::size_t n) {
    if (head_ < 0 || written_ + static_cast<std::int64_t>(n) <= head_) {
      write_all(data, n);
      written_ += static_cast<std::int64_t>(n);
      return;
    }
    std::size_t room = static_cast<std::size_t>(head_ - written_);
    if (room) {
      write_all(data, room);
      written_ += static_cast<std::int64_t>(room);
      data += room;
      n -= room;
    }
    if (ring_.empty()) ring_.resize(static_cast<std::size_t>(tail_));
    for (std::size_t i = 0; i < n; ++i) {
      ring_[pos_] = data[i];
      pos_ = (pos_ + 1) % ring_.size();
    }
    over_ += static_cast<std::int64_t>(n);
  }


 public:
  /// Writes the kept tail; returns how many bytes were left out.
  std::int64_t finish() {
    if (over_ == 0) return 0;
    std::int64_t cut = over_ > tail_ ? over_ - tail_ : 0;
    if (cut > 0) {
      std::string mark = "\n[pushgate: " + std::to_string(cut) + " bytes of output cut here; the log keeps the first " +
                         std::to_string(head_) + " and the last " + std::to_string(tail_) + " bytes]\n";
      write_all(mark.data(), mark.size());
      write_all(ring_.data() + pos_, ring_.size() - pos_);
      write_all(ring_.data(), pos_);
    } else {
      write_all(ring_.data(), static_cast<std::size_t>(over_));
    }
    return cut;
  }

  const std::string& error() const { return error_; }

 private:
  void write_all(const char* p, std::size_t n) {
    while (n > 0 && error_.empty()) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        error_ = std::strerror(w < 0 ? errno : ENOSPC);
        return;
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  int fd_;
  bool line_start_ = true;
  std::int64_t head_, tail_;
  std::int64_t written_ = 0, over_ = 0;
  std::string ring_;
  std::size_t pos_ = 0;
  std::string error_;
};

/// argv[0] as execve needs it: a path, searched in the child's PATH.
std::string resolve_program(const std::string& name, const std::string& path) {
  if (name.find('/') != std::string::npos) return name;
  std::stringstream dirs(path.empty() ? "/usr/local/bin:/usr/bin:/bin" : path);
  std::string d;
  while (std::getline(dirs, d, ':')) {
    std::string candidate = (d.empty() ? "." : d) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

/// Less than this free on the log's or the work directory's filesystem
/// after a step that did not pass: the controller's disk was full.
constexpr std::uint64_t kDiskFullBytes = 256 * 1024;

std::string disk_full(const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    if (d.empty()) continue;
    struct statvfs v {};
    if (::statvfs(d.c_str(), &v) == 0 && static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize < kDiskFullBytes) {
      return "no space left on the controller's disk (" + d + ")";
    }
  }
  return "";
}

}  // namespace

asio::awaitable<ProcessResult> run_process(ProcessSpec spec, Cancellation& cancel) {
  // A full log file must be an error pushgate sees (EFBIG), not a signal
  // that kills the daemon; steps get the default back below.
  static std::once_flag ignore_xfsz;
  std::call_once(ignore_xfsz, [] { ::signal(SIGXFSZ, SIG_IGN); });

  ProcessResult result;
  auto ex = co_await asio::this_coro::executor;
  std::error_code fec;
  if (std::filesystem::path(spec.log_path).has_parent_path()) {
    std::filesystem::create_directories(std::filesystem::path(spec.log_path).parent_path(), fec);
  }
  if (!spec.cwd.empty()) std::filesystem::create_directories(spec.cwd, fec);
  if (spec.argv.empty()) {
    result.error = "nothing to run";
    co_return result;
  }

  int logfd = ::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logfd < 0) {
    result.error = "cannot open the step's log " + spec.log_path + ": " + std::strerror(errno);
    co_return result;
  }
  struct FdGuard {
    int fd;
    ~FdGuard() {
      if (fd >= 0) ::close(fd);
    }
  } log_guard{logfd};

  // An allow-list, never a copy of the controller's environment.
  std::vector<std::string> envs;
  std::string child_path;
  for (const std::vector<std::string>* names : {&kInheritedEnv, static_cast<const std::vector<std::string>*>(&spec.inherit)}) {
    for (const std::string& name : *names) {
      const char* v = std::getenv(name.c_str());
      if (v && !spec.env.count(name)) envs.push_back(name + "=" + v);
    }
  }
  for (const auto& [k, v] : spec.env) envs.push_back(k + "=" + v);
  if (!spec.place.tag.empty()) envs.push_back("PUSHGATE_STEP_TAG=" + spec.place.tag);
  for (const auto& e : envs) {
    if (e.starts_with("PATH=")) child_path = e.substr(5);
  }
  std::string program = resolve_program(spec.argv[0], child_path);
  if (program.empty()) {
    result.error = "cannot start " + spec.argv[0] + ": not found in PATH";
    co_return result;
  }
  std::vector<char*> cargv, cenv;
  for (auto& a : spec.argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  int out[2], status_pipe[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    result.error = std::string("cannot make a pipe: ") + std::strerror(errno);
    co_return result;
  }
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) {
    result.error = std::string("cannot make a pipe: ") + std::strerror(errno);
    ::close(out[0]);
    ::close(out[1]);
    co_return result;
  }
  int nullfd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int cgfd = -1;
  if (!spec.place.cgroup_dir.empty()) {
    std::filesystem::create_directories(spec.place.cgroup_dir, fec);
    cgfd = ::open((spec.place.cgroup_dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (cgfd < 0) spec.place.cgroup_dir.clear();  // the tag still finds the step's processes
  }
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();

  pid_t pid = cancel.cancelled() ? -1 : ::fork();
  if (pid == 0) {
    // The child: async-signal-safe calls only, until execve.
    int err = 0;
    if (cgfd >= 0 && ::write(cgfd, "0", 1) != 1) err = errno;  // into the step's cgroup, before anything forks
    ::setpgid(0, 0);
    if (!err && nullfd >= 0 && ::dup2(nullfd, 0) < 0) err = errno;
    if (!err && ::dup2(out[1], 1) < 0) err = errno;
    if (!err && ::dup2(out[1], 2) < 0) err = errno;
    if (!err && cwd && ::chdir(cwd) != 0) err = errno;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGXFSZ, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Steps get stdin/stdout/stderr only: no listening sockets, database or
    // lock files of ours (a step outliving a killed daemon would hold them).
    // The status pipe is close-on-exec: it tells the parent exec happened.
    int status_fd = status_pipe[1];
    if (!err) {
      if (status_fd != 3) {
        status_fd = ::dup2(status_pipe[1], 3) == 3 ? 3 : -1;
        if (status_fd == 3) ::fcntl(3, F_SETFD, FD_CLOEXEC);
      }
      if (::syscall(SYS_close_range, 4u, ~0u, 0u) != 0) {
        for (int fd = 4; fd < 4096; ++fd) ::close(fd);
      }
      ::execve(program.c_str(), cargv.data(), cenv.data());
      err = errno;
    }
    if (status_fd >= 0) (void)!::write(status_fd, &err, sizeof err);
    ::_exit(127);
  }
  int fork_errno = pid < 0 ? errno : 0;
  ::close(out[1]);
  ::close(status_pipe[1]);
  if (nullfd >= 0) ::close(nullfd);
  if (cgfd >= 0) ::close(cgfd);
  if (pid < 0) {
    ::close(out[0]);
    ::close(status_pipe[0]);
    result.cancelled = cancel.cancelled();
    result.error = result.cancelled ? "cancelled" : std::string("cannot start ") + spec.argv[0] + ": " + std::strerror(fork_errno);
    co_return result;
  }
  ::setpgid(pid, pid);  // also here, so the group exists whichever runs first
  int exec_err = 0;
  ssize_t got;
  do {
    got = ::read(status_pipe[0], &exec_err, sizeof exec_err);
  } while (got < 0 && errno == EINTR);
  ::close(status_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof exec_err)) {
    ::close(out[0]);
    ::waitpid(pid, nullptr, 0);
    result.error = "cannot start " + spec.argv[0] + ": " + std::strerror(exec_err);
    co_return result;
  }
  if (!cancel.add(pid)) ::kill(-pid, SIGKILL);  // cancelled between the check and the spawn

  // Output: read on the io_context as it comes.
  struct Reader {
    asio::posix::stream_descriptor sd;
    LogSink sink;
    bool done = false;
    asio::steady_timer finished;
    Reader(asio::any_io_executor e, int fd, int log, std::int64_t cap)
        : sd(e, fd), sink(log, cap), finished(e, asio::steady_timer::time_point::max()) {}
  };
  auto reader = std::make_shared<Reader>(ex, out[0], logfd, spec.log_max_bytes);
  asio::co_spawn(
      ex,
      [reader]() -> asio::awaitable<void> {
        char buf[65536];
        for (;;) {
          boost::system::error_code ec;
          std::size_t n = co_await reader->sd.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
          if (n) reader->sink.put(buf, n);
          if (ec) break;
        }
        reader->done = true;
        reader->finished.cancel();
      },
      asio::detached);

  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  asio::steady_timer watchdog(ex, std::chrono::seconds(spec.timeout_seconds));
  bool timed_out = false;
  // Until the main process is reaped its pid (the group's id) cannot be
  // reused, so kill(-pid) can only reach the step's own group.
  watchdog.async_wait([&timed_out, pid](const boost::system::error_code& ec) {
    if (ec) return;
    timed_out = true;
    ::kill(-pid, SIGKILL);
  });
  if (pidfd >= 0) {
    asio::posix::stream_descriptor sd(ex, pidfd);  // owns and closes the pidfd
    boost::system::error_code ec;
    co_await sd.async_wait(asio::posix::stream_descriptor::wait_read,
                           asio::redirect_error(asio::use_awaitable, ec));
  } else {
    // No pidfd (old kernel): poll the child on the timer.
    asio::steady_timer poll(ex);
    for (;;) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == pid) break;
      poll.expires_after(std::chrono::milliseconds(50));
      co_await poll.async_wait(asio::use_awaitable);
    }
  }
  watchdog.cancel();
  // The main process has exited and is not reaped yet: whatever it left
  // behind goes now, in its group, its cgroup, or tagged (setsid escapees).
  ::kill(-pid, SIGKILL);
  bool killed_by_us = cancel.remove(pid);
  int status = 0;
  ::waitpid(pid, &status, 0);
  kill_placement(spec.place);
  // The pipe closes when the last writer is gone; a writer we could not
  // kill (no cgroup, no tag) must not hold the step forever.
  if (!reader->done) {
    reader->finished.expires_after(std::chrono::seconds(2));
    boost::system::error_code ec;
    co_await reader->finished.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!reader->done) {
      reader->sd.close(ec);
      while (!reader->done) {
        asio::steady_timer t(ex, std::chrono::milliseconds(5));
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }
  }
  result.log_bytes_cut = reader->sink.finish();
  result.timed_out = timed_out;
  result.cancelled = !timed_out && (killed_by_us || cancel.cancelled());
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  // Infrastructure, not the code under test (SPEC section 4: broken).
  if (!reader->sink.error().empty()) {
    result.error = "cannot write the step's log " + spec.log_path + ": " + reader->sink.error();
  } else if (result.signal == SIGXFSZ) {
    result.error = "killed by SIGXFSZ: a file size limit on the controller";
  } else if (!result.ok() && !result.cancelled) {
    result.error = disk_full({std::filesystem::path(spec.log_path).parent_path().string(), spec.cwd});
  }
  co_return result;
}

asio::awaitable<StepOutcome> run_on_controller(const std::string& command, const std::string& fail_status,
                                               StepContext& ctx) {
  ProcessSpec spec{{"/bin/sh", "-c", command}, ctx.env, ctx.workdir, ctx.log_path, ctx.timeout_seconds, ctx.inherit,
                   ctx.place, ctx.log_max_bytes};
  ProcessResult r = co_await run_process(std::move(spec), *ctx.cancel);
  if (r.ok()) co_return StepOutcome::pass();
  if (!r.error.empty() || r.cancelled) co_return StepOutcome::broken(r.describe());
  if (r.timed_out) co_return StepOutcome{fail_status, "timed out after " + std::to_string(ctx.timeout_seconds) + "s"};
  co_return StepOutcome{fail_status, r.describe()};
}

}  // namespace pushgate::hosts
