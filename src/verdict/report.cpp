// Flight reports: text in osstest's layout, an HTML grid, JSON.

#include <pushgate/verdict.hpp>

#include <nlohmann/json.hpp>

#include <cctype>
#include <ctime>
#include <algorithm>
#include <iomanip>
#include <set>
#include <sstream>

namespace pushgate::verdict {

extern const char kVerdictSchema[];  // generated from schemas/verdict.schema.json

const std::string& report_schema() {
  static const std::string s = kVerdictSchema;
  return s;
}

namespace {

std::string utc(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S Z", &tm);
  return buf;
}

std::string pad(const std::string& s, std::size_t n) { return s.size() >= n ? s + " " : s + std::string(n - s.size(), ' '); }

/// "   3 days" (osstest's age column).
std::string days(std::int64_t from, std::int64_t to) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%4lld days", static_cast<long long>(to > from ? (to - from) / 86400 : 0));
  return buf;
}

std::string attempts(int n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%4d attempt%s", n, n == 1 ? "" : "s");
  return buf;
}

/// The status column: ours as it is, another flight's as "fail in H".
std::string status_cell(const Verdict& v, const Classified& c) {
  return c.flight == v.flight ? c.status : c.status + " in " + c.flight.str();
}

struct Progress {
  int done = 0, running = 0, queued = 0, total = 0;
  std::string text() const {
    return "In progress: " + std::to_string(done) + " of " + std::to_string(total) + " jobs done, " +
           std::to_string(running) + " running, " + std::to_string(queued) + " queued.";
  }
};

Progress progress(const FlightData& f) {
  Progress p;
  for (const auto& j : f.jobs) {
    ++p.total;
    if (j.status == "running" || j.status == "preparing") ++p.running;
    else if (j.status == "queued") ++p.queued;
    else ++p.done;
  }
  return p;
}

std::string subject(const Report& r) {
  if (r.judged) return r.verdict.subject(r.pushed);
  Progress p = progress(r.flight);
  return "[" + r.flight.branch + " test] " + r.flight.id.str() + ": running " + std::to_string(p.done) + "/" +
         std::to_string(p.total);
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string log_url(const std::string& base, FlightId flight, const std::string& job, int stepno) {
  return base + "/flights/" + flight.str() + "/" + url_encode(job) + "/" + std::to_string(stepno) + "/log";
}

std::string trigger_text(const std::string& kind, const std::string& detail) {
  if (kind.empty()) return "";
  if (kind == "retest") return "retest of flight " + detail;
  if (kind == "bisection") return "bisection " + detail;
  return detail.empty() ? kind : kind + " (" + detail + ")";
}

std::string render_text(const Report& r) {
  const Verdict& v = r.verdict;
  std::ostringstream o;
  o << subject(r) << "\n\n";
  o << "flight " << r.flight.id.str() << " " << r.flight.branch << " " << r.flight.blessing << " ["
    << (r.intended.empty() ? r.flight.blessing : r.intended) << "]\n";
  if (!r.trigger.empty()) o << "triggered by " << r.trigger << "\n";
  if (!r.logs_url.empty()) o << "logs: " << r.logs_url << "\n";
  o << "\n";
  if (!r.judged) {
    o << progress(r.flight).text() << "\nThe verdict is given when the flight has finished.\n\njobs:\n";
    for (const auto& j : r.flight.jobs) o << " " << pad(j.name, 60) << j.status << "\n";
    return o.str();
  }
  for (const auto& e : r.earlier_verdicts) o << "Note: " << e << "\n";
  if (!r.earlier_verdicts.empty()) o << "\n";
  o << headline(v.outcome) << "\n\n";
  // Columns as wide as their widest cell, so long job names stay aligned.
  std::size_t jw = 30, tw = 22, sw = 8;
  for (const auto& c : v.steps) {  // + 1: a cell never touches the next
    jw = std::max(jw, c.job.size() + 1);
    tw = std::max(tw, c.testid.size() + 1);
    sw = std::max(sw, status_cell(v, c).size() + 1);
  }
  auto section = [&](const std::string& title, const std::string& category) {
    std::vector<const Classified*> rows;
    for (const auto& c : v.steps) {
      if (c.category() == category) rows.push_back(&c);
    }
    if (rows.empty()) return;
    o << title << "\n";
    for (const auto* c : rows) {
      std::string no = c->stepno > 0 ? std::to_string(c->stepno) : "";
      o << " " << pad(c->job, jw) << std::setw(3) << std::right << no << std::left << " " << pad(c->testid, tw)
        << pad(status_cell(v, *c), sw) << c->summary << "\n";
    }
    o << "\n";
  };
  section("Tests which did not succeed and are blocking,\nincluding tests which could not be run:", "blocking");
  section("Tests which are failing intermittently (not blocking):", "intermittent");
  section("Tests which did not succeed, but are allowable:", "allowable");
  section("Tests which did not succeed, but are not blocking:", "not blocking");
  {
    // Where to read why each blocking step failed (the step's own log).
    std::vector<std::pair<std::string, std::string>> links;
    for (const auto& c : v.steps) {
      if (c.category() != "blocking" || c.stepno <= 0 || !(c.flight == v.flight)) continue;
      if (auto l = r.logs.find(c.job + "\n" + std::to_string(c.stepno)); l != r.logs.end()) {
        links.emplace_back(c.job + " " + c.testid, l->second);
      }
    }
    if (!links.empty()) {
      o << "Logs of the blocking steps:\n";
      for (const auto& [what, link] : links) o << " " << what << "\n   " << link << "\n";
      o << "\n";
    }
  }
  if (!v.abi.empty()) {
    // Issue 18: the records that differ from their reference, field by field.
    int same = 0, fresh = 0;
    std::ostringstream changed;
    for (const auto& a : v.abi) {
      if (a.state == "same" || a.state == "accepted") ++same;
      if (a.state == "new") ++fresh;
      if (a.state != "changed") continue;
      changed << " " << a.job << " abi " << a.key << ": changed vs. " << (a.reference ? a.reference->str() : "?") << " ("
              << a.reference_digest.substr(0, 12) << " -> " << a.digest.substr(0, 12) << ")\n";
      for (const auto& c : r.abi_changes) {
        if (c.job != a.job || c.key != a.key) continue;
        changed << "   " << change_text(c) << "\n";
      }
    }
    if (!changed.str().empty()) {
      o << "ABI records that differ from the baseline's:\n" << changed.str()
        << " (a release manager who means the change: pushgate abi accept " << v.branch << " KEY --reason ...)\n";
    }
    o << "ABI records: " << v.abi.size() << " (" << same << " as the reference, " << fresh << " recorded the first time)\n\n";
  }
  o << "version targeted for testing:\n";
  for (const auto& ver : r.versions) {
    o << " " << pad(ver.tree, 20) << ver.tested << (ver.tested_describe.empty() ? "" : " (" + ver.tested_describe + ")")
      << "\n";
  }
  o << "baseline version:\n";
  for (const auto& ver : r.versions) {
    o << " " << pad(ver.tree, 20) << (ver.baseline.empty() ? "(none)" : ver.baseline)
      << (ver.baseline_describe.empty() ? "" : " (" + ver.baseline_describe + ")") << "\n";
  }
  o << "\n";
  std::int64_t now = r.now ? r.now : std::time(nullptr);
  if (r.basis_flight) {
    o << pad("Last test of basis", 21) << pad(r.basis_flight->str(), 8) << utc(r.basis_time) << " "
      << days(r.basis_time, now) << "\n";
  } else {
    o << "Last test of basis   (none: baseline untested)\n";
  }
  if (r.failing_since) {
    o << pad("Failing since", 21) << pad(r.failing_since->str(), 8) << utc(r.failing_since_time) << " "
      << days(r.failing_since_time, now) << " " << attempts(r.failing_attempts) << "\n";
  }
  if (r.same_since) {
    o << pad("Testing same since", 21) << pad(r.same_since->str(), 8) << utc(r.same_since_time) << " "
      << days(r.same_since_time, now) << " " << attempts(r.same_attempts) << "\n";
  }
  if (r.retest_flight) {
    o << pad("Regressions retested", 21) << pad(r.retest_flight->str(), 8)
      << (r.retest_outcome.empty() ? "(unfinished)" : r.retest_outcome) << "\n";
  }
  o << "\n";
  if (!r.people.empty()) {
    o << "------------------------------------------------------------\nPeople who touched revisions under test:\n";
    for (const auto& p : r.people) o << "  " << p << "\n";
    o << "\n";
  }
  std::size_t njw = 60;
  for (const auto& j : r.flight.jobs) njw = std::max(njw, j.name.size() + 1);
  o << "jobs:\n";
  for (const auto& j : r.flight.jobs) o << " " << pad(j.name, njw) << j.status << "\n";
  o << "\n" << (r.pushed ? "Pushing revision: " : "Not pushing: ") << r.push_text << "\n";
  if (!r.commits.empty()) {
    o << "\n------------------------------------------------------------\ncommit log:\n";
    for (const auto& c : r.commits) {
      o << " " << c.tree << " " << c.id.substr(0, 12) << " " << c.subject << " (" << c.author << ")\n";
    }
  }
  return o.str();
}

std::string render_json(const Report& r) {
  const Verdict& v = r.verdict;
  Progress prog = progress(r.flight);
  nlohmann::json j{{"flight", r.flight.id.value},
                   {"branch", r.flight.branch},
                   {"blessing", r.flight.blessing},
                   {"subject", subject(r)},
                   {"judged", r.judged},
                   {"headline", r.judged ? std::string(headline(v.outcome)) : prog.text()},
                   {"outcome", r.judged ? nlohmann::json(to_string(v.outcome)) : nlohmann::json(nullptr)},
                   {"tolerable", r.judged && tolerable(v.outcome)},
                   {"progress", {{"done", prog.done}, {"running", prog.running}, {"queued", prog.queued}, {"total", prog.total}}},
                   {"earlier_verdicts", r.earlier_verdicts},
                   {"failing_attempts", r.failing_attempts},
                   {"job_word", v.job_word},
                   {"pushed", r.pushed},
                   {"push", r.push_text},
                   {"attempts", r.same_attempts},
                   {"people", r.people},
                   {"trigger", r.trigger},
                   {"logs_url", r.logs_url}};
  j["baselines"] = nlohmann::json::array();
  for (const auto& b : v.baselines) j["baselines"].push_back(b.value);
  j["last_test_of_basis"] = r.basis_flight ? nlohmann::json(r.basis_flight->value) : nlohmann::json(nullptr);
  j["failing_since"] = r.failing_since ? nlohmann::json(r.failing_since->value) : nlohmann::json(nullptr);
  j["testing_same_since"] = r.same_since ? nlohmann::json(r.same_since->value) : nlohmann::json(nullptr);
  j["retest_flight"] = r.retest_flight ? nlohmann::json(r.retest_flight->value) : nlohmann::json(nullptr);
  j["versions"] = nlohmann::json::array();
  for (const auto& ver : r.versions) {
    j["versions"].push_back({{"tree", ver.tree}, {"this", ver.tested}, {"that", ver.baseline},
                             {"this_describe", ver.tested_describe}, {"that_describe", ver.baseline_describe}});
  }
  j["steps"] = nlohmann::json::array();
  for (const auto& c : v.steps) {
    j["steps"].push_back({{"flight", c.flight.value}, {"job", c.job}, {"stepno", c.stepno}, {"testid", c.testid},
                          {"status", c.status}, {"summary", c.summary}, {"category", c.category()},
                          {"cited", c.cited ? nlohmann::json(c.cited->value) : nlohmann::json(nullptr)},
                          {"blocker", to_string(c.blocker)}});
  }
  j["jobs"] = nlohmann::json::array();
  for (const auto& job : r.flight.jobs) j["jobs"].push_back({{"job", job.name}, {"status", job.status}});
  j["abi"] = nlohmann::json::array();
  for (const auto& a : v.abi) {
    nlohmann::json changes = nlohmann::json::array();
    for (const auto& c : r.abi_changes) {
      if (c.job != a.job || c.key != a.key) continue;
      changes.push_back(to_json(c));
    }
    j["abi"].push_back({{"job", a.job}, {"key", a.key}, {"stepno", a.stepno}, {"digest", a.digest}, {"state", a.state},
                        {"reference", a.reference ? nlohmann::json(a.reference->value) : nlohmann::json(nullptr)},
                        {"reference_digest", a.reference_digest}, {"changes", changes}});
  }
  return j.dump(2);
}

std::string render_html(const Report& r) {
  const Verdict& v = r.verdict;
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << html_escape(subject(r))
    << "</title>\n<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;"
       "padding:2px 6px;font-size:90%}.pass{background:#8f8}.blocking{background:#f66}.intermittent{background:#fc6}"
       ".allowable{background:#ccf}.notblocking{background:#ddd}.none{background:#fff}</style></head><body>\n";
  o << "<h1>" << html_escape(subject(r)) << "</h1>\n";
  if (!r.trigger.empty()) o << "<p id=\"trigger\">Triggered by " << html_escape(r.trigger) << "</p>\n";
  if (r.judged) {
    o << "<p id=\"headline\"><b>" << html_escape(headline(v.outcome)) << "</b> "
      << (r.pushed ? "Pushed: " : "Not pushed: ") << html_escape(r.push_text) << "</p>\n";
    for (const auto& e : r.earlier_verdicts) o << "<p class=\"note\">" << html_escape(e) << "</p>\n";
  } else {
    o << "<p id=\"progress\">" << html_escape(progress(r.flight).text()) << " The verdict is given when the flight has finished.</p>\n";
  }
  if (r.retest_flight) {
    o << "<p>Regressions retested in flight " << r.retest_flight->str() << ": "
      << html_escape(r.retest_outcome.empty() ? "unfinished" : r.retest_outcome) << "</p>\n";
  }
  std::vector<std::string> testids;
  std::set<std::string> seen;
  for (const auto& j : r.flight.jobs) {
    for (const auto& s : j.steps) {
      if (seen.insert(s.testid).second) testids.push_back(s.testid);
    }
  }
  o << "<table><tr><th>job</th><th>status</th>";
  for (const auto& t : testids) o << "<th>" << html_escape(t) << "</th>";
  o << "</tr>\n";
  for (const auto& j : r.flight.jobs) {
    o << "<tr><th>" << html_escape(j.name) << "</th><td>" << html_escape(j.status) << "</td>";
    for (const auto& t : testids) {
      const FlightData::Step* step = nullptr;
      for (const auto& s : j.steps) {
        if (s.testid == t) step = &s;
      }
      if (!step) {
        o << "<td class=\"none\"></td>";
        continue;
      }
      std::string cls = "pass", text = step->status;
      for (const auto& c : v.steps) {
        if (c.flight == v.flight && c.job == j.name && c.testid == t) {
          cls = c.category();
          cls.erase(std::remove(cls.begin(), cls.end(), ' '), cls.end());
          text = step->status + ": " + c.summary;
        }
      }
      auto log = r.logs.find(j.name + "\n" + std::to_string(step->stepno));
      o << "<td class=\"" << cls << "\">";
      if (log != r.logs.end()) {
        // A running step's cell opens the live view, which follows the log.
        std::string href = log->second;
        if (step->status == "running" && href.ends_with("/log")) href.resize(href.size() - 4);
        o << "<a href=\"" << html_escape(href) << "\">" << html_escape(text) << "</a>";
      } else {
        o << html_escape(text);
      }
      o << "</td>";
    }
    o << "</tr>\n";
  }
  o << "</table>\n<h2>Versions</h2><table><tr><th>tree</th><th>tested</th><th>baseline</th></tr>\n";
  for (const auto& ver : r.versions) {
    // The describe is shown when a tag says more than the short id.
    auto cell = [](const std::string& rev, const std::string& describe) {
      std::string shortid = rev.substr(0, 12);
      return html_escape(describe.empty() || describe == shortid ? shortid : shortid + " " + describe);
    };
    o << "<tr><td>" << html_escape(ver.tree) << "</td><td>" << cell(ver.tested, ver.tested_describe) << "</td><td>"
      << cell(ver.baseline, ver.baseline_describe) << "</td></tr>\n";
  }
  o << "</table>\n<h2>Report</h2><pre>" << html_escape(render_text(r)) << "</pre>\n</body></html>\n";
  return o.str();
}

}  // namespace pushgate::verdict
