// Step containment: every process a step starts can be found again and
// killed, by its cgroup v2 directory where one is writable and by the
// PUSHGATE_STEP_TAG environment variable everywhere (a process that calls
// setsid leaves its process group, not its cgroup or its environment).

#include <pushgate/hosts.hpp>

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace pushgate::hosts {
namespace {

namespace fs = std::filesystem;

/// Where a writable cgroup2 hierarchy is mounted ("" when none), and this
/// process's cgroup in it.
std::string cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // ... mountpoint ... - fstype source options
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string type;
    rest >> type;
    if (type != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, devno, root, mountpoint;
    head >> id >> parent >> devno >> root >> mountpoint;
    return mountpoint;
  }
  return "";
}

std::string own_cgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("0::")) return line.substr(3);
  }
  return "";
}

/// Job names may hold characters a cgroup name should not; keep it plain.
std::string plain(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return out;
}

std::vector<int> cgroup_pids(const std::string& dir) {
  std::vector<int> out;
  std::ifstream in(dir + "/cgroup.procs");
  int pid;
  while (in >> pid) out.push_back(pid);
  return out;
}

/// Kill everything in a cgroup directory and its children, then remove them.
int kill_cgroup_tree(const std::string& dir) {
  int killed = 0;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory(ec)) killed += kill_cgroup_tree(e.path().string());
  }
  for (int round = 0; round < 50; ++round) {
    auto pids = cgroup_pids(dir);
    if (pids.empty()) break;
    // cgroup.kill (Linux 5.14) kills atomically, forks included; else one by one.
    if (std::ofstream k(dir + "/cgroup.kill"); k) {
      k << "1";
    }
    for (int pid : pids) {
      if (::kill(pid, SIGKILL) == 0) ++killed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (int i = 0; i < 50 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return killed;
}

/// Processes (other than this one) whose environment has PUSHGATE_STEP_TAG
/// equal to `tag`, or (exact false) starting with it.
std::vector<std::pair<int, std::string>> tagged(const std::string& prefix, bool exact) {
  std::vector<std::pair<int, std::string>> out;
  const std::string key = "PUSHGATE_STEP_TAG=" + prefix;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  const int self = ::getpid();
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int pid = std::atoi(e->d_name);
    if (pid == self) continue;
    std::ifstream env(std::string("/proc/") + e->d_name + "/environ", std::ios::binary);
    if (!env) continue;
    std::string var;
    while (std::getline(env, var, '\0')) {
      if (exact ? var == key : var.starts_with(key)) {
        out.emplace_back(pid, var.substr(std::string("PUSHGATE_STEP_TAG=").size()));
        break;
      }
    }
  }
  ::closedir(d);
  return out;
}

int kill_tagged(const std::string& tag) {
  int killed = 0;
  // Rounds: a parent killed between our scan and its fork leaves a child.
  for (int round = 0; round < 5; ++round) {
    auto procs = tagged(tag, true);
    if (procs.empty()) break;
    for (const auto& [pid, tag] : procs) {
      if (::kill(pid, SIGKILL) == 0) ++killed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return killed;
}

}  // namespace

std::string digest(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Containment::Containment(const std::string& state_dir) {
  std::error_code ec;
  fs::path abs = fs::weakly_canonical(fs::absolute(state_dir, ec), ec);
  digest_ = digest(abs.string()).substr(0, 12);
  std::string mount = cgroup2_mount();
  if (mount.empty()) return;
  std::string own = own_cgroup();
  std::string parent = mount + (own == "/" ? "" : own);
  // Writable means we may make step cgroups and move processes into them;
  // nothing is left behind: step directories go when their step ends, the
  // flight's and the base directory when they are empty.
  std::string probe = parent + "/pushgate-probe-" + std::to_string(::getpid());
  if (::mkdir(probe.c_str(), 0755) != 0 && errno != EEXIST) return;
  bool movable = ::access((probe + "/cgroup.procs").c_str(), W_OK) == 0;
  ::rmdir(probe.c_str());
  if (movable) base_ = parent + "/pushgate-" + digest_;
}

Placement Containment::place(FlightId flight, const std::string& job, int stepno) const {
  Placement p;
  p.tag = digest_ + "/" + flight.str() + "/" + job + "/" + std::to_string(stepno);
  if (!base_.empty()) {
    // Made by run_process when a process starts (an operation with no
    // process leaves nothing behind), removed by kill_placement.
    p.cgroup_dir = base_ + "/flight-" + flight.str() + "/" + plain(job) + "." + std::to_string(stepno);
  }
  return p;
}

int kill_placement(const Placement& p) {
  if (!p.cgroup_dir.empty()) {
    int n = kill_cgroup_tree(p.cgroup_dir);
    fs::path flight = fs::path(p.cgroup_dir).parent_path();
    if (::rmdir(flight.c_str()) == 0) ::rmdir(flight.parent_path().c_str());  // emptied: the flight's, then the base
    return n;
  }
  return p.tag.empty() ? 0 : kill_tagged(p.tag);
}

int Containment::kill_flights_except(const std::function<bool(FlightId)>& keep) const {
  int n = 0;
  std::error_code ec;
  if (!base_.empty()) {
    for (const auto& e : fs::directory_iterator(base_, ec)) {
      std::string name = e.path().filename().string();
      if (!name.starts_with("flight-")) continue;
      FlightId f{std::atoll(name.c_str() + 7)};
      if (keep && keep(f)) continue;
      n += kill_cgroup_tree(e.path().string());
    }
    ::rmdir(base_.c_str());
  }
  for (const auto& [pid, tag] : tagged(digest_ + "/", false)) {
    auto slash = tag.find('/', digest_.size() + 1);
    FlightId f{std::atoll(tag.substr(digest_.size() + 1, slash - digest_.size() - 1).c_str())};
    if (keep && keep(f)) continue;
    if (::kill(pid, SIGKILL) == 0) ++n;
  }
  return n;
}

}  // namespace pushgate::hosts
