#include "support.hpp"

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include <fcntl.h>
#include <git2.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace pushgate::test {
namespace fs = std::filesystem;

TempDir::TempDir() {
  fs::path base = fs::temp_directory_path();
  std::random_device rd;
  for (int i = 0; i < 100; ++i) {
    fs::path p = base / ("pushgate-test-" + std::to_string(rd()));
    if (fs::create_directory(p)) {
      path_ = p;
      return;
    }
  }
  throw std::runtime_error("cannot create temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const fs::path& p, const std::string& text) {
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              const std::string& cwd) {
  TempDir tmp;
  std::string out_path = tmp.str("out"), err_path = tmp.str("err");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    if (!env.count(key)) envs.push_back(kv);
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  RunResult r;
  if (rc != 0) {
    r.err = "spawn failed: " + std::to_string(rc);
    return r;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

std::string pushgate_binary() {
  // PUSHGATE_TEST_BINARY runs the same tests against another build (say, the
  // previous commit's, to see a regression test fail there).
  const char* other = std::getenv("PUSHGATE_TEST_BINARY");
  return other && *other ? other : PUSHGATE_BIN;
}
fs::path data_dir() { return fs::path(PUSHGATE_SOURCE_DIR) / "tests" / "data"; }
fs::path source_dir() { return fs::path(PUSHGATE_SOURCE_DIR); }

RunResult pushgate(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv{pushgate_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, env);
}

Background::Background(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  if (pid_ > 0) setpgid(pid_, pid_);
}

Background::~Background() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  if (!reaped_) waitpid(pid_, nullptr, 0);
}

int Background::wait(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

void Background::signal(int sig) { kill(pid_, sig); }

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool wait_for_port(int port, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

HttpResult http(int port, const std::string& method, const std::string& target, const std::string& body,
                const std::map<std::string, std::string>& headers) {
  HttpResult r;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return r;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  for (std::size_t off = 0; off < req.size();) {
    ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413) before reading everything
    off += static_cast<std::size_t>(n);
  }
  std::string resp;
  char buf[65536];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, static_cast<std::size_t>(n));
  close(fd);
  if (resp.rfind("HTTP/1.1 ", 0) == 0) r.status = std::stoi(resp.substr(9, 3));
  auto split = resp.find("\r\n\r\n");
  if (split != std::string::npos) {
    r.body = resp.substr(split + 4);
    r.headers = resp.substr(0, split + 2);
  }
  return r;
}

GitDaemon::GitDaemon(const std::string& base) : port_(free_port()) {
  proc_ = std::make_unique<Background>(std::vector<std::string>{
      "git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1",
      "--port=" + std::to_string(port_), "--base-path=" + base, base});
  ok_ = wait_for_port(port_);
}

std::string GitDaemon::url(const std::string& repo) const {
  return "git://127.0.0.1:" + std::to_string(port_) + "/" + repo;
}

namespace {
void check(int rc, const std::string& what) {
  if (rc < 0) {
    const git_error* e = git_error_last();
    throw std::runtime_error(what + ": " + (e ? e->message : "libgit2 error"));
  }
}
git_repository* R(void* p) { return static_cast<git_repository*>(p); }

void parse_sig(const std::string& s, std::string& name, std::string& email) {
  auto lt = s.find('<');
  name = s.substr(0, lt == std::string::npos ? s.size() : lt);
  while (!name.empty() && name.back() == ' ') name.pop_back();
  email = lt == std::string::npos ? "x@example.org" : s.substr(lt + 1, s.find('>') - lt - 1);
}
}  // namespace

GitRepoBuilder::GitRepoBuilder(const std::string& path) : path_(path) {
  git_libgit2_init();
  git_repository* repo = nullptr;
  if (git_repository_open_bare(&repo, path.c_str()) < 0) check(git_repository_init(&repo, path.c_str(), 1), "init " + path);
  repo_ = repo;
}

GitRepoBuilder::~GitRepoBuilder() {
  git_repository_free(R(repo_));
  git_libgit2_shutdown();
}

std::string GitRepoBuilder::commit(const std::string& message, const std::vector<std::string>& parents,
                                   const std::map<std::string, std::string>& files, const std::string& author) {
  git_treebuilder* tb = nullptr;
  git_tree* base = nullptr;
  std::vector<git_commit*> pcs;
  for (const auto& p : parents) {
    git_oid oid;
    check(git_oid_fromstr(&oid, p.c_str()), "parent id");
    git_commit* c = nullptr;
    check(git_commit_lookup(&c, R(repo_), &oid), "parent lookup");
    pcs.push_back(c);
  }
  if (!pcs.empty()) check(git_commit_tree(&base, pcs[0]), "parent tree");
  check(git_treebuilder_new(&tb, R(repo_), base), "treebuilder");
  std::map<std::string, std::string> all = files;
  if (all.empty()) all["log.txt"] = message + "\n";  // every commit changes something
  for (const auto& [name, content] : all) {
    git_oid blob;
    check(git_blob_create_from_buffer(&blob, R(repo_), content.data(), content.size()), "blob");
    check(git_treebuilder_insert(nullptr, tb, name.c_str(), &blob, GIT_FILEMODE_BLOB), "tree insert");
  }
  git_oid tree_oid;
  check(git_treebuilder_write(&tree_oid, tb), "tree write");
  git_tree* tree = nullptr;
  check(git_tree_lookup(&tree, R(repo_), &tree_oid), "tree lookup");
  std::string name, email;
  parse_sig(author, name, email);
  git_signature* sig = nullptr;
  check(git_signature_new(&sig, name.c_str(), email.c_str(), ++time_, 0), "signature");
  git_oid out;
  std::vector<const git_commit*> cp(pcs.begin(), pcs.end());
  check(git_commit_create(&out, R(repo_), nullptr, sig, sig, nullptr, message.c_str(), tree, cp.size(), cp.data()),
        "commit");
  git_signature_free(sig);
  git_tree_free(tree);
  git_tree_free(base);
  git_treebuilder_free(tb);
  for (auto* c : pcs) git_commit_free(c);
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &out);
  return buf;
}

std::string GitRepoBuilder::head_of(const std::string& branch) const {
  git_oid oid;
  std::string ref = branch.starts_with("refs/") ? branch : "refs/heads/" + branch;
  if (git_reference_name_to_id(&oid, R(repo_), ref.c_str()) < 0) return "";
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

std::string GitRepoBuilder::commit_on(const std::string& branch, const std::string& message,
                                      const std::map<std::string, std::string>& files, const std::string& author) {
  std::string parent = head_of(branch);
  std::vector<std::string> parents;
  if (!parent.empty()) parents.push_back(parent);
  std::map<std::string, std::string> f = files;
  if (f.empty()) f[branch + ".log"] = message + "\n";
  std::string id = commit(message, parents, f, author);
  set_branch(branch, id);
  return id;
}

void GitRepoBuilder::set_branch(const std::string& branch, const std::string& id) {
  git_oid oid;
  check(git_oid_fromstr(&oid, id.c_str()), "id");
  git_reference* ref = nullptr;
  std::string name = branch.starts_with("refs/") ? branch : "refs/heads/" + branch;
  check(git_reference_create(&ref, R(repo_), name.c_str(), &oid, 1, "test"), "set branch " + branch);
  git_reference_free(ref);
}

void GitRepoBuilder::lightweight_tag(const std::string& name, const std::string& id) {
  git_oid oid;
  check(git_oid_fromstr(&oid, id.c_str()), "id");
  git_reference* ref = nullptr;
  check(git_reference_create(&ref, R(repo_), ("refs/tags/" + name).c_str(), &oid, 1, "tag"), "tag " + name);
  git_reference_free(ref);
}

void GitRepoBuilder::annotated_tag(const std::string& name, const std::string& id, const std::string& message) {
  git_oid oid, out;
  check(git_oid_fromstr(&oid, id.c_str()), "id");
  git_object* target = nullptr;
  check(git_object_lookup(&target, R(repo_), &oid, GIT_OBJECT_COMMIT), "tag target");
  git_signature* sig = nullptr;
  check(git_signature_new(&sig, "Release Manager", "rm@example.org", ++time_, 0), "signature");
  check(git_tag_create(&out, R(repo_), name.c_str(), target, sig, message.c_str(), 1), "annotated tag " + name);
  git_signature_free(sig);
  git_object_free(target);
}

std::string schema_errors(const std::string& schema, const std::string& body) {
  auto schema_doc = nlohmann::json::parse(read_file(source_dir() / "schemas" / schema));
  valijson::Schema compiled;
  valijson::SchemaParser parser;
  valijson::adapters::NlohmannJsonAdapter sa(schema_doc);
  parser.populateSchema(sa, compiled);
  auto doc = nlohmann::json::parse(body);
  valijson::Validator validator;
  valijson::adapters::NlohmannJsonAdapter target(doc);
  valijson::ValidationResults results;
  if (validator.validate(compiled, target, &results)) return "";
  std::string why = "does not follow " + schema + ":\n";
  valijson::ValidationResults::Error e;
  while (results.popError(e)) {
    for (const auto& c : e.context) why += c;
    why += ": " + e.description + "\n";
  }
  return why + body;
}

void generate_history(const std::string& path, int commits, int tag_every, int merge_every) {
  std::string cmd = "git init -q --bare '" + path + "' && git -C '" + path + "' fast-import --quiet";
  FILE* in = popen(cmd.c_str(), "w");
  if (!in) throw std::runtime_error("cannot run git fast-import");
  long t = 1500000000;
  int mark = 0, last = 0;
  auto commit = [&](const std::string& ref, int parent, int merge, int i) {
    int blob = ++mark;
    std::string data;
    for (int k = 0; k < 3; ++k) data += "line " + std::to_string(k) + " of revision " + std::to_string(i) + "\n";
    std::fprintf(in, "blob\nmark :%d\ndata %zu\n%s\n", blob, data.size(), data.c_str());
    int c = ++mark;
    std::string msg = "commit " + std::to_string(i) + "\n";
    t += 60;
    std::fprintf(in, "commit %s\nmark :%d\nauthor A <a@example.org> %ld +0000\ncommitter A <a@example.org> %ld +0000\n",
                 ref.c_str(), c, t, t);
    std::fprintf(in, "data %zu\n%s", msg.size(), msg.c_str());
    if (parent) std::fprintf(in, "from :%d\n", parent);
    if (merge) std::fprintf(in, "merge :%d\n", merge);
    std::fprintf(in, "M 100644 :%d d%d/f%d\n\n", blob, i % 40, i % 2000);
    return c;
  };
  for (int i = 1; i <= commits; ++i) {
    if (merge_every > 0 && i % merge_every == 0) {
      int side = last;
      for (int k = 0; k < 3; ++k) side = commit("refs/heads/side", side, 0, commits + i * 3 + k);
      last = commit("refs/heads/master", last, side, i);
    } else {
      last = commit("refs/heads/master", last, 0, i);
    }
    if (tag_every > 0 && i % tag_every == 0) {
      std::fprintf(in, "tag v%d\nfrom :%d\ntagger A <a@example.org> %ld +0000\ndata 8\nrelease\n\n", i / tag_every, last, t);
    }
  }
  if (pclose(in) != 0) throw std::runtime_error("git fast-import failed for " + path);
}

PrivateLibvirtd::PrivateLibvirtd() {
  if (geteuid() != 0) {
    reason_ = "not root: cannot run a libvirtd as another user";
    return;
  }
  if (!fs::exists("/usr/sbin/libvirtd")) {
    reason_ = "no /usr/sbin/libvirtd";
    return;
  }
  char tmpl[] = "/tmp/pushgate-libvirtd-XXXXXX";
  if (!mkdtemp(tmpl)) {
    reason_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  fs::create_directories(dir_ / "run");
  fs::create_directories(dir_ / "home");
  // Its own host UUID: libvirt refuses a migration to "the same host".
  std::random_device rd;
  char uuid[40];
  std::snprintf(uuid, sizeof uuid, "%08x-%04x-4%03x-8%03x-%04x%08x", rd(), rd() & 0xffff, rd() & 0xfff, rd() & 0xfff,
                rd() & 0xffff, rd());
  write_file(dir_ / "libvirtd.conf", std::string("host_uuid = \"") + uuid + "\"\n");
  for (const auto& p : fs::recursive_directory_iterator(dir_)) {
    if (chown(p.path().c_str(), 65534, 65534) != 0) break;
  }
  if (chown(dir_.c_str(), 65534, 65534) != 0) {
    reason_ = "cannot chown " + dir_.string();
    return;
  }
  proc_ = std::make_unique<Background>(
      std::vector<std::string>{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i",
                               "PATH=/usr/sbin:/usr/bin:/bin", "HOME=" + (dir_ / "home").string(),
                               "XDG_RUNTIME_DIR=" + (dir_ / "run").string(), "libvirtd", "--config",
                               (dir_ / "libvirtd.conf").string()},
      (dir_ / "libvirtd.log").string());
  for (int i = 0; i < 100; ++i) {
    if (fs::exists(dir_ / "run/libvirt/libvirt-sock")) {
      ok_ = true;
      return;
    }
    if (proc_->wait(100) >= 0) break;
  }
  reason_ = "private libvirtd did not start: " + read_file(dir_ / "libvirtd.log");
}

PrivateLibvirtd::~PrivateLibvirtd() {
  if (proc_) {
    resume();
    proc_.reset();  // SIGKILL to its group, reaped
  }
  // What it started in sessions of their own (qemu, a session virtlogd):
  // their command line or environment names the directory.
  if (!dir_.empty()) {
    for (const auto& e : fs::directory_iterator("/proc")) {
      std::string seen = read_file(e.path() / "cmdline") + read_file(e.path() / "environ");
      if (seen.find(dir_.string()) != std::string::npos) kill(std::atoi(e.path().filename().c_str()), SIGKILL);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string PrivateLibvirtd::uri(const std::string& driver) const {
  return driver + "+unix:///" + (driver == "test" ? "default" : "session") + "?socket=" +
         (dir_ / "run/libvirt/libvirt-sock").string();
}

int PrivateLibvirtd::pid() const { return proc_ ? proc_->pid() : -1; }
void PrivateLibvirtd::stop() {
  if (proc_) proc_->signal(SIGSTOP);
}
void PrivateLibvirtd::resume() {
  if (proc_) proc_->signal(SIGCONT);
}

std::string column_lines(const std::string& path, const std::string& sql, int col) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
  std::string out;
  while (sqlite3_step(st) == SQLITE_ROW) out += reinterpret_cast<const char*>(sqlite3_column_text(st, col)) + std::string("\n");
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::string history_scan(const std::string& db_path, const std::string& sql) {
  std::string plan = column_lines(db_path, "EXPLAIN QUERY PLAN " + sql, 3);
  bool newest_first = sql.find("WHERE 1 ORDER BY") != std::string::npos && sql.find(" LIMIT ") != std::string::npos &&
                      plan.find("TEMP B-TREE") == std::string::npos;
  std::istringstream lines(plan);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("SCAN ", 0) != 0) continue;
    std::string table = line.substr(5, line.find(' ', 5) - 5);
    bool history = table == "steps" || table == "jobs" || table == "runvars" || table == "flights" ||
                   table == "step_attempts" || table == "runvar_attempts" || table == "pushes" ||
                   table == "host_events" || table == "frozen_audit" || table == "verdicts";
    bool partial = line.find("INDEX jobs_active") != std::string::npos ||
                   line.find("INDEX flights_unfinished") != std::string::npos;
    if (history && !partial && !newest_first) return line + "\n(plan:\n" + plan + ")";
  }
  return "";
}

}  // namespace pushgate::test

namespace pushgate::test {

Receiver::Receiver(Protocol protocol, int status) : protocol_(protocol), status_(status) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0) {
    throw std::runtime_error("Receiver: bind/listen failed");
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { serve(); });
}

Receiver::~Receiver() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
}

void Receiver::set_status(int status) { status_ = status; }

std::vector<Receiver::Message> Receiver::messages() const {
  std::lock_guard lock(mutex_);
  return messages_;
}

bool Receiver::wait_for(std::size_t n, int timeout_ms) const {
  for (int i = 0; i < timeout_ms / 20; ++i) {
    {
      std::lock_guard lock(mutex_);
      if (messages_.size() >= n) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::lock_guard lock(mutex_);
  return messages_.size() >= n;
}

void Receiver::serve() {
  while (!stop_) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stop_) return;
      continue;
    }
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (protocol_ == Protocol::http) http_session(fd);
    else smtp_session(fd);
    ::close(fd);
  }
}

