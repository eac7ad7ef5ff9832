// ABI records in the verdict (issue 18, SPEC section 10): which record a
// job's record is compared with, and what changed between two records.

#include <pushgate/verdict.hpp>

#include <algorithm>

#include <nlohmann/json.hpp>

namespace pushgate::verdict {

using nlohmann::json;

bool is_abi_item(const std::string& testid) { return testid.starts_with(kAbiItemPrefix); }

std::string abi_key(const std::string& testid) {
  return is_abi_item(testid) ? testid.substr(std::string(kAbiItemPrefix).size()) : std::string();
}

std::optional<AbiCompared> abi_reference(const FlightData& f, const Evidence& ev, const std::string& job,
                                         const std::string& key) {
  std::optional<AbiCompared> ref;
  for (const FlightData& b : ev.baselines) {  // newest first
    if (!(b.id < f.id)) continue;
    const FlightData::Job* bj = b.job(job);
    if (!bj) continue;
    auto r = bj->abi.find(key);
    if (r == bj->abi.end()) continue;
    ref = AbiCompared{job, key, 0, "", "same", b.id, r->second.digest};
    break;
  }
  if (auto a = ev.abi_accepted.find(job + "\n" + key); a != ev.abi_accepted.end()) {
    // An acceptance replaces the baselines' record until a newer baseline records the key.
    if (!ref || *ref->reference < a->second.flight) {
      ref = AbiCompared{job, key, 0, "", "accepted", a->second.flight, a->second.digest};
    }
  }
  return ref;
}

namespace {

/// RFC 6901: '~' and '/' in a key are written ~0 and ~1.
std::string pointer_token(const std::string& k) {
  std::string esc;
  for (char c : k) esc += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
  return esc;
}

void walk_diff(const std::string& job, const std::string& key, const json& before, const json& after,
               const std::string& path, std::vector<Report::AbiChange>& out) {
  if (before == after) return;
  if (before.is_object() && after.is_object()) {
    for (const auto& [k, v] : before.items()) {
      std::string p = path + "/" + pointer_token(k);
      if (!after.contains(k)) out.push_back({job, key, p, "remove", v.dump(), ""});
      else walk_diff(job, key, v, after.at(k), p, out);
    }
    for (const auto& [k, v] : after.items()) {
      if (before.contains(k)) continue;
      out.push_back({job, key, path + "/" + pointer_token(k), "add", "", v.dump()});
    }
    return;
  }
  if (before.is_array() && after.is_array() && before.size() == after.size()) {
    for (std::size_t i = 0; i < before.size(); ++i) {
      walk_diff(job, key, before[i], after[i], path + "/" + std::to_string(i), out);
    }
    return;
  }
  if (before.is_array() && after.is_array()) {
    // Lists of names (devices, properties, machine types) grow and shrink:
    // say which elements came and went rather than shifting every index.
    const std::size_t before_count = out.size();
    for (std::size_t i = 0; i < before.size(); ++i) {
      if (std::find(after.begin(), after.end(), before[i]) == after.end()) {
        out.push_back({job, key, path + "/" + std::to_string(i), "remove", before[i].dump(), ""});
      }
    }
    for (std::size_t i = 0; i < after.size(); ++i) {
      if (std::find(before.begin(), before.end(), after[i]) == before.end()) {
        out.push_back({job, key, path + "/" + std::to_string(i), "add", "", after[i].dump()});
      }
    }
    if (out.size() == before_count) {
      out.push_back({job, key, path, "replace", before.dump(), after.dump()});  // same elements, new order
    }
    return;
  }
  out.push_back({job, key, path.empty() ? "/" : path, "replace", before.dump(), after.dump()});
}

}  // namespace

std::string change_text(const Report::AbiChange& c) {
  if (c.op == "add") return "+ " + c.path + ": " + c.new_value;
  if (c.op == "remove") return "- " + c.path + ": " + c.old_value;
  return c.path + ": " + c.old_value + " -> " + c.new_value;
}

json to_json(const Report::AbiChange& c) {
  return {{"path", c.path}, {"op", c.op}, {"old", c.old_value}, {"new", c.new_value}};
}

std::vector<Report::AbiChange> abi_diff(const std::string& job, const std::string& key, const std::string& old_json,
                                        const std::string& new_json) {
  std::vector<Report::AbiChange> out;
  json before = json::parse(old_json, nullptr, false);
  json after = json::parse(new_json, nullptr, false);
  if (before.is_discarded() || after.is_discarded()) {
    out.push_back({job, key, "/", "replace", before.is_discarded() ? "(unreadable)" : before.dump(),
                   after.is_discarded() ? "(unreadable)" : after.dump()});
    return out;
  }
  walk_diff(job, key, before, after, "", out);
  return out;
}

}  // namespace pushgate::verdict
