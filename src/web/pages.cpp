// The pages: plain HTML tables, one stylesheet, links between them.

#include <pushgate/bisect.hpp>
#include <pushgate/web.hpp>

#include "templates.hpp"

#include <pushgate/flight.hpp>
#include <pushgate/push.hpp>
#include <pushgate/revisions.hpp>
#include <pushgate/scheduler.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <set>
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

/// A page with one sentence (errors, not-found).
std::string message_page(const std::string& title, const std::string& message, bool home = false) {
  return render_page(title, "message", {{"message", message}, {"home", home}});
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

std::string progress_text(const store::Store& st, FlightId id);
std::string duration_text(std::int64_t seconds);

Page board(const config::Config& cfg, const store::Store& st, revisions::Mirrors& mirrors) {
  mstch::array branches;
  for (const auto& b : cfg.branches) {
    auto bs = push::branch_status(cfg, st, mirrors, b);
    if (!bs) {
      branches.push_back(mstch::map{{"name", b.name}, {"error", bs.error().message()}});
      continue;
    }
    mstch::map row{{"name", b.name}, {"href", url(b.name)}, {"tree", b.tree}};
    row["tested"] = bs->tested_revision.empty() ? std::string("(none)")
                                                : bs->tested_revision.substr(0, 12) + " " + bs->tested_describe;
    row["age"] = bs->tested_commit_time ? ago(*bs->tested_commit_time) : std::string("-");
    std::string outcome;
    if (bs->last_flight) {
      row["flight"] = bs->last_flight->id.str();
      row["flight_ago"] = ago(bs->last_flight->created);
      outcome = bs->last_flight->outcome;
      if (outcome.empty()) row["progress"] = progress_text(st, bs->last_flight->id);
    }
    row["outcome"] = outcome.empty() ? std::string("-") : outcome;
    row["outcome_class"] = css_class(outcome);
    row["push"] = !bs->push_enabled ? std::string("disabled")
                  : bs->blocked     ? "BLOCKED: " + *bs->blocked
                  : bs->last_push   ? bs->last_push->state + " " + ago(bs->last_push->created)
                                    : std::string("-");
    row["push_failures"] = bs->push_failures;
    row["push_message"] = bs->last_push ? bs->last_push->message : std::string();
    branches.push_back(std::move(row));
  }
  mstch::array hosts;
  if (auto list = st.list_hosts()) {
    for (const auto& h : *list) {
      mstch::map row{{"host", h.host}, {"href", url(h.host)}, {"kind", h.kind}, {"state", h.state},
                     {"state_class", css_class(h.state)}};
      if (h.held_flight) {
        row["held_flight"] = h.held_flight->str();
        row["held_job"] = h.held_job;
      }
      hosts.push_back(std::move(row));
    }
  }
  return {200, render_page("Branches", "board", {{"branches", branches}, {"hosts", hosts}})};
}

/// What a job waiting for hosts wants, every eligible host and who holds
/// it, and how long it has waited (SPEC section 4: the starve limit).
struct WaitInfo {
  std::string wants;    ///< "host: x86,hvm; src_host: x86"
  mstch::array eligible;  ///< {host, href, held}
  std::string holders;  ///< "h0 held by flight 3 build-amd64, h1 free"
  std::int64_t waited = 0;
};

WaitInfo describe_wait(const store::Store::Waiter& w, const std::vector<store::Host>& hosts, std::int64_t now) {
  WaitInfo out;
  out.waited = w.since ? std::max<std::int64_t>(0, now - w.since) : 0;
  std::istringstream in(w.roles);  // "role=flag,flag;role=flag"
  for (std::string part; std::getline(in, part, ';');) {
    auto eq = part.find('=');
    std::vector<std::string> flags;
    std::istringstream fl(eq == std::string::npos ? "" : part.substr(eq + 1));
    for (std::string x; std::getline(fl, x, ',');) {
      if (!x.empty()) flags.push_back(x);
    }
    std::string list;
    for (const auto& x : flags) list += (list.empty() ? "" : ",") + x;
    out.wants += (out.wants.empty() ? "" : "; ") + part.substr(0, eq) + ": " + (list.empty() ? std::string("any host") : list);
    for (const auto& h : hosts) {
      bool ok = std::all_of(flags.begin(), flags.end(), [&](const std::string& x) {
        return std::find(h.flags.begin(), h.flags.end(), x) != h.flags.end() ||
               x == std::string(scheduler::kHostFlagPrefix) + h.host;
      });
      if (!ok) continue;
      std::string held = h.state != "enabled" ? "(" + h.state + ")"
                         : h.held_flight      ? "held by flight " + h.held_flight->str() + " " + h.held_job
                                              : std::string("free");
      out.eligible.push_back(mstch::map{{"host", h.host}, {"href", url(h.host)}, {"held", held}});
      out.holders += (out.holders.empty() ? "" : ", ") + h.host + " " + held;
    }
  }
  return out;
}

/// The median time step `testid` of `job` took in the branch's last few
/// flights that ran it to pass or fail (not flight `except`); 0 unknown.
std::int64_t usual_step_seconds(const store::Store& st, const std::string& branch, const std::string& job,
                                const std::string& testid, FlightId except) {
  auto runs = st.job_history(branch, job, testid, 6);
  if (!runs) return 0;
  std::vector<std::int64_t> took;
  for (const auto& r : *runs) {
    if (r.flight == except || (r.step_status != "pass" && r.step_status != "fail")) continue;
    auto steps = st.list_steps(r.flight);
    if (!steps) continue;
    for (const auto& s : *steps) {
      if (s.job == job && s.testid == testid && s.started && s.finished) took.push_back(*s.finished - *s.started);
    }
    if (took.size() >= 5) break;
  }
  if (took.empty()) return 0;
  std::sort(took.begin(), took.end());
  return took[took.size() / 2];
}

/// A flight: while it runs or waits, its progress (jobs done, running,
/// queued; each running step's time against its usual one; each waiting
/// job's reason) in a part the page refreshes by itself; once judged, the
/// stored verdict. The grid stays readable at 120 jobs: it scrolls inside
/// its box with the header row and the job column kept in view.
Page flight_page(const config::Config& cfg, const store::Store& st, revisions::Mirrors& mirrors,
                 const std::string& number) {
  auto id = FlightId::parse(number);
  if (!id) return {404, message_page("No such flight", "\"" + number + "\" is not a flight number.")};
  auto fl = st.get_flight(*id);
  if (!fl) return {404, message_page("Flight " + number, fl.error().message())};
  auto rep = push::flight_report(cfg, st, mirrors, *id);
  if (!rep) return {500, message_page("Flight " + number, rep.error().message())};
  const verdict::Report& r = *rep;
  auto jobs = st.list_jobs(*id);
  auto steps = st.list_steps(*id);
  auto hosts = st.list_hosts();
  auto waiters = st.waiters();
  if (!jobs || !steps || !hosts || !waiters) return {500, message_page("Flight " + number, "the store could not be read")};
  const std::int64_t now = store::now();
  std::map<std::string, const store::Job*> job_rows;
  for (const auto& j : *jobs) job_rows[j.job] = &j;
  std::map<std::string, const store::Step*> step_rows;  // "job\nstepno"
  for (const auto& s : *steps) step_rows[s.job + "\n" + std::to_string(s.stepno)] = &s;
  // Every job's runvars in one query (the page is fetched every few
  // seconds while the flight runs): host roles and reused builds.
  std::map<std::string, std::vector<const store::Runvar*>> vars_of;
  auto all_vars = st.list_runvars(*id);
  if (!all_vars) return {500, message_page("Flight " + number, all_vars.error().message())};
  for (const auto& v : *all_vars) vars_of[v.job].push_back(&v);
  std::map<std::string, const store::Store::Waiter*> waiting;
  for (const auto& w : *waiters) {
    if (w.flight == *id) waiting[w.job] = &w;
  }
  std::vector<std::string> testids;
  std::set<std::string> seen;
  for (const auto& j : r.flight.jobs) {
    for (const auto& s : j.steps) {
      if (seen.insert(s.testid).second) testids.push_back(s.testid);
    }
  }
  std::map<std::string, std::string> status_of;
  for (const auto& j : r.flight.jobs) status_of[j.name] = j.status;
  int done = 0, running = 0, queued = 0;
  mstch::array job_list;
  for (const auto& j : r.flight.jobs) {
    if (waiting.count(j.name)) {
      // counted as waiting for hosts
    } else if (j.status == "running" || j.status == "preparing") {
      ++running;
    } else if (j.status == "queued") {
      ++queued;
    } else {
      ++done;
    }
    const config::Job* cj = cfg.find_job(j.name);
    mstch::array host_list;
    std::string reused;
    for (const store::Runvar* v : vars_of[j.name]) {
      if (cj && cj->hosts.count(v->name) && !v->value.empty()) host_list.push_back(mstch::map{{"host", v->value}, {"href", url(v->value)}});
      if (v->name == "reused_from") reused = v->value.substr(0, v->value.find('.'));
    }
    mstch::array cells;
    std::string now_text;
    for (const auto& t : testids) {
      const verdict::FlightData::Step* step = nullptr;
      for (const auto& s : j.steps) {
        if (s.testid == t) step = &s;
      }
      if (!step) {
        cells.push_back(mstch::map{{"cls", std::string("none")}});
        continue;
      }
      mstch::map cell{{"stepno", step->stepno}, {"text", step->status}, {"title", t},
                      {"running", step->status == "running"}};
      std::string cls = step->status == "pass" ? "pass" : step->status == "running" || step->status.empty() ? "running" : "notblocking";
      for (const auto& c : r.verdict.steps) {
        if (r.judged && c.flight == r.verdict.flight && c.job == j.name && c.testid == t) {
          cls = c.category();
          cls.erase(std::remove(cls.begin(), cls.end(), ' '), cls.end());
          cell["summary"] = c.summary;
          if (c.cited) cell["cited"] = c.cited->str();
        }
      }
      cell["cls"] = cls;
      if (step->status == "running") {
        auto row = step_rows.find(j.name + "\n" + std::to_string(step->stepno));
        std::int64_t elapsed = row != step_rows.end() && row->second->started ? now - *row->second->started : 0;
        std::int64_t usual = usual_step_seconds(st, r.flight.branch, j.name, t, *id);
        now_text = t + " running " + duration_text(elapsed) + (usual ? " (usually " + duration_text(usual) + ")" : "");
      }
      cells.push_back(std::move(cell));
    }
    if (auto w = waiting.find(j.name); w != waiting.end()) {
      WaitInfo info = describe_wait(*w->second, *hosts, now);
      now_text = "waiting " + duration_text(info.waited) + " of " + duration_text(cfg.daemon.starve_after_seconds) +
                 " for " + info.wants + (info.holders.empty() ? "; no host has those flags" : "; " + info.holders);
    } else if (j.status == "queued" && cj) {
      std::string deps;
      for (const auto& d : cj->depends) {
        auto it = status_of.find(d);
        if (it != status_of.end() && it->second != "pass") deps += (deps.empty() ? "" : ", ") + d + " (" + it->second + ")";
      }
      now_text = deps.empty() ? "queued" : "waits for " + deps;
    } else if (now_text.empty() && reused.empty() && job_rows.count(j.name)) {
      now_text = job_rows[j.name]->status_reason;
    }
    job_list.push_back(mstch::map{{"job", j.name}, {"job_url", url(j.name)}, {"status", j.status},
                                  {"status_class", css_class(j.status)}, {"hosts", host_list}, {"cells", cells},
                                  {"reused", reused}, {"now", now_text}});
  }
  mstch::array versions;
  for (const auto& v : r.versions) {
    auto cell = [](const std::string& rev, const std::string& describe) {
      std::string shortid = rev.substr(0, 12);
      return describe.empty() || describe == shortid ? shortid : shortid + " " + describe;
    };
    versions.push_back(mstch::map{{"tree", v.tree}, {"tested", cell(v.tested, v.tested_describe)},
                                  {"baseline", cell(v.baseline, v.baseline_describe)}});
  }
  mstch::array earlier, testid_list, attempt_rows;
  for (const auto& e : r.earlier_verdicts) earlier.push_back(e);
  for (const auto& t : testids) testid_list.push_back(t);
  if (auto attempts = st.list_step_attempts(*id)) {
    for (const auto& a : *attempts) {
      attempt_rows.push_back(mstch::map{{"job", a.step.job}, {"attempt", a.attempt}, {"stepno", a.step.stepno},
                                        {"testid", a.step.testid}, {"status", a.step.status},
                                        {"status_class", css_class(a.step.status)}, {"log", a.step.log_path}});
    }
  }
  mstch::map data{{"flight", id->str()},
                  {"branch_url", url(r.flight.branch)},
                  {"trigger", r.trigger},
                  {"judged", r.judged},
                  {"headline", std::string(verdict::headline(r.verdict.outcome))},
                  {"pushed", r.pushed},
                  {"push_text", r.push_text},
                  {"earlier", earlier},
                  {"retest", r.retest_flight ? r.retest_flight->str() : std::string()},
                  {"retest_outcome", r.retest_outcome.empty() ? std::string("unfinished") : r.retest_outcome},
                  {"retest_of", r.flight.retest_of ? r.flight.retest_of->str() : std::string()},
                  {"progress", fl->outcome.empty() && running == 0 && done == 0 ? std::string("queued") : std::string("running")},
                  {"done", done},
                  {"total", static_cast<int>(r.flight.jobs.size())},
                  {"running", running},
                  {"queued", queued},
                  {"waiting", static_cast<int>(waiting.size())},
                  {"updated", !r.judged},
                  {"testids", testid_list},
                  {"jobs", job_list},
                  {"versions", versions},
                  {"has_attempts", !attempt_rows.empty()},
                  {"attempts", attempt_rows},
                  {"report", verdict::render_text(r)}};
  // Issue 18: each ABI record and how it compared; a changed one with its fields.
  mstch::array abi_rows;
  for (const auto& a : r.verdict.abi) {
    std::string changes;
    for (const auto& c : r.abi_changes) {
      if (c.job != a.job || c.key != a.key) continue;
      changes += (changes.empty() ? "" : "; ") + verdict::change_text(c);
    }
    abi_rows.push_back(mstch::map{{"job", a.job}, {"key", a.key}, {"state", a.state},
                                  {"state_class", a.state == "changed" ? std::string("blocking") : std::string("pass")},
                                  {"reference", a.reference ? a.reference->str() : std::string()},
                                  {"digest", a.digest.substr(0, 12)}, {"changes", changes}});
  }
  data["has_abi"] = !abi_rows.empty();
  data["abi"] = abi_rows;
  data["extra_nav"] = mstch::array{
      mstch::map{{"href", "/branches/" + url(r.flight.branch)}, {"text", "branch " + r.flight.branch}},
      mstch::map{{"href", "/api/v1/flights/" + id->str() + "/report?format=text"}, {"text", std::string("text report")}}};
  std::string title = r.judged ? r.verdict.subject(r.pushed)
                               : "[" + r.flight.branch + " test] " + id->str() + ": " +
                                     (running || done ? "running " : "queued ") + std::to_string(done) + "/" +
                                     std::to_string(r.flight.jobs.size());
  return {200, render_page(title, "flight", std::move(data))};
}

/// /flights/N/JOB/STEP[/log]: the step's log, as text or as a page that
/// follows it while the step runs.
Page log_page(const config::Config& cfg, const store::Store& st, const std::vector<std::string>& seg,
              const std::string& target) {
  auto parsed = query_of(target);
  if (!parsed) return {400, message_page("Log", "A query parameter is badly %-escaped.")};
  auto& q = *parsed;
  auto id = FlightId::parse(seg[1]);
  if (!id) return {404, message_page("No such flight", "\"" + seg[1] + "\" is not a flight number.")};
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
    return {400, message_page("Log", m)};
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
    return {status, message_page("Log", slice.error().message())};
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
  auto fl = st.get_flight(*id);
  const std::int64_t next = slice->offset + static_cast<std::int64_t>(slice->text.size());
  mstch::map data{{"flight", id->str()},
                  {"branch_url", url(fl ? fl->branch : "")},
                  {"job", slice->job},
                  {"job_url", url(slice->job)},
                  {"stepno", slice->stepno},
                  {"testid", slice->testid},
                  {"testid_url", url(slice->testid)},
                  {"status", slice->status.empty() ? std::string("starting") : slice->status},
                  {"status_class", css_class(slice->status)},
                  {"cut", slice->offset > 0 ? std::to_string(slice->offset) : std::string()},
                  {"text", slice->text},
                  {"growing", slice->growing},
                  // Inside <script>: digits and url_encode()d segments only.
                  {"next", std::to_string(next)},
                  {"follow_url", base + "/log?format=json" + (lq.attempt ? "&attempt=" + std::to_string(lq.attempt) : "")}};
  return {200, render_page("Log of " + slice->job + " step " + std::to_string(slice->stepno) + " " + slice->testid, "log",
                           std::move(data))};
}

/// One job over the branch's last flights: its status, the step that
/// failed (linked to its log), the host, and one column per tree with the
/// revision it ran, bold where it changed since the run before.
Page job_history(const config::Config& cfg, const store::Store& st, const std::string& target) {
  auto parsed = query_of(target);
  if (!parsed) return {400, message_page("Job history", "A query parameter is badly %-escaped.")};
  auto& q = *parsed;
  if (!q.count("branch") || !q.count("job")) return {404, message_page("Job history", "Give ?branch=B&job=J.")};
  auto runs = st.job_history(q["branch"], q["job"], "", 30);
  if (!runs) return {500, message_page("Job history", runs.error().message())};
  std::vector<std::string> trees;
  for (const auto& t : cfg.trees) {
    bool used = std::any_of(runs->begin(), runs->end(), [&](const store::Store::JobRun& r) {
      return r.runvars.count("built_revision_" + t.name) || r.runvars.count("revision_" + t.name);
    });
    if (used) trees.push_back(t.name);
  }
  auto revision = [](const store::Store::JobRun& r, const std::string& tree) {
    auto it = r.runvars.find("built_revision_" + tree);
    if (it == r.runvars.end()) it = r.runvars.find("revision_" + tree);
    return it == r.runvars.end() ? std::string() : it->second;
  };
  mstch::array rows;
  for (std::size_t i = 0; i < runs->size(); ++i) {
    const auto& r = (*runs)[i];
    std::string failing;
    int failing_stepno = 0;
    if (r.job_status != "pass") {
      if (auto steps = st.list_steps(r.flight)) {
        for (const auto& s : *steps) {
          if (s.job == q["job"] && s.status != "pass" && s.status != "running" && failing.empty()) {
            failing = s.testid + " " + s.status;
            failing_stepno = s.stepno;
          }
        }
      }
    }
    mstch::array revs;
    for (const auto& t : trees) {
      std::string rev = revision(r, t);
      bool changed = i + 1 < runs->size() && !rev.empty() && rev != revision((*runs)[i + 1], t);
      revs.push_back(mstch::map{{"revision", rev.substr(0, 12)}, {"changed", changed}});
    }
    std::string host = r.runvars.count("host") ? r.runvars.at("host") : std::string();
    rows.push_back(mstch::map{{"flight", r.flight.str()}, {"ago", ago(r.created)}, {"status", r.job_status},
                              {"status_class", css_class(r.job_status)}, {"failing", failing},
                              {"failing_stepno", failing_stepno}, {"job_url", url(q["job"])}, {"host", host},
                              {"host_url", url(host)}, {"revisions", revs}});
  }
  mstch::array tree_list;
  for (const auto& t : trees) tree_list.push_back(t);
  return {200, render_page("History of " + q["job"] + " on " + q["branch"], "job_history",
                           {{"runs", rows}, {"trees", tree_list}})};
}

/// A host: what it ran (flight, branch, job, role, result) and per-branch
/// totals, then its state changes (quarantine, disable...), not the raw
/// allocate/release events.
Page host_page(const store::Store& st, const std::string& host) {
  auto hosts = st.list_hosts();
  if (!hosts) return {500, message_page("Host", hosts.error().message())};
  const store::Host* h = nullptr;
  for (const auto& x : *hosts) {
    if (x.host == host) h = &x;
  }
  if (!h) return {404, message_page("No such host", "No host \"" + host + "\".")};
  mstch::array flags, uses, changes;
  for (const auto& f : h->flags) flags.push_back(f);
  struct Tally {
    int jobs = 0, pass = 0, fail = 0, broken = 0, other = 0;
  };
  std::map<std::string, Tally> by_branch;
  struct FlightRow {
    std::string branch;
    std::vector<store::Job> jobs;
  };
  std::map<FlightId, FlightRow> flights;  // read once per flight, however many events name it
  if (auto ev = st.host_history(host, 200)) {
    for (const auto& e : *ev) {
      if (e.event == "release") continue;
      if (e.event != "allocate" || !e.flight) {
        changes.push_back(mstch::map{{"ago", ago(e.at)}, {"event", e.event}, {"detail", e.detail}});
        continue;
      }
      if (!flights.count(*e.flight)) {
        FlightRow row;
        if (auto f = st.get_flight(*e.flight)) row.branch = f->branch;
        if (auto jobs = st.list_jobs(*e.flight)) row.jobs = std::move(*jobs);
        flights.emplace(*e.flight, std::move(row));
      }
      const FlightRow& fr = flights.at(*e.flight);
      const std::string& branch = fr.branch;
      std::string status = "?", reason;
      for (const auto& j : fr.jobs) {
        if (j.job == e.job) {
          status = j.status;
          reason = j.status_reason;
        }
      }
      if (uses.size() < 50) {
        uses.push_back(mstch::map{{"ago", ago(e.at)}, {"flight", e.flight->str()}, {"branch", branch},
                                  {"branch_url", url(branch)}, {"job", e.job}, {"job_url", url(e.job)},
                                  {"role", e.role}, {"status", status}, {"status_class", css_class(status)},
                                  {"reason", reason}});
      }
      Tally& t = by_branch[branch];
      ++t.jobs;
      (status == "pass" ? t.pass : status == "fail" ? t.fail : status == "broken" ? t.broken : t.other)++;
    }
  }
  mstch::array branches;
  for (const auto& [b, t] : by_branch) {
    branches.push_back(mstch::map{{"branch", b}, {"branch_url", url(b)}, {"jobs", t.jobs}, {"pass", t.pass},
                                  {"fail", t.fail}, {"broken", t.broken}, {"other", t.other}});
  }
  return {200, render_page("Host " + host, "host",
                           {{"kind", h->kind}, {"state", h->state}, {"state_class", css_class(h->state)},
                            {"reason", h->state_reason}, {"flags", flags}, {"uses", uses}, {"by_branch", branches},
                            {"has_changes", !changes.empty()}, {"changes", changes}})};
}

Page frozen_page(const config::Config& cfg, const store::Store& st, revisions::Mirrors& mirrors) {
  mstch::array frozen, changes;
  if (auto list = revisions::list_frozen(cfg, mirrors)) {
    for (const auto& f : *list) {
      frozen.push_back(mstch::map{{"tree", f.tree}, {"branch", f.branch}, {"revision", f.revision.substr(0, 12)},
                                  {"describe", f.describe}});
    }
  }
  if (auto h = st.frozen_history("", "", 50)) {
    for (const auto& c : *h) {
      changes.push_back(mstch::map{{"ago", ago(c.at)}, {"who", c.who}, {"action", c.action}, {"tree", c.tree},
                                   {"branch", c.branch}, {"describe", c.describe}, {"reason", c.reason},
                                   {"state", c.state}, {"note", c.note}});
    }
  }
  return {200, render_page("Frozen refs", "frozen", {{"frozen", frozen}, {"changes", changes}})};
}

/// "running 4/10" (jobs done of all), "queued 0/10": an unfinished flight.
std::string progress_text(const store::Store& st, FlightId id) {
  auto jobs = st.list_jobs(id);
  if (!jobs) return "running";
  int done = 0;
  bool running = false;
  for (const auto& j : *jobs) {
    if (j.status == "running" || j.status == "preparing") running = true;
    else if (j.status != "queued") ++done;
  }
  return std::string(running || done > 0 ? "running " : "queued ") + std::to_string(done) + "/" + std::to_string(jobs->size());
}

std::string duration_text(std::int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds / 3600) + "h " + std::to_string(seconds % 3600 / 60) + "m";
}

