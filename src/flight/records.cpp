// ABI records a step writes (issue 18, SPEC section 10): collected from the
// step's $PUSHGATE_ARTIFACTS after it ends, stored as canonical JSON files
// with their git blob id; the verdict compares the ids with the baseline's.

#include <pushgate/flight.hpp>
#include <pushgate/git.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace pushgate::flight {

namespace fs = std::filesystem;

std::string records_dir(const config::Config& config, FlightId flight, const std::string& job, int attempt) {
  return config.daemon.state_dir + "/records/" + flight.str() + "/" + job +
         (attempt > 1 ? ".attempt-" + std::to_string(attempt) : "");
}

namespace {

/// The whole file; false when it cannot be opened.
bool read_all(const fs::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  out = text.str();
  return true;
}

}  // namespace

bool valid_record_key(const std::string& key) {
  if (key.empty() || key.size() > 200) return false;
  std::size_t start = 0;
  while (start <= key.size()) {
    std::size_t slash = key.find('/', start);
    std::string seg = key.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (seg.empty() || seg.front() == '.') return false;
    for (char c : seg) {
      bool ok = std::isalnum(static_cast<unsigned char>(c)) || std::string("._+:@=,-").find(c) != std::string::npos;
      if (!ok) return false;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

Result<std::vector<store::Store::Artifact>> collect_records(const std::string& from, const std::string& to,
                                                            FlightId flight, const std::string& job, int stepno) {
  std::vector<store::Store::Artifact> out;
  std::error_code ec;
  if (!fs::exists(from, ec)) return out;
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(from, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory()) continue;
    files.push_back(it->path());
  }
  if (ec) return Status::internal("cannot read the records in " + from + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    std::string rel = fs::relative(file, from, ec).generic_string();
    if (!fs::is_regular_file(fs::symlink_status(file))) {
      return Status::invalid_argument("record " + rel + " is not a regular file");
    }
    if (!rel.ends_with(".json")) {
      return Status::invalid_argument("record " + rel + " is not a .json file",
                                      "a step writes each ABI record as $PUSHGATE_ARTIFACTS/KEY.json");
    }
    std::string key = rel.substr(0, rel.size() - 5);
    if (!valid_record_key(key)) {
      return Status::invalid_argument("record key \"" + key + "\" is not valid",
                                      "segments of letters, digits and ._+:@=,- joined by '/'");
    }
    std::string text;
    if (!read_all(file, text)) return Status::internal("cannot read record " + rel);
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !(j.is_object() || j.is_array())) {
      return Status::invalid_argument("record " + rel + " is not a JSON object or array");
    }
    // Canonical: keys sorted (nlohmann's object is a std::map), two-space
    // indent, so formatting never counts as a change and diffs read well.
    std::string canonical = j.dump(2) + "\n";
    fs::path dest = fs::path(to) / rel;
    fs::create_directories(dest.parent_path(), ec);
    if (ec) return Status::internal("cannot make " + dest.parent_path().string() + ": " + ec.message());
    {
      std::ofstream o(dest, std::ios::binary | std::ios::trunc);
      o << canonical;
      o.close();
      if (!o) return Status::internal("cannot write " + dest.string());
    }
    out.push_back({flight, job, stepno, key, git::blob_id(canonical), dest.string(), store::now()});
  }
  return out;
}

const store::Store::Artifact* find_record(const std::vector<store::Store::Artifact>& records, const std::string& job,
                                          const std::string& key) {
  for (const auto& r : records) {
    if (r.job == job && r.key == key) return &r;
  }
  return nullptr;
}

Result<std::string> read_record(const store::Store::Artifact& record) {
  std::string text;
  if (!read_all(record.path, text)) {
    return Status::not_found("the file of record " + record.key + " of " + record.job + " in flight " +
                             record.flight.str() + " (" + record.path + ") is gone");
  }
  return text;
}

}  // namespace pushgate::flight
