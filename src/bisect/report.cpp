// What a bisection shows: JSON (schemas/bisection.schema.json), the text
// report, and the revision graph drawn by Graphviz.

#include <pushgate/bisect.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <algorithm>

namespace pushgate::bisect {

namespace {

using json = nlohmann::json;

/// The node's result over every target: fail if any failed, pass if all
/// that have a result passed, untestable, or untested.
std::string result_of(const Node& n) {
  bool pass = false, fail = false, untestable = false;
  for (const auto& t : n.tallies) {
    fail = fail || t.fail > 0;
    pass = pass || t.pass > 0;
    untestable = untestable || t.untestable > 0;
  }
  if (fail && pass) return "inconsistent";
  if (fail) return "fail";
  if (pass) return "pass";
  if (untestable) return "untestable";
  if (n.boundary) return "implied pass";
  return "untested";
}

std::string label_of(const Node& n) {
  if (n.changed_tree.empty()) return "basis";
  return n.changed_tree + " " + n.commit.substr(0, 12);
}

std::string escape_dot(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

json to_json(const Commit& c) {
  json j{{"tree", c.tree}, {"commit", c.id}};
  if (!c.author.empty()) {
    j["author"] = c.author;
    j["date"] = c.time;
    j["subject"] = c.subject;
    j["message"] = c.message;
  }
  return j;
}

std::optional<std::int64_t> parse_id(const std::string& text) {
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(text);
}

json to_json(const Bisection& b) {
  json j;
  j["id"] = b.id;
  j["branch"] = b.branch;
  j["flight"] = b.flight.value;
  j["basis_flight"] = b.basis_flight.value;
  j["who"] = b.who;
  j["status"] = to_string(b.status);
  j["reason"] = b.reason;
  j["created"] = b.created;
  j["finished"] = b.finished ? json(*b.finished) : json(nullptr);
  j["jobs"] = json::array();
  j["testids"] = json::array();
  j["targets"] = json::array();
  for (const auto& t : b.targets) {
    if (std::find(j["jobs"].begin(), j["jobs"].end(), t.job) == j["jobs"].end()) j["jobs"].push_back(t.job);
    if (std::find(j["testids"].begin(), j["testids"].end(), t.testid) == j["testids"].end()) j["testids"].push_back(t.testid);
    json tj{{"job", t.job}, {"testid", t.testid}, {"status", to_string(t.status)}, {"reason", t.reason}};
    tj["culprit"] = t.culprit ? json(b.nodes.at(static_cast<std::size_t>(*t.culprit)).commit) : json(nullptr);
    tj["not_present"] = t.not_present ? json(b.nodes.at(static_cast<std::size_t>(*t.not_present)).commit) : json(nullptr);
    j["targets"].push_back(tj);
  }
  j["trees"] = b.trees;
  j["culprit"] = b.culprit ? to_json(*b.culprit) : json(nullptr);
  j["not_present"] = b.not_present ? json(b.not_present->id) : json(nullptr);
  j["flights"] = json::array();
  for (FlightId f : b.flights) j["flights"].push_back(f.value);
  j["pins"] = b.pins;
  j["nodes"] = json::array();
  for (std::size_t i = 0; i < b.nodes.size(); ++i) {
    const Node& n = b.nodes[i];
    json nj{{"index", i},
            {"tuple", n.revisions},
            {"changed_tree", n.changed_tree},
            {"commit", n.commit},
            {"parents", n.parents},
            {"boundary", n.boundary},
            {"result", result_of(n)}};
    nj["flights"] = json::array();
    for (FlightId f : n.flights) nj["flights"].push_back(f.value);
    nj["results"] = json::array();
    for (const auto& t : n.tallies) {
      nj["results"].push_back({{"pass", t.pass}, {"fail", t.fail}, {"untestable", t.untestable}, {"probes", t.probes}});
    }
    j["nodes"].push_back(nj);
  }
  return j;
}

std::string to_dot(const Bisection& b, const std::string& flight_url) {
  std::set<int> culprits;
  for (const auto& t : b.targets) {
    if (t.culprit) culprits.insert(*t.culprit);
  }
  std::ostringstream o;
  o << "digraph bisection {\n  rankdir=BT;\n  node [shape=box, style=filled, fontname=\"monospace\"];\n";
  for (std::size_t i = 0; i < b.nodes.size(); ++i) {
    const Node& n = b.nodes[i];
    std::string r = result_of(n);
    const char* colour = r == "fail"           ? "#f4a0a0"
                         : r == "pass"         ? "#a0e0a0"
                         : r == "implied pass" ? "#e0f4e0"
                         : r == "untestable"   ? "#f0d890"
                         : r == "inconsistent" ? "#d0a0f0"
                                               : "#ffffff";
    o << "  n" << i << " [label=\"" << escape_dot(label_of(n)) << "\\n" << r;
    if (!n.flights.empty()) {
      o << " (";
      for (std::size_t k = 0; k < n.flights.size(); ++k) o << (k ? " " : "") << n.flights[k].str();
      o << ")";
    }
    o << "\", fillcolor=\"" << colour << "\"";
    if (culprits.count(static_cast<int>(i))) o << ", penwidth=3, color=\"#c00000\", xlabel=\"first bad\"";
    if (!n.flights.empty()) o << ", URL=\"" << escape_dot(flight_url + n.flights.back().str()) << "\"";
    o << "];\n";
  }
  for (std::size_t i = 0; i < b.nodes.size(); ++i) {
    for (int p : b.nodes[i].parents) o << "  n" << p << " -> n" << i << ";\n";
  }
  o << "}\n";
  return o.str();
}

Result<std::string> to_svg(const Bisection& b, const std::string& flight_url) {
  // dot reads the graph on stdin and writes SVG to stdout; a temporary file
  // holds the input so that neither pipe can fill while the other waits.
  char in_path[] = "/tmp/pushgate-dot-XXXXXX";
  int in_fd = ::mkstemp(in_path);
  if (in_fd < 0) return Status::unavailable(std::string("cannot make a temporary file: ") + std::strerror(errno));
  std::string dot = to_dot(b, flight_url);
  bool wrote = ::write(in_fd, dot.data(), dot.size()) == static_cast<ssize_t>(dot.size());
  ::close(in_fd);
  if (!wrote) {
    ::unlink(in_path);
    return Status::unavailable("cannot write the graph for dot");
  }
  std::string cmd = std::string("dot -Tsvg < '") + in_path + "' 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    ::unlink(in_path);
    return Status::unavailable("cannot run dot (Debian package graphviz)");
  }
  std::string out;
  char buf[8192];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int rc = ::pclose(p);
  ::unlink(in_path);
  if (rc != 0 || out.find("<svg") == std::string::npos) {
    return Status::unavailable("dot failed (is the Debian package graphviz installed?)");
  }
  return out;
}

std::string report(const Bisection& b) {
  std::ostringstream o;
  o << "bisection " << b.id << " of " << b.branch << ": flight " << b.flight.str() << " against basis flight "
    << b.basis_flight.str() << "\n";
  o << "status: " << to_string(b.status) << (b.reason.empty() ? "" : " (" + b.reason + ")") << "\n";
  for (const auto& t : b.targets) {
    o << "  " << t.job << " " << t.testid << ": " << to_string(t.status);
    if (t.culprit) o << ", first bad " << label_of(b.nodes.at(static_cast<std::size_t>(*t.culprit)));
    o << "\n";
  }
  if (!b.trees.empty()) {
    o << "trees searched:";
    for (const auto& t : b.trees) o << " " << t;
    o << " (" << b.nodes.size() << " revision tuples)\n";
  }
  if (b.culprit) {
    o << "\n*** Found and reproduced problem changeset ***\n\n";
    o << "  tree:    " << b.culprit->tree << "\n";
    o << "  commit:  " << b.culprit->id << "\n";
    o << "  author:  " << b.culprit->author << "\n";
    o << "  subject: " << b.culprit->subject << "\n";
    if (b.not_present) o << "  Bug not present: " << b.not_present->id << "\n";
    o << "\n";
    std::istringstream msg(b.culprit->message);
    for (std::string line; std::getline(msg, line);) o << "    " << line << "\n";
  }
  o << "\nflights:";
  if (b.flights.empty()) o << " none yet";
  for (FlightId f : b.flights) o << " " << f.str();
  o << "\n";
  for (std::size_t i = 0; i < b.nodes.size(); ++i) {
    const Node& n = b.nodes[i];
    if (n.flights.empty() && !n.changed_tree.empty()) continue;  // untested nodes: see --json or the graph
    o << "  " << label_of(n) << ": " << result_of(n);
    for (FlightId f : n.flights) o << " " << f.str();
    o << "\n";
  }
  return o.str();
}

}  // namespace pushgate::bisect
