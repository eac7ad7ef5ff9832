// Delivering outbox rows: mail through sendmail or SMTP (libcurl), webhooks
// (libcurl), commands (a shell child with the body on stdin). libcurl is
// the one library here that speaks SMTP with STARTTLS and AUTH as well as
// HTTP(S); Debian packages it (libcurl4-openssl-dev).

#include <pushgate/hosts.hpp>
#include <pushgate/notify.hpp>

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>

extern char** environ;

namespace pushgate::notify {
namespace {

using nlohmann::json;

constexpr std::size_t kOutputCap = 16 << 10;

struct ChildResult {
  int exit_code = -1;
  bool timed_out = false;
  std::string output;  ///< stdout and stderr, the first kOutputCap bytes
  std::string error;   ///< pushgate's side failed (fork, pipe)
};

/// `/bin/sh -c command` in its own process group, `input` on its stdin,
/// stdout and stderr captured, killed (with its group) at the deadline.
/// The environment: the controller's PATH, HOME, LANG... (as for steps,
/// never the daemon's secrets) and `vars`.
ChildResult run_shell(const std::string& command, const std::map<std::string, std::string>& vars, const std::string& input,
                      int timeout_seconds, const std::string& cwd) {
  ChildResult r;
  std::vector<std::string> env;
  for (const auto& name : hosts::kInheritedEnv) {
    if (const char* v = std::getenv(name.c_str())) env.push_back(name + "=" + v);
  }
  for (const auto& [k, v] : vars) env.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return {-1, false, "", std::string("pipe: ") + std::strerror(errno)};
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return {-1, false, "", std::string("pipe: ") + std::strerror(errno)};
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
    return {-1, false, "", std::string("fork: ") + std::strerror(errno)};
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) _exit(126);
    ::execle("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr), envp.data());
    _exit(127);
  }
  ::setpgid(pid, pid);
  ::close(in[0]);
  ::close(out[1]);
  // Writing to a child that stopped reading must not kill pushgate: SIGPIPE
  // is blocked on this thread while it writes, and a pending one taken.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  std::size_t written = 0;
  int wfd = in[1], rfd = out[0];
  if (input.empty()) {
    ::close(wfd);
    wfd = -1;
  }
  while (rfd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      r.timed_out = true;
      break;
    }
    pollfd fds[2];
    int nfds = 0;
    fds[nfds++] = {rfd, POLLIN, 0};
    if (wfd >= 0) fds[nfds++] = {wfd, POLLOUT, 0};
    if (::poll(fds, static_cast<nfds_t>(nfds), static_cast<int>(std::min<long long>(left, 1000))) < 0) {
      if (errno == EINTR) continue;
      r.error = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (wfd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(wfd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        ::close(wfd);
        wfd = -1;
      }
    }
    if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
      char buf[4096];
      ssize_t n = ::read(rfd, buf, sizeof buf);
      if (n > 0) {
        if (r.output.size() < kOutputCap) r.output.append(buf, std::min(static_cast<std::size_t>(n), kOutputCap - r.output.size()));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(rfd);
        rfd = -1;
      }
    }
  }
  if (wfd >= 0) ::close(wfd);
  if (rfd >= 0) ::close(rfd);
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, r.timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (r.timed_out || std::chrono::steady_clock::now() >= deadline) {
      r.timed_out = true;
      ::kill(-pid, SIGKILL);
      continue;
    }
    ::usleep(10000);
  }
  if (r.timed_out) ::kill(-pid, SIGKILL);  // what it left running
  timespec zero{0, 0};
  while (::sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (s.size() > 2000) s = s.substr(0, 2000) + "...";
  return s;
}

Status child_status(const std::string& what, const ChildResult& c, int timeout) {
  if (!c.error.empty()) return Status::internal(what + ": " + c.error);
  if (c.timed_out) return Status::unavailable(what + ": no answer in " + std::to_string(timeout) + "s, killed");
  if (c.exit_code != 0) {
    std::string out = trimmed(c.output);
    return Status::unavailable(what + " exited " + std::to_string(c.exit_code) + (out.empty() ? "" : ": " + out));
  }
  return {};
}

void curl_global() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Curl {
  CURL* h = nullptr;
  curl_slist* list = nullptr;
  curl_slist* rcpt = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  Curl() {
    curl_global();
    h = curl_easy_init();
  }
  ~Curl() {
    curl_slist_free_all(list);
    curl_slist_free_all(rcpt);
    if (h) curl_easy_cleanup(h);
  }
  Curl(const Curl&) = delete;
  Curl& operator=(const Curl&) = delete;
};

