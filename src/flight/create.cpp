// A flight from a branch's job matrix and resolved revisions.

#include <pushgate/flight.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>

#include <pwd.h>

namespace pushgate::flight {

const char* harness_version() { return PUSHGATE_VERSION; }

std::string invoking_user() {
  if (const char* s = std::getenv("SUDO_USER"); s && *s) return s;
  if (const passwd* pw = ::getpwuid(::geteuid())) return pw->pw_name;
  if (const char* s = std::getenv("USER"); s && *s) return s;
  return "uid " + std::to_string(::geteuid());
}

namespace {
std::string attempt_suffix(int attempt) { return attempt > 1 ? ".attempt-" + std::to_string(attempt) : ""; }
}  // namespace

std::string log_path(const config::Config& config, FlightId flight, const std::string& job, int stepno,
                     const std::string& testid, int attempt) {
  std::string t = testid;
  std::replace(t.begin(), t.end(), '/', '_');
  return config.daemon.state_dir + "/logs/" + flight.str() + "/" + job + attempt_suffix(attempt) + "/" +
         std::to_string(stepno) + "-" + t + ".log";
}

std::string work_dir(const config::Config& config, FlightId flight, const std::string& job, int attempt) {
  return config.daemon.state_dir + "/work/" + flight.str() + "/" + job + attempt_suffix(attempt);
}

namespace {

std::string lock_path(const config::Config& config, FlightId flight) {
  return config.daemon.state_dir + "/locks/flight-" + flight.str() + ".lock";
}

}  // namespace

Result<RunLock> RunLock::acquire(const config::Config& config, FlightId flight) {
  std::string path = lock_path(config, flight);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::unavailable("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return Status::conflict("flight " + flight.str() + " is being run by another process",
                            "wait for it, or stop that process first");
  }
  return RunLock(fd);
}

bool RunLock::held(const config::Config& config, FlightId flight) {
  int fd = ::open(lock_path(config, flight).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // never run, or its state is gone: nobody holds it
  bool busy = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
  ::close(fd);  // also drops the shared lock just taken
  return busy;
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);
}

std::set<std::string> with_dependencies(const config::Config& config, const std::vector<std::string>& jobs) {
  std::set<std::string> names;
  std::function<void(const std::string&)> add = [&](const std::string& name) {
    if (!names.insert(name).second) return;
    if (const config::Job* j = config.find_job(name)) {
      for (const auto& d : j->depends) add(d);
    }
  };
  for (const auto& j : jobs) add(j);
  return names;
}

std::string build_inputs(const std::map<std::string, std::string>& vars) {
  // Inputs: every non-host runvar and the harness version.
  std::string inputs = std::string("harness=") + harness_version() + "\n";
  for (const auto& [k, v] : vars) {
    if (k == "build_inputs" || k == "retest_of" || k == "bisection" || k.rfind("basis_revision_", 0) == 0 ||
        k.rfind(kPinPrefix, 0) == 0) {
      continue;
    }
    inputs += k + "=" + v + "\n";
  }
  return hosts::digest(inputs);
}

Result<FlightId> create(const config::Config& config, store::Store& store, const revisions::Resolution& res,
                        const CreateOptions& options) {
  static const std::set<std::string> blessings{"real", "real-retest", "real-bisect", "adhoc", "play"};
  if (!blessings.count(options.blessing)) {
    return Status::invalid_argument("unknown blessing \"" + options.blessing + "\"",
                                    "one of real, real-retest, real-bisect, adhoc, play");
  }
  const config::Branch* branch = config.find_branch(res.branch);
  if (!branch) return Status::invalid_argument("unknown branch \"" + res.branch + "\"");
  std::vector<std::string> names = branch->jobs;
  if (names.empty()) {
    for (const auto& j : config.jobs) names.push_back(j.name);
  }
  if (!options.only_jobs.empty()) {
    for (const auto& j : options.only_jobs) {
      if (std::find(names.begin(), names.end(), j) == names.end()) {
        return Status::invalid_argument("branch " + res.branch + " has no job \"" + j + "\"");
      }
    }
    names = options.only_jobs;
  }
  std::set<std::string> in_flight(names.begin(), names.end());

  store::NewFlight f;
  f.branch = res.branch;
  f.blessing = options.blessing;
  f.intended = options.intended.empty() ? options.blessing : options.intended;
  f.trigger_kind = options.trigger_kind;
  f.trigger_detail = options.trigger_detail;
  auto revs = revisions::runvars(res);
  for (const std::string& name : names) {
    const config::Job* job = config.find_job(name);
    if (!job) return Status::invalid_argument("unknown job \"" + name + "\"");
    for (const auto& d : job->depends) {
      if (!in_flight.count(d)) {
        return Status::invalid_argument("job " + name + " depends on " + d + ", which this flight does not run");
      }
    }
    f.jobs.push_back({{}, name, job->recipe, "queued", ""});
    std::map<std::string, std::string> vars(revs.begin(), revs.end());
    for (const auto& [k, v] : job->runvars) vars[k] = v;
    std::set<std::string> flags;
    for (const auto& [role, fl] : job->hosts) flags.insert(fl.begin(), fl.end());
    std::string all;
    for (const auto& fl : flags) all += (all.empty() ? "" : ",") + fl;
    if (!all.empty()) vars["all_hostflags"] = all;
    for (const auto& d : job->depends) {
      const config::Job* dj = config.find_job(d);
      if (dj && dj->kind == "build" && !vars.count("buildjob")) vars["buildjob"] = d;
    }
    vars["recipe"] = job->recipe;
    if (job->kind == "build") vars["build_inputs"] = build_inputs(vars);
    // The baseline the verdict compares against: the tested ref when the flight was made.
    if (!res.tested_revision.empty()) vars["basis_revision_" + branch->tree] = res.tested_revision;
    for (const auto& [k, v] : vars) f.runvars.push_back({name, k, v, false});
  }
  return store.create_flight(f);
}

}  // namespace pushgate::flight