mstch::map flight_row(const store::Store& st, const store::Flight& f) {
  std::string outcome = f.outcome.empty() ? progress_text(st, f.id) : f.outcome;
  return mstch::map{{"flight", f.id.str()},
                    {"branch", f.branch},
                    {"branch_url", url(f.branch)},
                    {"blessing", f.blessing},
                    {"trigger", f.trigger_kind.empty() ? std::string() : verdict::trigger_text(f.trigger_kind, f.trigger_detail)},
                    {"ago", ago(f.created)},
                    {"outcome", outcome},
                    {"outcome_class", css_class(f.outcome)}};
}

/// A query number: digits only, at most `max`; nullopt when absent.
Result<std::optional<std::int64_t>> query_number(std::map<std::string, std::string>& q, const std::string& name,
                                                 std::int64_t max) {
  if (!q.count(name) || q[name].empty()) return std::optional<std::int64_t>{};
  const std::string& v = q[name];
  if (v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos || std::stoll(v) > max) {
    return Status::invalid_argument(name + " must be a number up to " + std::to_string(max));
  }
  return std::optional<std::int64_t>(std::stoll(v));
}

Page flights_page(const config::Config& cfg, const store::Store& st, const std::string& target) {
  auto parsed = query_of(target);
  if (!parsed) return {400, message_page("Flights", "A query parameter is badly %-escaped.")};
  auto& q = *parsed;
  store::FlightFilter f;
  f.branch = q["branch"];
  f.outcome = q["outcome"];
  f.limit = 50;
  if (!f.branch.empty() && !cfg.find_branch(f.branch)) {
    return {404, message_page("Flights", "No branch \"" + f.branch + "\" is configured.")};
  }
  static const std::vector<std::string> outcomes{"perfect", "tolerable", "regressions", "problems"};
  if (!f.outcome.empty() && std::find(outcomes.begin(), outcomes.end(), f.outcome) == outcomes.end()) {
    return {400, message_page("Flights", "outcome must be one of perfect, tolerable, regressions, problems.")};
  }
  auto before = query_number(q, "before", 1ll << 53);
  if (!before) return {400, message_page("Flights", before.error().message())};
  f.before = *before;
  auto flights = st.list_flights(f);
  if (!flights) return {500, message_page("Flights", flights.error().message())};
  mstch::array rows, branches, outs;
  for (const auto& fl : *flights) rows.push_back(flight_row(st, fl));
  for (const auto& b : cfg.branches) branches.push_back(mstch::map{{"name", b.name}, {"selected", b.name == f.branch}});
  for (const auto& o : outcomes) outs.push_back(mstch::map{{"name", o}, {"selected", o == f.outcome}});
  mstch::map data{{"flights", rows}, {"branch_options", branches}, {"outcome_options", outs},
                  {"filtered", !f.branch.empty() || !f.outcome.empty()}};
  if (static_cast<int>(flights->size()) == f.limit) {
    data["older"] = "/flights?before=" + flights->back().id.str() + (f.branch.empty() ? "" : "&branch=" + url(f.branch)) +
                    (f.outcome.empty() ? "" : "&outcome=" + f.outcome);
  }
  std::string title = f.branch.empty() ? "Flights" : "Flights of " + f.branch;
  if (!f.outcome.empty()) title += " (" + f.outcome + ")";
  return {200, render_page(title, "flights", std::move(data))};
}

