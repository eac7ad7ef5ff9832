// The pages: plain HTML tables, one stylesheet, links between them.

#include <pushgate/bisect.hpp>
#include <pushgate/web.hpp>

#include <pushgate/flight.hpp>
#include <pushgate/push.hpp>
#include <pushgate/revisions.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <sstream>

namespace pushgate::web {
Result<std::string> url_decode(const std::string& s, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (s[i] == '%') {
      int hi = i + 2 < s.size() ? hex(s[i + 1]) : -1, lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return Status::invalid_argument("bad %-escape in \"" + s + "\"", "escape as %XX, two hex digits");
      if (hi == 0 && lo == 0) return Status::invalid_argument("an escaped NUL (%00) in \"" + s + "\"");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

namespace {

std::string esc(const std::string& s) { return verdict::html_escape(s); }

std::string url(const std::string& s) { return verdict::url_encode(s); }

std::string ago(std::int64_t t) {
  std::int64_t d = store::now() - t;
  if (d < 120) return std::to_string(d < 0 ? 0 : d) + "s ago";
  if (d < 7200) return std::to_string(d / 60) + "m ago";
  if (d < 172800) return std::to_string(d / 3600) + "h ago";
  return std::to_string(d / 86400) + "d ago";
}

std::string css_class(const std::string& status) {
  if (status == "pass" || status == "perfect" || status == "tolerable" || status == "done" || status == "enabled") return "good";
  if (status == "fail" || status == "regressions" || status == "refused" || status == "quarantined") return "bad";
  if (status.empty() || status == "queued" || status == "running" || status == "preparing") return "pending";
  return "trouble";
}

std::string page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + esc(title) +
         " - pushgate</title>\n<style>body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse}"
         "td,th{border:1px solid #aaa;padding:3px 8px;text-align:left}.good{background:#9e9}.bad{background:#f88}"
         ".trouble{background:#fc7}.pending{background:#ddd}nav a{margin-right:1em}</style></head><body>\n"
         "<nav><a href=\"/\">branches</a><a href=\"/frozen\">frozen refs</a><a href=\"/api/v1/flights\">API</a>"
         "<a href=\"/metrics\">metrics</a></nav>\n<h1>" + esc(title) + "</h1>\n" + body + "</body></html>\n";
}

/// Query parameters; nullopt when one is badly escaped.
std::optional<std::map<std::string, std::string>> query_of(const std::string& target) {
  std::map<std::string, std::string> q;
  auto pos = target.find('?');
  if (pos == std::string::npos) return q;
  std::istringstream in(target.substr(pos + 1));
  for (std::string kv; std::getline(in, kv, '&');) {
    auto eq = kv.find('=');
    auto k = url_decode(kv.substr(0, eq));
    auto v = url_decode(eq == std::string::npos ? "" : kv.substr(eq + 1));
    if (!k || !v) return std::nullopt;
    q[*k] = *v;
  }
  return q;
}

Page board(const config::Config& cfg, const store::Store& st, revisions::Mirrors& mirrors) {
  std::ostringstream o;
  o << "<table id=\"branches\"><tr><th>branch</th><th>tree</th><th>tested revision</th><th>age</th><th>last flight</th>"
       "<th>outcome</th><th>push</th></tr>\n";
  for (const auto& b : cfg.branches) {
    auto bs = push::branch_status(cfg, st, mirrors, b);
    if (!bs) {
      o << "<tr><td>" << esc(b.name) << "</td><td colspan=\"6\">" << esc(bs.error().message()) << "</td></tr>\n";
      continue;
    }
    std::string tested = bs->tested_revision.empty() ? "(none)" : bs->tested_revision.substr(0, 12) + " " + bs->tested_describe;
    std::string age = bs->tested_commit_time ? ago(*bs->tested_commit_time) : "-";
    std::string flight = "-", outcome;
    if (bs->last_flight) {
      flight = "<a href=\"/flights/" + bs->last_flight->id.str() + "\">" + bs->last_flight->id.str() + "</a> " +
               ago(bs->last_flight->created);
      outcome = bs->last_flight->outcome;
    }
    std::string push = !bs->push_enabled ? "disabled"
                       : bs->blocked     ? "BLOCKED: " + esc(*bs->blocked)
                       : bs->last_push   ? bs->last_push->state + " " + ago(bs->last_push->created)
                                         : "-";
    if (bs->push_failures > 0) {
      push += " <b class=\"push-failures\" title=\"" + esc(bs->last_push ? bs->last_push->message : "") + "\">" +
              std::to_string(bs->push_failures) + " failed in a row</b>";
    }
    o << "<tr><td>" << esc(b.name) << "</td><td>" << esc(b.tree) << "</td><td>" << esc(tested) << "</td><td>" << age
      << "</td><td>" << flight << "</td><td class=\"" << css_class(outcome) << "\">"
      << esc(outcome.empty() ? "-" : outcome) << "</td><td>" << push << "</td></tr>\n";
  }
  o << "</table>\n<h2>Hosts</h2><table id=\"hosts\"><tr><th>host</th><th>kind</th><th>state</th><th>held by</th></tr>\n";
  if (auto hosts = st.list_hosts()) {
    for (const auto& h : *hosts) {
      o << "<tr><td><a href=\"/hosts/" << url(h.host) << "\">" << esc(h.host) << "</a></td><td>" << esc(h.kind)
        << "</td><td class=\"" << css_class(h.state) << "\">" << esc(h.state) << "</td><td>"
        << (h.held_flight ? "<a href=\"/flights/" + h.held_flight->str() + "\">" + h.held_flight->str() + "</a> " + esc(h.held_job) : "")
        << "</td></tr>\n";
    }
  }
  o << "</table>\n";
  return {200, page("Branches", o.str())};
}

Page flight_page(const config::Config& cfg, const store::Store& st, revisions::Mirrors& mirrors,
                 const std::string& number) {
  auto id = FlightId::parse(number);
  if (!id) return {404, page("No such flight", "<p>\"" + esc(number) + "\" is not a flight number.</p>")};
  long long n = id->value;
  if (auto f = st.get_flight(FlightId{n}); !f) return {404, page("Flight " + number, "<p>" + esc(f.error().message()) + "</p>")};
  auto rep = push::flight_report(cfg, st, mirrors, FlightId{n});
  if (!rep) return {500, page("Flight " + number, "<p>" + esc(rep.error().message()) + "</p>")};
  std::string html = verdict::render_html(*rep);
  // Link each job to its history.
  for (const auto& j : rep->flight.jobs) {
    std::string cell = "<tr><th>" + esc(j.name) + "</th>";
    auto pos = html.find(cell);
    if (pos != std::string::npos) {
      html.replace(pos, cell.size(), "<tr><th><a href=\"/history/job?branch=" + url(rep->flight.branch) + "&job=" +
                                         url(j.name) + "\">" + esc(j.name) + "</a></th>");
    }
  }
  // Steps of job attempts a daemon restart interrupted (the jobs ran again).
  if (auto attempts = st.list_step_attempts(FlightId{n}); attempts && !attempts->empty()) {
    std::ostringstream o;
    o << "<h2>Interrupted attempts</h2>\n<table id=\"attempts\"><tr><th>job</th><th>attempt</th><th>step</th>"
         "<th>testid</th><th>status</th><th>log</th></tr>\n";
    for (const auto& a : *attempts) {
      o << "<tr><td>" << esc(a.step.job) << "</td><td>" << a.attempt << "</td><td>" << a.step.stepno << "</td><td>"
        << esc(a.step.testid) << "</td><td class=\"" << css_class(a.step.status) << "\">" << esc(a.step.status)
        << "</td><td>" << esc(a.step.log_path) << "</td></tr>\n";
    }
    o << "</table>\n";
    if (auto end = html.rfind("</body>"); end != std::string::npos) html.insert(end, o.str());
  }
  auto nav = html.find("<body>");
  if (nav != std::string::npos) {
    html.insert(nav + 6, "\n<nav><a href=\"/\">branches</a> <a href=\"/api/v1/flights/" + number +
                             "/report?format=text\">text report</a></nav>");
  }
  return {200, html};
}

/// /flights/N/JOB/STEP[/log]: the step's log, as text or as a page that
/// follows it while the step runs.
Page log_page(const config::Config& cfg, const store::Store& st, const std::vector<std::string>& seg,
              const std::string& target) {
  auto parsed = query_of(target);
  if (!parsed) return {400, page("Log", "<p>A query parameter is badly %-escaped.</p>")};
  auto& q = *parsed;
  auto id = FlightId::parse(seg[1]);
  if (!id) return {404, page("No such flight", "<p>\"" + esc(seg[1]) + "\" is not a flight number.</p>")};
  flight::LogQuery lq;
  lq.job = seg[2];
  lq.step = seg[3];
  auto number = [&](const char* name, long long max) -> std::optional<long long> {
    if (!q.count(name)) return 0;
    const std::string& v = q[name];
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    long long n = std::stoll(v);
    return n > max ? std::nullopt : std::optional<long long>(n);
  };
  auto attempt = number("attempt", 1000), offset = number("offset", 1ll << 50), tail = number("tail", 1000000);
  const bool text = seg.size() == 5;
  auto bad = [&](const std::string& m) -> Page {
    if (text) return {400, m + "\n", "text/plain; charset=utf-8"};
    return {400, page("Log", "<p>" + esc(m) + "</p>")};
  };
  if (!attempt || !offset || !tail) return bad("attempt, offset and tail are non-negative numbers");
  lq.attempt = static_cast<int>(*attempt);
  lq.offset = *offset;
  lq.tail_lines = static_cast<int>(*tail);
  if (!text && !q.count("tail")) lq.tail_lines = 2000;  // the page opens on the end of a long log
  auto slice = flight::read_log(cfg, st, *id, lq);
  if (!slice) {
    int status = slice.error().code() == StatusCode::not_found ? 404 : 500;
    if (text) return {status, slice.error().message() + "\n", "text/plain; charset=utf-8"};
    return {status, page("Log", "<p>" + esc(slice.error().message()) + "</p>")};
  }
  const std::string base = "/flights/" + id->str() + "/" + url(slice->job) + "/" + std::to_string(slice->stepno);
  if (text && q.count("format") && q["format"] == "json") {
    nlohmann::json j{{"flight", id->value}, {"job", slice->job}, {"stepno", slice->stepno},
                     {"testid", slice->testid}, {"status", slice->status}, {"offset", slice->offset},
                     {"next", slice->offset + static_cast<std::int64_t>(slice->text.size())},
                     {"size", slice->size}, {"growing", slice->growing}, {"text", slice->text}};
    return {200, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "application/json"};
  }
  if (text) return {200, slice->text, "text/plain; charset=utf-8"};
  std::ostringstream o;
  o << "<p>Flight <a href=\"/flights/" << id->str() << "\">" << id->str() << "</a>, job <a href=\"/history/job?branch="
    << url(st.get_flight(*id) ? st.get_flight(*id)->branch : "") << "&amp;job=" << url(slice->job) << "\">"
    << esc(slice->job) << "</a>, step " << slice->stepno << " " << esc(slice->testid) << ": <b id=\"status\" class=\""
    << css_class(slice->status) << "\">" << esc(slice->status.empty() ? "starting" : slice->status) << "</b> "
    << "<a href=\"" << base << "/log\">plain text</a> <a href=\"" << base << "/log?tail=100\">last 100 lines</a></p>\n";
  if (slice->offset > 0) {
    o << "<p class=\"note\">" << slice->offset << " bytes before this are not shown: <a href=\"" << base
      << "/log\">the whole log</a>.</p>\n";
  }
  o << "<pre id=\"log\">" << esc(slice->text) << "</pre>\n";
  if (slice->growing) {
    // Follow the growing log: fetch what was added since, until the step ends.
    o << "<p id=\"follow\">following the log while the step runs&hellip;</p>\n<script>\n(function(){\n"
         "var next=" << slice->offset + static_cast<std::int64_t>(slice->text.size()) << ";\n"
         "var url='" << base << "/log?format=json" << (lq.attempt ? "&attempt=" + std::to_string(lq.attempt) : "") << "';\n"
         "var pre=document.getElementById('log'),st=document.getElementById('status'),fo=document.getElementById('follow');\n"
         "function poll(){fetch(url+'&offset='+next).then(function(r){return r.json();}).then(function(j){\n"
         " var end=window.innerHeight+window.scrollY>=document.body.scrollHeight-4;\n"
         " if(j.text){pre.appendChild(document.createTextNode(j.text));}\n"
         " next=j.next;st.textContent=j.status||'starting';st.className=j.status=='pass'?'good':j.status=='running'?'pending':'bad';\n"
         " if(end)window.scrollTo(0,document.body.scrollHeight);\n"
         " if(j.growing||j.next<j.size){setTimeout(poll,j.next<j.size?0:1000);}else{fo.textContent='the step has ended';}\n"
         "}).catch(function(){setTimeout(poll,5000);});}\n"
         "setTimeout(poll,1000);\n})();\n</script>\n";
  }
  return {200, page("Log of " + slice->job + " step " + std::to_string(slice->stepno) + " " + slice->testid, o.str())};
}

Page job_history(const store::Store& st, const std::string& target) {
  auto parsed = query_of(target);
  if (!parsed) return {400, page("Job history", "<p>A query parameter is badly %-escaped.</p>")};
  auto& q = *parsed;
  if (!q.count("branch") || !q.count("job")) return {404, page("Job history", "<p>Give ?branch=B&amp;job=J.</p>")};
  std::ostringstream o;
  o << "<table id=\"history\"><tr><th>flight</th><th>when</th><th>status</th><th>host</th><th>revisions</th></tr>\n";
  auto flights = st.list_flights({.branch = q["branch"], .limit = 30});
  if (flights) {
    for (const auto& f : *flights) {
      auto jobs = st.list_jobs(f.id);
      if (!jobs) continue;
      for (const auto& j : *jobs) {
        if (j.job != q["job"]) continue;
        std::string host, revs;
        if (auto vars = st.list_runvars(f.id, j.job)) {
          for (const auto& v : *vars) {
            if (v.name == "host") host = v.value;
            if (v.name.starts_with("revision_")) revs += v.name.substr(9) + " " + v.value.substr(0, 12) + " ";
          }
        }
        o << "<tr><td><a href=\"/flights/" << f.id.str() << "\">" << f.id.str() << "</a></td><td>" << ago(f.created)
          << "</td><td class=\"" << css_class(j.status) << "\">" << esc(j.status) << "</td><td>"
          << (host.empty() ? "" : "<a href=\"/hosts/" + url(host) + "\">" + esc(host) + "</a>") << "</td><td>"
          << esc(revs) << "</td></tr>\n";
      }
    }
  }
  o << "</table>\n";
  return {200, page("History of " + q["job"] + " on " + q["branch"], o.str())};
}

Page host_page(const store::Store& st, const std::string& host) {
  auto hosts = st.list_hosts();
  if (!hosts) return {500, page("Host", esc(hosts.error().message()))};
  const store::Host* h = nullptr;
  for (const auto& x : *hosts) {
    if (x.host == host) h = &x;
  }
  if (!h) return {404, page("No such host", "<p>No host \"" + esc(host) + "\".</p>")};
  std::ostringstream o;
  o << "<p>Kind " << esc(h->kind) << ", state <span class=\"" << css_class(h->state) << "\">" << esc(h->state)
    << "</span> " << esc(h->state_reason) << ", flags:";
  for (const auto& f : h->flags) o << " " << esc(f);
  o << "</p>\n<table id=\"history\"><tr><th>when</th><th>event</th><th>flight</th><th>job</th><th>detail</th></tr>\n";
  if (auto ev = st.host_history(host, 50)) {
    for (const auto& e : *ev) {
      o << "<tr><td>" << ago(e.at) << "</td><td>" << esc(e.event) << "</td><td>"
        << (e.flight ? "<a href=\"/flights/" + e.flight->str() + "\">" + e.flight->str() + "</a>" : "") << "</td><td>"
        << esc(e.job) << "</td><td>" << esc(e.detail) << "</td></tr>\n";
    }
  }
  o << "</table>\n";
  return {200, page("Host " + host, o.str())};
}

Page frozen_page(const config::Config& cfg, const store::Store& st, revisions::Mirrors& mirrors) {
  std::ostringstream o;
  o << "<table id=\"frozen\"><tr><th>tree</th><th>branch</th><th>revision</th><th>describe</th></tr>\n";
  if (auto list = revisions::list_frozen(cfg, mirrors)) {
    for (const auto& f : *list) {
      o << "<tr><td>" << esc(f.tree) << "</td><td>" << esc(f.branch) << "</td><td>" << esc(f.revision.substr(0, 12))
        << "</td><td>" << esc(f.describe) << "</td></tr>\n";
    }
  }
  o << "</table>\n<h2>Changes</h2><table><tr><th>when</th><th>who</th><th>action</th><th>tree</th><th>branch</th>"
       "<th>new</th><th>reason</th><th>outcome</th></tr>\n";
  if (auto h = st.frozen_history("", "", 50)) {
    for (const auto& c : *h) {
      o << "<tr><td>" << ago(c.at) << "</td><td>" << esc(c.who) << "</td><td>" << esc(c.action) << "</td><td>"
        << esc(c.tree) << "</td><td>" << esc(c.branch) << "</td><td>" << esc(c.describe) << "</td><td>"
        << esc(c.reason) << "</td><td>" << esc(c.state) << (c.note.empty() ? "" : ": " + esc(c.note))
        << "</td></tr>\n";
    }
  }
  o << "</table>\n";
  return {200, page("Frozen refs", o.str())};
}

Page bisections_page(const config::Config& cfg, const store::Store& st) {
  auto rows = st.list_bisections({"", "", 100});
  if (!rows) return {500, page("Bisections", "<p>" + esc(rows.error().message()) + "</p>")};
  std::ostringstream o;
  o << "<nav><a href=\"/\">branches</a></nav>\n<h1>Bisections</h1>\n<table id=\"bisections\"><tr><th>id</th><th>branch</th>"
       "<th>flight</th><th>jobs</th><th>status</th><th>first bad commit</th><th>flights</th><th>started</th></tr>\n";
  for (const auto& r : *rows) {
    auto b = bisect::load(cfg, st, r.id);
    if (!b) continue;
    std::string what;
    for (const auto& t : b->targets) what += (what.empty() ? "" : ", ") + t.job + " " + t.testid;
    o << "<tr><td><a href=\"/bisections/" << b->id << "\">" << b->id << "</a></td><td>" << esc(b->branch)
      << "</td><td><a href=\"/flights/" << b->flight.str() << "\">" << b->flight.str() << "</a></td><td>" << esc(what)
      << "</td><td class=\"" << css_class(b->status == bisect::State::complete ? "pass" : b->status == bisect::State::running ? "running" : "fail")
      << "\">" << bisect::to_string(b->status) << "</td><td>"
      << (b->culprit ? esc(b->culprit->tree + " " + b->culprit->id.substr(0, 12) + " " + b->culprit->subject) : "")
      << "</td><td>" << b->flights.size() << "</td><td>" << ago(b->created) << "</td></tr>\n";
  }
  o << "</table>\n";
  return {200, page("Bisections", o.str())};
}

Page bisection_page(const config::Config& cfg, const store::Store& st, const std::string& number) {
  auto id = bisect::parse_id(number);
  if (!id) return {404, page("No such bisection", "<p>\"" + esc(number) + "\" is not a bisection id.</p>")};
  auto b = bisect::load(cfg, st, *id);
  if (!b) return {404, page("Bisection " + number, "<p>" + esc(b.error().message()) + "</p>")};
  std::ostringstream o;
  o << "<nav><a href=\"/\">branches</a> <a href=\"/bisections\">bisections</a> <a href=\"/api/v1/bisections/"
    << b->id << "\">JSON</a></nav>\n<h1>Bisection " << b->id << " of " << esc(b->branch) << "</h1>\n";
  o << "<p>Flight <a href=\"/flights/" << b->flight.str() << "\">" << b->flight.str()
    << "</a> against basis flight <a href=\"/flights/" << b->basis_flight.str() << "\">" << b->basis_flight.str()
    << "</a>: <b>" << bisect::to_string(b->status) << "</b> " << esc(b->reason) << "</p>\n";
  if (b->culprit) {
    o << "<h2>First bad commit</h2>\n<table id=\"culprit\"><tr><th>tree</th><td>" << esc(b->culprit->tree)
      << "</td></tr><tr><th>commit</th><td>" << esc(b->culprit->id) << "</td></tr><tr><th>author</th><td>"
      << esc(b->culprit->author) << "</td></tr><tr><th>subject</th><td>" << esc(b->culprit->subject)
      << "</td></tr></table>\n<pre>" << esc(b->culprit->message) << "</pre>\n";
  }
  o << "<h2>Flights</h2>\n<p>";
  for (FlightId f : b->flights) o << "<a href=\"/flights/" << f.str() << "\">" << f.str() << "</a> ";
  o << "</p>\n<h2>Revision graph</h2>\n";
  if (auto svg = bisect::to_svg(*b)) {
    std::string s = *svg;
    if (auto at = s.find("<svg"); at != std::string::npos) s = s.substr(at);  // the XML prologue cannot sit inside HTML
    o << "<div id=\"graph\">" << s << "</div>\n";
  } else {
    o << "<p>" << esc(svg.error().message()) << "</p><pre>" << esc(bisect::to_dot(*b)) << "</pre>\n";
  }
  return {200, page("Bisection " + number, o.str())};
}

}  // namespace

Page render(const config::Config& config, const store::Store& store, const std::string& target,
            revisions::Mirrors* open_mirrors) {
  revisions::Mirrors own(config);
  revisions::Mirrors& mirrors = open_mirrors ? *open_mirrors : own;
  std::string path = target.substr(0, target.find('?'));
  // /flights/N/JOB/STEP and /flights/N/JOB/STEP/log, each segment decoded.
  if (path.starts_with("/flights/") && std::count(path.begin(), path.end(), '/') >= 4) {
    std::vector<std::string> seg;
    std::istringstream in(path.substr(1));
    for (std::string s; std::getline(in, s, '/');) {
      auto d = url_decode(s, false);
      if (!d) return {400, page("Bad request", "<p>" + esc(d.error().message()) + "</p>")};
      seg.push_back(*d);
    }
    if ((seg.size() == 4 || (seg.size() == 5 && seg[4] == "log")) && !seg[2].empty() && !seg[3].empty()) {
      return log_page(config, store, seg, target);
    }
    return {404, page("Not found", "<p>No page at " + esc(path) + ".</p>")};
  }
  if (path == "/" || path == "/branches") return board(config, store, mirrors);
  if (path.starts_with("/flights/")) return flight_page(config, store, mirrors, path.substr(9));
  if (path == "/history/job") return job_history(store, target);
  if (path.starts_with("/hosts/")) {
    auto host = url_decode(path.substr(7), false);
    if (!host) return {400, page("Bad request", "<p>" + esc(host.error().message()) + "</p>")};
    return host_page(store, *host);
  }
  if (path == "/frozen") return frozen_page(config, store, mirrors);
  if (path == "/bisections") return bisections_page(config, store);
  if (path.starts_with("/bisections/")) return bisection_page(config, store, path.substr(12));
  return {404, page("Not found", "<p>No page at " + esc(path) + ". <a href=\"/\">Branches</a>.</p>")};
}

}  // namespace pushgate::web
