// Child processes for steps: posix_spawn into a new process group, the
// pidfd awaited on the io_context, a steady_timer watchdog that kills the
// whole group on timeout.

#include <pushgate/hosts.hpp>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>


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

void append_log(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << (line.ends_with('\n') ? "" : "\n");
}

asio::awaitable<ProcessResult> run_process(ProcessSpec spec, Cancellation& cancel) {
  ProcessResult result;
  auto ex = co_await asio::this_coro::executor;
  std::error_code fec;
  if (std::filesystem::path(spec.log_path).has_parent_path()) {
    std::filesystem::create_directories(std::filesystem::path(spec.log_path).parent_path(), fec);
  }
  if (!spec.cwd.empty()) std::filesystem::create_directories(spec.cwd, fec);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, spec.cwd.c_str());
  // Steps get stdin/stdout/stderr only: no listening sockets, database or
  // lock files of ours (a step outliving a killed daemon would hold them).
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  // An allow-list, never a copy of the controller's environment.
  std::vector<std::string> envs;
  for (const std::vector<std::string>* names : {&kInheritedEnv, static_cast<const std::vector<std::string>*>(&spec.inherit)}) {
    for (const std::string& name : *names) {
      const char* v = std::getenv(name.c_str());
      if (v && !spec.env.count(name)) envs.push_back(name + "=" + v);
    }
  }
  for (const auto& [k, v] : spec.env) envs.push_back(k + "=" + v);
  std::vector<char*> cargv, cenv;
  for (auto& a : spec.argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  pid_t pid = -1;
  int rc = cancel.cancelled() ? ECANCELED
                              : posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    result.cancelled = rc == ECANCELED;
    result.error = result.cancelled ? "cancelled" : "cannot start " + spec.argv[0] + ": " + std::strerror(rc);
    co_return result;
  }
  if (!cancel.add(pid)) ::kill(-pid, SIGKILL);  // cancelled between the check and the spawn

  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  asio::steady_timer watchdog(ex, std::chrono::seconds(spec.timeout_seconds));
  bool timed_out = false;
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
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::kill(-pid, SIGKILL);  // whatever the step left behind in its group
  bool killed_by_us = cancel.remove(pid);
  result.timed_out = timed_out;
  result.cancelled = !timed_out && (killed_by_us || cancel.cancelled());
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  co_return result;
}

asio::awaitable<StepOutcome> run_on_controller(const std::string& command, const std::string& fail_status,
                                               StepContext& ctx) {
  ProcessSpec spec{{"/bin/sh", "-c", command}, ctx.env, ctx.workdir, ctx.log_path, ctx.timeout_seconds, ctx.inherit};
  ProcessResult r = co_await run_process(std::move(spec), *ctx.cancel);
  if (r.ok()) co_return StepOutcome::pass();
  if (!r.error.empty() || r.cancelled) co_return StepOutcome::broken(r.describe());
  if (r.timed_out) co_return StepOutcome{fail_status, "timed out after " + std::to_string(ctx.timeout_seconds) + "s"};
  co_return StepOutcome{fail_status, r.describe()};
}

}  // namespace pushgate::hosts