Page branch_page(const config::Config& cfg, const store::Store& st, revisions::Mirrors& mirrors, const std::string& name) {
  const config::Branch* b = cfg.find_branch(name);
  if (!b) return {404, message_page("No such branch", "No branch \"" + name + "\" is configured.", true)};
  auto bs = push::branch_status(cfg, st, mirrors, *b);
  if (!bs) return {500, message_page("Branch " + name, bs.error().message())};
  mstch::map data{{"name", b->name}, {"branch_url", url(b->name)}, {"tree", b->tree}, {"tested_ref", bs->tested_ref}};
  data["tested"] = bs->tested_revision.empty() ? std::string("(not in the mirror yet)")
                                               : bs->tested_revision.substr(0, 12) + " " + bs->tested_describe;
  if (bs->tested_commit_time) data["age"] = "committed " + ago(*bs->tested_commit_time);
  data["streak"] = bs->streak_kind.empty() ? std::string("no finished real flight")
                                           : std::to_string(bs->streak) + " " + bs->streak_kind + " in a row";
  data["streak_class"] = bs->streak_kind == "tolerable" ? std::string("good") : bs->streak_kind.empty() ? std::string("pending") : std::string("bad");
  data["push"] = !bs->push_enabled ? std::string("disabled in the config")
                 : bs->blocked     ? "BLOCKED: " + *bs->blocked
                                   : std::string("enabled") + (bs->push_failures ? ", " + std::to_string(bs->push_failures) + " failed in a row" : "");
  if (bs->last_tolerable) data["last_tolerable"] = bs->last_tolerable->id.str();
  mstch::array frozen;
  if (auto list = revisions::list_frozen(cfg, mirrors)) {
    for (const auto& fz : *list) {
      if (fz.branch != b->name) continue;
      frozen.push_back(mstch::map{{"tree", fz.tree}, {"ref", fz.ref}, {"revision", fz.revision.substr(0, 12)},
                                  {"describe", fz.describe}});
    }
  }
  data["has_frozen"] = !frozen.empty();
  data["frozen"] = frozen;
  mstch::array flights, pushes;
  if (auto list = st.list_flights({.branch = b->name, .limit = 20})) {
    for (const auto& fl : *list) flights.push_back(flight_row(st, fl));
  }
  if (auto list = st.pushes(b->name, 20)) {
    for (const auto& p : *list) {
      pushes.push_back(mstch::map{{"ago", ago(p.created)}, {"flight", p.flight ? p.flight->str() : std::string()},
                                  {"old", p.old_rev.substr(0, 12)}, {"new", p.new_rev.substr(0, 12)}, {"state", p.state},
                                  {"state_class", css_class(p.state)}, {"who", p.who}, {"message", p.message}});
    }
  }
  data["flights"] = flights;
  data["pushes"] = pushes;
  data["extra_nav"] = mstch::array{mstch::map{{"href", "/api/v1/branches/" + url(b->name)}, {"text", std::string("JSON")}}};
  return {200, render_page("Branch " + b->name, "branch", std::move(data))};
}

