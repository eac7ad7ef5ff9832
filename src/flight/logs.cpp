// Step logs for readers: the web's log views and `pushgate flight log`.
// What is opened comes from the store, never from a URL, and is opened only
// when it resolves to a file under STATE_DIR/logs.

#include <pushgate/flight.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace pushgate::flight {

namespace fs = std::filesystem;

namespace {

/// `path` resolved (symlinks followed) when it is a regular file inside
/// `root`; empty otherwise.
std::string inside(const std::string& root, const std::string& path) {
  std::error_code ec;
  fs::path r = fs::canonical(root, ec);
  if (ec) return "";
  fs::path p = fs::canonical(path, ec);
  if (ec || !fs::is_regular_file(p, ec)) return "";
  auto rel = p.lexically_relative(r);
  if (rel.empty() || *rel.begin() == ".." || rel.is_absolute()) return "";
  return p.string();
}

bool is_number(const std::string& s) {
  return !s.empty() && s.size() < 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Result<LogSlice> read_log(const config::Config& config, const store::Store& store, FlightId flight,
                          const LogQuery& q) {
  auto f = store.get_flight(flight);
  if (!f) return f.error();
  std::optional<store::Step> step;
  auto matches = [&](const store::Step& s) {
    return s.job == q.job && (is_number(q.step) ? s.stepno == std::stoi(q.step) : s.testid == q.step);
  };
  if (q.attempt > 0) {
    auto attempts = store.list_step_attempts(flight);
    if (!attempts) return attempts.error();
    for (const auto& a : *attempts) {
      if (a.attempt == q.attempt && matches(a.step)) step = a.step;
    }
  } else {
    auto steps = store.list_steps(flight);
    if (!steps) return steps.error();
    for (const auto& s : *steps) {
      if (matches(s)) step = s;
    }
  }
  if (!step) {
    auto jobs = store.list_jobs(flight);
    if (!jobs) return jobs.error();
    bool known = std::any_of(jobs->begin(), jobs->end(), [&](const store::Job& j) { return j.job == q.job; });
    if (!known) return Status::not_found("flight " + flight.str() + " has no job \"" + q.job + "\"");
    return Status::not_found("job " + q.job + " of flight " + flight.str() + " has no step \"" + q.step + "\"" +
                                 (q.attempt > 0 ? " in attempt " + std::to_string(q.attempt) : ""),
                             "steps appear when they start; see `pushgate flight show " + flight.str() + "`");
  }
  LogSlice out;
  out.job = step->job;
  out.testid = step->testid;
  out.stepno = step->stepno;
  out.status = step->status;
  out.growing = q.attempt == 0 && (step->status == "running" || step->status.empty()) && !f->finished;
  std::string path = inside(config.daemon.state_dir + "/logs", step->log_path);
  if (path.empty()) {
    std::error_code ec;
    if (step->log_path.empty() || !fs::exists(step->log_path, ec)) {
      if (out.growing) return out;  // started, nothing written yet
      return Status::not_found("the log of " + q.job + " step " + std::to_string(step->stepno) + " is not there",
                               "`pushgate gc` removes logs of old flights (daemon.retention_days)");
    }
    return Status::not_found("the log of " + q.job + " step " + std::to_string(step->stepno) +
                             " is not under the state directory's logs/; it is not served");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::unavailable("cannot open " + path + ": " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  out.size = static_cast<std::int64_t>(in.tellg());
  std::int64_t from = std::clamp<std::int64_t>(q.offset, 0, out.size);
  if (q.tail_lines > 0) {
    // Walk back from the end in blocks until enough newlines are seen.
    std::int64_t pos = out.size, lines = 0;
    const std::int64_t block = 65536;
    std::string buf;
    from = 0;
    while (pos > 0) {
      std::int64_t n = std::min(block, pos);
      pos -= n;
      buf.resize(static_cast<std::size_t>(n));
      in.seekg(pos);
      in.read(buf.data(), n);
      for (std::int64_t i = n - 1; i >= 0; --i) {
        // The last line's own newline does not count.
        if (buf[static_cast<std::size_t>(i)] == '\n' && pos + i != out.size - 1 && ++lines == q.tail_lines) {
          from = pos + i + 1;
          pos = 0;
          break;
        }
      }
    }
    from = std::max(from, out.size - q.max_bytes);
  }
  std::int64_t n = std::min(out.size - from, q.max_bytes);
  out.offset = from;
  out.text.resize(static_cast<std::size_t>(n));
  in.clear();
  in.seekg(from);
  in.read(out.text.data(), n);
  out.text.resize(static_cast<std::size_t>(in.gcount()));
  return out;
}

}  // namespace pushgate::flight