namespace {

bool send_all(int fd, const std::string& s) {
  std::size_t at = 0;
  while (at < s.size()) {
    ssize_t n = ::send(fd, s.data() + at, s.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<std::size_t>(n);
  }
  return true;
}

/// Read until `buf` holds `delim`; false at EOF or timeout.
bool read_until(int fd, std::string& buf, const std::string& delim) {
  while (buf.find(delim) == std::string::npos) {
    char tmp[4096];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
  }
  return true;
}

std::string angle(const std::string& line) {
  auto a = line.find('<'), b = line.find('>');
  return a == std::string::npos || b == std::string::npos ? "" : line.substr(a + 1, b - a - 1);
}

}  // namespace

void Receiver::http_session(int fd) {
  std::string buf;
  if (!read_until(fd, buf, "\r\n\r\n")) return;
  std::size_t end = buf.find("\r\n\r\n");
  Message m;
  std::string head = buf.substr(0, end);
  m.request = head.substr(0, head.find("\r\n"));
  m.request = m.request.substr(0, m.request.rfind(' '));
  m.headers = head.substr(head.find("\r\n") + 2);
  std::size_t length = 0;
  std::istringstream lines(m.headers);
  for (std::string line; std::getline(lines, line);) {
    std::string lower = line;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower.starts_with("content-length:")) length = std::stoul(line.substr(15));
  }
  m.body = buf.substr(end + 4);
  while (m.body.size() < length) {
    char tmp[4096];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return;
    m.body.append(tmp, static_cast<std::size_t>(n));
  }
  int status = status_;
  {
    std::lock_guard lock(mutex_);
    messages_.push_back(std::move(m));
  }
  send_all(fd, "HTTP/1.1 " + std::to_string(status) + (status < 300 ? " OK" : " Error") +
                   "\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno");
}