/// Every job waiting for hosts across flights (and processes), with what
/// it wants, who holds the hosts that could take it and how long it has
/// waited against the starvation limit; then jobs queued behind others.
Page queue_page(const config::Config& cfg, const store::Store& st) {
  auto waiters = st.waiters();
  if (!waiters) return {500, message_page("Queue", waiters.error().message())};
  auto hosts = st.list_hosts();
  if (!hosts) return {500, message_page("Queue", hosts.error().message())};
  std::map<FlightId, store::Flight> flights;
  auto flight_of = [&](FlightId id) -> const store::Flight* {
    if (!flights.count(id)) {
      auto f = st.get_flight(id);
      if (!f) return nullptr;
      flights.emplace(id, *f);
    }
    return &flights.at(id);
  };
  const std::int64_t now = store::now(), limit = cfg.daemon.starve_after_seconds;
  mstch::array waiting;
  std::set<std::pair<std::int64_t, std::string>> host_waiters;
  for (const auto& w : *waiters) {
    host_waiters.insert({w.flight.value, w.job});
    const store::Flight* f = flight_of(w.flight);
    WaitInfo info = describe_wait(w, *hosts, now);
    waiting.push_back(mstch::map{{"flight", w.flight.str()},
                                 {"branch", f ? f->branch : std::string()},
                                 {"job", w.job},
                                 {"wants", info.wants},
                                 {"hosts", info.eligible},
                                 {"waited", duration_text(info.waited)},
                                 {"waited_class", info.waited * 4 >= limit * 3 ? std::string("bad") : std::string("pending")}});
  }
  // Queued jobs of unfinished flights that are not waiting for hosts: they
  // wait for the jobs they depend on (or for their flight's turn).
  mstch::array queued;
  if (auto unfinished = st.list_flights({.limit = 200})) {
    for (const auto& f : *unfinished) {
      if (!f.outcome.empty()) continue;
      auto jobs = st.list_jobs(f.id);
      if (!jobs) continue;
      std::map<std::string, std::string> status;
      for (const auto& j : *jobs) status[j.job] = j.status;
      for (const auto& j : *jobs) {
        if (j.status != "queued" || host_waiters.count({f.id.value, j.job})) continue;
        std::string reason;
        if (const config::Job* cj = cfg.find_job(j.job)) {
          for (const auto& d : cj->depends) {
            auto it = status.find(d);
            if (it != status.end() && it->second != "pass") reason += (reason.empty() ? "" : ", ") + d + " (" + it->second + ")";
          }
        }
        if (reason.empty()) reason = j.status_reason.empty() ? std::string("its flight's turn") : j.status_reason;
        queued.push_back(mstch::map{{"flight", f.id.str()}, {"branch", f.branch}, {"job", j.job}, {"reason", reason}});
      }
    }
  }
  return {200, render_page("Queue", "queue", {{"waiting", waiting}, {"queued", queued}, {"starve", duration_text(limit)}})};
}

