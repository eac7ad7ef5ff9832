// Flight reports: text in osstest's layout, an HTML grid, JSON.

#include <pushgate/verdict.hpp>

#include <nlohmann/json.hpp>

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

const char* blocker_name(Blocker b) {
  switch (b) {
    case Blocker::none: return "none";
    case Blocker::broken: return "broken";
    case Blocker::unfinished: return "unfinished";
    case Blocker::regression: return "regression";
  }
  return "none";
}

std::string pad(const std::string& s, std::size_t n) { return s.size() >= n ? s + " " : s + std::string(n - s.size(), ' '); }


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

std::string render_text(const Report& r) {
  const Verdict& v = r.verdict;
  std::ostringstream o;
  o << v.subject(r.pushed) << "\n\n";
  o << "flight " << v.flight.str() << " " << v.branch << " " << r.flight.blessing << " ["
    << (r.intended.empty() ? r.flight.blessing : r.intended) << "]\n\n";
  o << (v.outcome == Outcome::regressions ? "Regressions :-(\n\n"
        : tolerable(v.outcome)            ? "Tolerable.\n\n"
                                          : "Problems: the flight cannot be judged tolerable.\n\n");
  auto section = [&](const std::string& title, const std::string& category) {
    std::vector<const Classified*> rows;
    for (const auto& c : v.steps) {
      if (c.category() == category) rows.push_back(&c);
    }
    if (rows.empty()) return;
    o << title << "\n";
    for (const auto* c : rows) {
      o << " " << pad(c->job, 38) << std::setw(2) << c->stepno << " " << pad(c->testid, 24) << pad(c->status, 9)
        << c->summary << (c->flight == v.flight ? "" : " (in " + c->flight.str() + ")") << "\n";
    }
    o << "\n";
  };
  section("Tests which did not succeed and are blocking,\nincluding tests which could not be run:", "blocking");
  section("Tests which are failing intermittently (not blocking):", "intermittent");
  section("Tests which did not succeed, but are allowable:", "allowable");
  section("Tests which did not succeed, but are not blocking:", "not blocking");
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
  if (r.basis_flight) o << pad("Last test of basis", 21) << pad(r.basis_flight->str(), 8) << utc(r.basis_time) << "\n";
  else o << "Last test of basis   (none: baseline untested)\n";
  if (r.failing_since) {
    o << pad("Failing since", 21) << pad(r.failing_since->str(), 8) << utc(r.failing_since_time) << "\n";
  }
  if (r.same_since) {
    o << pad("Testing same since", 21) << pad(r.same_since->str(), 8) << utc(r.same_since_time) << "  "
      << r.same_attempts << " attempt" << (r.same_attempts == 1 ? "" : "s") << "\n";
  }
  if (r.retest_flight) {
    o << pad("Regressions retested", 21) << pad(r.retest_flight->str(), 8)
      << (r.retest_outcome.empty() ? "(unfinished)" : r.retest_outcome) << "\n";
  }
  o << "\n";
  if (!r.people.empty()) {
    o << "People who touched revisions under test:\n";
    for (const auto& p : r.people) o << "  " << p << "\n";
    o << "\n";
  }
  o << "jobs:\n";
  for (const auto& j : r.flight.jobs) o << " " << pad(j.name, 60) << j.status << "\n";
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
  nlohmann::json j{{"flight", v.flight.value},
                   {"branch", v.branch},
                   {"blessing", r.flight.blessing},
                   {"subject", v.subject(r.pushed)},
                   {"outcome", to_string(v.outcome)},
                   {"tolerable", tolerable(v.outcome)},
                   {"job_word", v.job_word},
                   {"pushed", r.pushed},
                   {"push", r.push_text},
                   {"attempts", r.same_attempts},
                   {"people", r.people}};
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
                          {"blocker", blocker_name(c.blocker)}});
  }
  j["jobs"] = nlohmann::json::array();
  for (const auto& job : r.flight.jobs) j["jobs"].push_back({{"job", job.name}, {"status", job.status}});
  return j.dump(2);
}

std::string render_html(const Report& r) {
  const Verdict& v = r.verdict;
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << html_escape(v.subject(r.pushed))
    << "</title>\n<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;"
       "padding:2px 6px;font-size:90%}.pass{background:#8f8}.blocking{background:#f66}.intermittent{background:#fc6}"
       ".allowable{background:#ccf}.notblocking{background:#ddd}.none{background:#fff}</style></head><body>\n";
  o << "<h1>" << html_escape(v.subject(r.pushed)) << "</h1>\n<p>Outcome: <b>" << to_string(v.outcome) << "</b>. "
    << (r.pushed ? "Pushed: " : "Not pushed: ") << html_escape(r.push_text) << "</p>\n";
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
      if (log != r.logs.end()) o << "<a href=\"file://" << html_escape(log->second) << "\">" << html_escape(text) << "</a>";
      else o << html_escape(text);
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