struct Upload {
  const std::string* data;
  std::size_t at = 0;
};

std::size_t read_upload(char* buf, std::size_t size, std::size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  std::size_t len = std::min(size * n, u->data->size() - u->at);
  std::memcpy(buf, u->data->data() + u->at, len);
  u->at += len;
  return len;
}

std::size_t keep_body(char* buf, std::size_t size, std::size_t n, void* user) {
  auto* s = static_cast<std::string*>(user);
  if (s->size() < kOutputCap) s->append(buf, std::min(size * n, kOutputCap - s->size()));
  return size * n;
}

void common(Curl& c, int timeout) {
  curl_easy_setopt(c.h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.h, CURLOPT_ERRORBUFFER, c.error);
  curl_easy_setopt(c.h, CURLOPT_TIMEOUT, static_cast<long>(timeout));
  curl_easy_setopt(c.h, CURLOPT_CONNECTTIMEOUT, static_cast<long>(std::min(timeout, 10)));
}

std::string curl_error(const Curl& c, CURLcode code) {
  return c.error[0] ? std::string(c.error) : std::string(curl_easy_strerror(code));
}

std::vector<std::string> recipients(const std::string& target) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < target.size()) {
    std::size_t comma = target.find(',', at);
    std::string one = target.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    while (!one.empty() && one.front() == ' ') one.erase(0, 1);
    while (!one.empty() && one.back() == ' ') one.pop_back();
    if (!one.empty()) out.push_back(one);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

Status send_smtp(const config::Config& config, const store::Store::Notification& n) {
  const config::Notify& cfg = config.notify;
  std::string message = mail_message(config, n, store::now(), true);
  Curl c;
  if (!c.h) return Status::internal("curl_easy_init failed");
  common(c, cfg.timeout_seconds);
  curl_easy_setopt(c.h, CURLOPT_URL, cfg.smtp.c_str());
  // smtp://: STARTTLS when the server offers it; smtps://: TLS from the start.
  curl_easy_setopt(c.h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
  std::string from = "<" + cfg.from + ">";
  curl_easy_setopt(c.h, CURLOPT_MAIL_FROM, from.c_str());
  for (const auto& r : recipients(n.target)) c.rcpt = curl_slist_append(c.rcpt, ("<" + r + ">").c_str());
  curl_easy_setopt(c.h, CURLOPT_MAIL_RCPT, c.rcpt);
  std::string password;
  if (!cfg.smtp_user.empty()) {
    std::ifstream in(cfg.smtp_password_file);
    if (!in) return Status::invalid_argument("cannot read notify.smtp_password_file " + cfg.smtp_password_file);
    std::getline(in, password);
    curl_easy_setopt(c.h, CURLOPT_USERNAME, cfg.smtp_user.c_str());
    curl_easy_setopt(c.h, CURLOPT_PASSWORD, password.c_str());
  }
  Upload up{&message};
  curl_easy_setopt(c.h, CURLOPT_READFUNCTION, read_upload);
  curl_easy_setopt(c.h, CURLOPT_READDATA, &up);
  curl_easy_setopt(c.h, CURLOPT_UPLOAD, 1L);
  CURLcode rc = curl_easy_perform(c.h);
  if (rc != CURLE_OK) return Status::unavailable("SMTP " + cfg.smtp + ": " + curl_error(c, rc));
  return {};
}

Status send_sendmail(const config::Config& config, const store::Store::Notification& n) {
  const config::Notify& cfg = config.notify;
  std::string message = mail_message(config, n, store::now(), false);
  auto c = run_shell(cfg.sendmail, {}, message, cfg.timeout_seconds, config.daemon.state_dir);
  return child_status(cfg.sendmail, c, cfg.timeout_seconds);
}

Status post_webhook(const config::Config& config, const store::Store::Notification& n) {
  Curl c;
  if (!c.h) return Status::internal("curl_easy_init failed");
  common(c, config.notify.timeout_seconds);
  curl_easy_setopt(c.h, CURLOPT_URL, n.target.c_str());
  curl_easy_setopt(c.h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c.h, CURLOPT_POST, 1L);
  curl_easy_setopt(c.h, CURLOPT_POSTFIELDS, n.body.c_str());
  curl_easy_setopt(c.h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(n.body.size()));
  c.list = curl_slist_append(c.list, "Content-Type: application/json");
  c.list = curl_slist_append(c.list, ("X-Pushgate-Event: " + n.event).c_str());
  c.list = curl_slist_append(c.list, ("X-Pushgate-Delivery: " + std::to_string(n.id)).c_str());
  c.list = curl_slist_append(c.list, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(c.h, CURLOPT_HTTPHEADER, c.list);
  std::string agent = "pushgate";
  curl_easy_setopt(c.h, CURLOPT_USERAGENT, agent.c_str());
  std::string answer;
  curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, keep_body);
  curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &answer);
  CURLcode rc = curl_easy_perform(c.h);
  if (rc != CURLE_OK) return Status::unavailable("POST " + n.target + ": " + curl_error(c, rc));
  long code = 0;
  curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code > 299) {
    std::string body = trimmed(answer);
    return Status::unavailable("POST " + n.target + ": HTTP " + std::to_string(code) + (body.empty() ? "" : ": " + body));
  }
  return {};
}