/// One testid of one job over the branch's flights, with hosts.
Page step_history(const config::Config& cfg, const store::Store& st, const std::string& target) {
  auto parsed = query_of(target);
  if (!parsed) return {400, message_page("Step history", "A query parameter is badly %-escaped.")};
  auto& q = *parsed;
  if (q["branch"].empty() || q["job"].empty() || q["testid"].empty()) {
    return {404, message_page("Step history", "Give ?branch=B&job=J&testid=T.")};
  }
  if (!cfg.find_branch(q["branch"])) return {404, message_page("Step history", "No branch \"" + q["branch"] + "\" is configured.")};
  auto runs = st.job_history(q["branch"], q["job"], q["testid"], 50);
  if (!runs) return {500, message_page("Step history", runs.error().message())};
  mstch::array rows;
  for (const auto& r : *runs) {
    std::string host, revs;
    for (const auto& [k, v] : r.runvars) {
      if (k == "host") host = v;
      if (k.starts_with("revision_")) revs += k.substr(9) + " " + v.substr(0, 12) + " ";
    }
    int stepno = 0;  // its log: /flights/F/JOB/STEPNO
    if (auto steps = st.list_steps(r.flight)) {
      for (const auto& s : *steps) {
        if (s.job == q["job"] && s.testid == q["testid"]) stepno = s.stepno;
      }
    }
    rows.push_back(mstch::map{{"flight", r.flight.str()}, {"ago", ago(r.created)}, {"status", r.step_status},
                              {"status_class", css_class(r.step_status)}, {"stepno", stepno},
                              {"job_url", url(q["job"])}, {"job_status", r.job_status},
                              {"host", host}, {"host_url", url(host)}, {"revisions", revs}});
  }
  return {200, render_page(q["testid"] + " of " + q["job"] + " on " + q["branch"], "step_history", {{"runs", rows}})};
}

