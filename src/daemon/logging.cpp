// The daemon's log lines (issue 16 item 4): journald-friendly under
// systemd, UTC timestamps otherwise, or JSON lines. spdlog formats; the
// formatters here only choose what a line looks like.

#include <pushgate/daemon.hpp>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

namespace pushgate::daemon {
namespace {

std::string utc_time(const spdlog::log_clock::time_point& t) {
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count();
  std::time_t tt = spdlog::log_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

/// syslog priority of a level, as sd-daemon(3) prefixes read by journald.
int priority(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::critical: return 2;
    case spdlog::level::err: return 3;
    case spdlog::level::warn: return 4;
    case spdlog::level::info: return 6;
    default: return 7;
  }
}

class LineFormatter : public spdlog::formatter {
 public:
  explicit LineFormatter(std::string format) : format_(std::move(format)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string text(msg.payload.data(), msg.payload.size());
    std::string level(spdlog::level::to_string_view(msg.level).data(), spdlog::level::to_string_view(msg.level).size());
    std::string line;
    if (format_ == "json") {
      line = nlohmann::json{{"time", utc_time(msg.time)}, {"level", level}, {"message", text}}.dump(
          -1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else if (format_ == "journal") {
      // journald stamps the line itself and reads "<N>" as its priority.
      line = "<" + std::to_string(priority(msg.level)) + ">" + text;
    } else {
      line = utc_time(msg.time) + " " + level + " " + text;
    }
    line += "\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<LineFormatter>(format_); }

 private:
  std::string format_;
};

}  // namespace

bool stderr_is_journal() {
  // systemd.exec(5): JOURNAL_STREAM is "DEVICE:INODE" of the stream it
  // connected stdout/stderr to; a match means stderr goes to the journal.
  const char* js = std::getenv("JOURNAL_STREAM");
  if (!js) return false;
  struct stat st{};
  if (fstat(2, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) && ino == static_cast<unsigned long long>(st.st_ino);
}

std::string log_format(const config::Daemon& d) {
  if (d.log_format != "auto") return d.log_format;
  return stderr_is_journal() ? "journal" : "text";
}

void setup_logging(const config::Daemon& d) {
  auto logger = std::make_shared<spdlog::logger>("pushgate", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(std::make_unique<LineFormatter>(log_format(d)));
  logger->set_level(spdlog::level::from_str(d.log_level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

}  // namespace pushgate::daemon