Status run_command(const config::Config& config, const store::Store::Notification& n) {
  std::map<std::string, std::string> vars{{"PUSHGATE_EVENT", n.event},
                                          {"PUSHGATE_ID", std::to_string(n.subject_id)},
                                          {"PUSHGATE_SUBJECT", n.title}};
  json body = json::parse(n.body, nullptr, false);
  if (body.is_object()) {
    vars["PUSHGATE_BRANCH"] = body.value("branch", "");
    if (body.contains("outcome")) vars["PUSHGATE_OUTCOME"] = body.value("outcome", "");
    if (body.contains("status")) vars["PUSHGATE_STATUS"] = body.value("status", "");
    if (body.contains("url")) vars["PUSHGATE_URL"] = body.value("url", "");
  }
  auto c = run_shell(n.target, vars, n.body, config.notify.timeout_seconds, config.daemon.state_dir);
  return child_status("command " + n.target, c, config.notify.timeout_seconds);
}

}  // namespace

Status deliver(const config::Config& config, const store::Store::Notification& n) {
  if (n.channel == "mail") return config.notify.smtp.empty() ? send_sendmail(config, n) : send_smtp(config, n);
  if (n.channel == "webhook") return post_webhook(config, n);
  if (n.channel == "command") return run_command(config, n);
  return Status::invalid_argument("unknown notification channel \"" + n.channel + "\"");
}

Result<Delivered> deliver_due(const config::Config& config, store::Store& store, std::int64_t now,
                              const DeliverOptions& o) {
  std::vector<store::Store::Notification> due;
  if (o.only) {
    auto all = store.notifications_of(o.only->first, o.only->second);
    if (!all) return all.error();
    for (auto& n : *all) {
      if (n.state == "pending") due.push_back(std::move(n));
    }
  } else {
    auto rows = store.due_notifications(now, o.limit);
    if (!rows) return rows.error();
    due = std::move(*rows);
  }
  Delivered d;
  for (const auto& n : due) {
    if (o.stop && o.stop()) break;
    const std::string what = n.event + " " + std::to_string(n.subject_id) + ": " + describe(n);
    // Ours for this attempt (and a while after: a deliverer that dies
    // mid-attempt leaves the row due again once the claim runs out).
    auto claimed = store.claim_notification(n, store::now() + 2 * config.notify.timeout_seconds + 10);
    if (!claimed) return claimed.error();
    if (!*claimed) continue;
    Status s = deliver(config, n);
    const int attempts = n.attempts + 1;
    if (s.ok()) {
      if (auto w = store.finish_notification(n.id, "sent", "", 0); !w) return w.error();
      ++d.sent;
      if (o.log) o.log(what + ": sent" + (attempts > 1 ? " (attempt " + std::to_string(attempts) + ")" : ""), false);
      continue;
    }
    if (attempts >= config.notify.attempts) {
      if (auto w = store.finish_notification(n.id, "failed", s.message(), 0); !w) return w.error();
      ++d.given_up;
      if (o.log) o.log(what + ": given up after " + std::to_string(attempts) + " attempts: " + s.message(), true);
      continue;
    }
    std::int64_t wait = retry_delay(config.notify, attempts);
    if (auto w = store.finish_notification(n.id, "pending", s.message(), store::now() + wait); !w) return w.error();
    ++d.retrying;
    if (o.log) {
      o.log(what + ": failed (attempt " + std::to_string(attempts) + " of " + std::to_string(config.notify.attempts) +
                "), next in " + std::to_string(wait) + "s: " + s.message(),
            true);
    }
  }
  return d;
}

}  // namespace pushgate::notify