/// "Which flights tested this commit, and how did they end?"
Page search_page(const config::Config& cfg, const store::Store& st, const std::string& target) {
  auto parsed = query_of(target);
  if (!parsed) return {400, message_page("Search", "A query parameter is badly %-escaped.")};
  std::string commit = (*parsed)["commit"];
  for (auto& c : commit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  mstch::map data{{"commit", commit}, {"searched", !commit.empty()}};
  if (commit.empty()) return {200, render_page("Search", "search", std::move(data))};
  if (commit.size() < 4 || commit.size() > 64 || commit.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return {400, render_page("Search", "message", {{"message", std::string("A commit id is 4 to 64 hex digits.")}})};
  }
  std::vector<std::string> names;
  for (const auto& t : cfg.trees) {
    names.push_back("revision_" + t.name);
    names.push_back("built_revision_" + t.name);
  }
  auto hits = st.flights_with_revision(names, commit, 200);
  if (!hits) return {500, message_page("Search", hits.error().message())};
  // One row per flight: how it tested the commit (tree, revision, jobs).
  std::vector<FlightId> order;
  std::map<FlightId, std::set<std::string>> how;
  for (const auto& h : *hits) {
    if (!how.count(h.flight)) order.push_back(h.flight);
    std::string tree = h.name.starts_with("built_") ? h.name.substr(15) : h.name.substr(9);
    how[h.flight].insert(tree + " " + h.value.substr(0, 12));
  }
  mstch::array rows;
  for (FlightId id : order) {
    auto f = st.get_flight(id);
    if (!f) continue;
    mstch::map row = flight_row(st, *f);
    std::string text;
    for (const auto& x : how[id]) text += (text.empty() ? "" : ", ") + x;
    row["how"] = text;
    rows.push_back(std::move(row));
  }
  data["results"] = rows;
  return {200, render_page("Flights that tested " + commit, "search", std::move(data))};
}

Page bisections_page(const config::Config& cfg, const store::Store& st) {
  auto rows = st.list_bisections({"", "", 100});
  if (!rows) return {500, message_page("Bisections", rows.error().message())};
  mstch::array list;
  for (const auto& r : *rows) {
    auto b = bisect::load(cfg, st, r.id);
    if (!b) continue;
    std::string what;
    for (const auto& t : b->targets) what += (what.empty() ? "" : ", ") + t.job + " " + t.testid;
    list.push_back(mstch::map{
        {"id", std::to_string(b->id)},
        {"branch", b->branch},
        {"flight", b->flight.str()},
        {"what", what},
        {"status", std::string(bisect::to_string(b->status))},
        {"status_class", css_class(b->status == bisect::State::complete  ? "pass"
                                   : b->status == bisect::State::running ? "running"
                                                                         : "fail")},
        {"culprit", b->culprit ? b->culprit->tree + " " + b->culprit->id.substr(0, 12) + " " + b->culprit->subject : std::string()},
        {"flights", static_cast<int>(b->flights.size())},
        {"ago", ago(b->created)}});
  }
  return {200, render_page("Bisections", "bisections", {{"bisections", list}})};
}

Page bisection_page(const config::Config& cfg, const store::Store& st, const std::string& number) {
  auto id = bisect::parse_id(number);
  if (!id) return {404, message_page("No such bisection", "\"" + number + "\" is not a bisection id.")};
  auto b = bisect::load(cfg, st, *id);
  if (!b) return {404, message_page("Bisection " + number, b.error().message())};
  mstch::map data{{"flight", b->flight.str()}, {"basis", b->basis_flight.str()},
                  {"status", std::string(bisect::to_string(b->status))}, {"reason", b->reason}};
  if (b->culprit) {
    data["culprit"] = mstch::map{{"tree", b->culprit->tree}, {"commit", b->culprit->id}, {"author", b->culprit->author},
                                 {"subject", b->culprit->subject}, {"message", b->culprit->message}};
  }
  mstch::array flights;
  for (FlightId f : b->flights) flights.push_back(f.str());
  data["flights"] = flights;
  if (auto svg = bisect::to_svg(*b)) {
    std::string s = *svg;
    if (auto at = s.find("<svg"); at != std::string::npos) s = s.substr(at);  // the XML prologue cannot sit inside HTML
    data["svg"] = s;  // Graphviz's output, from names pushgate escaped in the dot source
  } else {
    data["svg_error"] = svg.error().message();
    data["dot"] = bisect::to_dot(*b);
  }
  data["extra_nav"] = mstch::array{mstch::map{{"href", "/api/v1/bisections/" + std::to_string(b->id)}, {"text", std::string("JSON")}}};
  return {200, render_page("Bisection " + std::to_string(b->id) + " of " + b->branch, "bisection", std::move(data))};
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
      if (!d) return {400, message_page("Bad request", d.error().message())};
      seg.push_back(*d);
    }
    if ((seg.size() == 4 || (seg.size() == 5 && seg[4] == "log")) && !seg[2].empty() && !seg[3].empty()) {
      return log_page(config, store, seg, target);
    }
    return {404, message_page("Not found", "No page at " + path + ".")};
  }
  if (path == "/" || path == "/branches") return board(config, store, mirrors);
  if (path.starts_with("/branches/")) {
    auto name = url_decode(path.substr(10), false);
    if (!name) return {400, message_page("Bad request", name.error().message())};
    return branch_page(config, store, mirrors, *name);
  }
  if (path == "/flights") return flights_page(config, store, target);
  if (path.starts_with("/flights/")) return flight_page(config, store, mirrors, path.substr(9));
  if (path == "/queue") return queue_page(config, store);
  if (path == "/search") return search_page(config, store, target);
  if (path == "/history/job") return job_history(config, store, target);
  if (path == "/history/step") return step_history(config, store, target);
  if (path.starts_with("/hosts/")) {
    auto host = url_decode(path.substr(7), false);
    if (!host) return {400, message_page("Bad request", host.error().message())};
    return host_page(store, *host);
  }
  if (path == "/frozen") return frozen_page(config, store, mirrors);
  if (path == "/bisections") return bisections_page(config, store);
  if (path.starts_with("/bisections/")) return bisection_page(config, store, path.substr(12));
  return {404, message_page("Not found", "No page at " + path + ".", true)};
}

}  // namespace pushgate::web