void Receiver::smtp_session(int fd) {
  if (!send_all(fd, "220 127.0.0.1 ESMTP pushgate-test\r\n")) return;
  std::string buf;
  Message m;
  for (;;) {
    if (!read_until(fd, buf, "\r\n")) return;
    std::size_t eol = buf.find("\r\n");
    std::string line = buf.substr(0, eol);
    buf.erase(0, eol + 2);
    std::string verb = line.substr(0, 4);
    for (auto& ch : verb) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (verb == "EHLO") {
      send_all(fd, "250-127.0.0.1\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n");
    } else if (verb == "HELO" || verb == "RSET" || verb == "NOOP") {
      if (verb == "RSET") m = Message{};
      send_all(fd, "250 ok\r\n");
    } else if (verb == "MAIL") {
      m.mail_from = angle(line);
      send_all(fd, "250 ok\r\n");
    } else if (verb == "RCPT") {
      m.rcpt.push_back(angle(line));
      send_all(fd, "250 ok\r\n");
    } else if (verb == "DATA") {
      send_all(fd, "354 end with <CRLF>.<CRLF>\r\n");
      if (buf.rfind(".\r\n", 0) != 0 && !read_until(fd, buf, "\r\n.\r\n")) return;
      std::size_t stop = buf.rfind(".\r\n", 0) == 0 ? 0 : buf.find("\r\n.\r\n") + 2;
      std::string data = buf.substr(0, stop);
      buf.erase(0, stop + 3);
      // Undo dot-stuffing: a line's leading ".." was a ".".
      std::string body;
      std::istringstream in(data);
      for (std::string l; std::getline(in, l);) {
        if (!l.empty() && l.back() == '\r') l.pop_back();  // kept as LF, easier to read in tests
        body += (l.starts_with("..") ? l.substr(1) : l) + "\n";
      }
      m.body = body;
      {
        std::lock_guard lock(mutex_);
        messages_.push_back(m);
      }
      m = Message{};
      send_all(fd, "250 queued\r\n");
    } else if (verb == "QUIT") {
      send_all(fd, "221 bye\r\n");
      return;
    } else {
      send_all(fd, "502 not implemented\r\n");
    }
  }
}

}  // namespace pushgate::test

namespace pushgate::test {

std::vector<std::string> chromium(const std::string& profile_dir, const std::string& window) {
  return {"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
          "--user-data-dir=" + profile_dir, "--window-size=" + window};
}

std::vector<std::string> with_url(std::vector<std::string> chrome, const std::string& url,
                                  const std::vector<std::string>& flags) {
  chrome.insert(chrome.end(), flags.begin(), flags.end());
  chrome.push_back(url);
  return chrome;
}

std::filesystem::path artifacts_dir() {
  auto dir = std::filesystem::path(pushgate_binary()).parent_path() / "tests" / "test-artifacts";
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace pushgate::test
