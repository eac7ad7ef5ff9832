// /api/v1 routes and /metrics. Every change needs the bearer token
// (compared in constant time); reads are open unless configured otherwise.
// Errors are JSON bodies {"error": ..., "hint": ...} with a 4xx/5xx status.

#include <pushgate/bisect.hpp>
#include <pushgate/api.hpp>
#include <pushgate/push.hpp>
#include <pushgate/revisions.hpp>
#include <pushgate/web.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <set>
#include <ctime>

namespace pushgate::api {

nlohmann::json flight_summary_json(const store::Flight& fl) {
  return {{"flight", fl.id.value}, {"branch", fl.branch}, {"blessing", fl.blessing}, {"created", fl.created},
          {"outcome", fl.outcome}, {"trigger", {{"kind", fl.trigger_kind}, {"detail", fl.trigger_detail}}}};
}

Result<nlohmann::json> flight_json(const store::Store& st, FlightId id) {
  auto f = st.get_flight(id);
  if (!f) return f.error();
  auto jobs = st.list_jobs(id);
  if (!jobs) return jobs.error();
  auto steps = st.list_steps(id);
  if (!steps) return steps.error();
  auto attempts = st.list_step_attempts(id);
  if (!attempts) return attempts.error();
  auto opt = [](const std::optional<std::int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  auto step_json = [&](const store::Step& s) {
    return nlohmann::json{{"stepno", s.stepno}, {"testid", s.testid}, {"status", s.status},
                          {"started", opt(s.started)}, {"finished", opt(s.finished)}, {"log", s.log_path}};
  };
  nlohmann::json j{{"flight", f->id.value}, {"branch", f->branch},  {"blessing", f->blessing},
                   {"intended", f->intended}, {"created", f->created}, {"started", opt(f->started)},
                   {"finished", opt(f->finished)}, {"outcome", f->outcome},
                   {"trigger", {{"kind", f->trigger_kind}, {"detail", f->trigger_detail}}}};
  j["jobs"] = nlohmann::json::array();
  for (const auto& job : *jobs) {
    nlohmann::json jj{{"job", job.job}, {"recipe", job.recipe}, {"status", job.status}, {"reason", job.status_reason}};
    jj["steps"] = nlohmann::json::array();
    for (const auto& s : *steps) {
      if (s.job == job.job) jj["steps"].push_back(step_json(s));
    }
    // Steps of attempts interrupted by a daemon restart (the job ran again).
    jj["earlier_attempts"] = nlohmann::json::array();
    for (const auto& a : *attempts) {
      if (a.step.job != job.job) continue;
      nlohmann::json e = step_json(a.step);
      e["attempt"] = a.attempt;
      jj["earlier_attempts"].push_back(e);
    }
    jj["runvars"] = nlohmann::json::object();
    auto vars = st.list_runvars(id, job.job);
    if (!vars) return vars.error();
    for (const auto& v : *vars) jj["runvars"][v.name] = v.value;
    j["jobs"].push_back(jj);
  }
  auto notices = st.notifications_of("flight", id.value);
  if (!notices) return notices.error();
  j["notifications"] = nlohmann::json::array();
  for (const auto& n : *notices) {
    // Webhook URLs and command lines may carry secrets (a token in a
    // path): readers see where, not what.
    std::string target = n.target;
    if (n.channel == "webhook") {
      auto host_end = target.find('/', target.find("://") == std::string::npos ? 0 : target.find("://") + 3);
      if (host_end != std::string::npos && host_end + 1 < target.size()) target = target.substr(0, host_end) + "/...";
    } else if (n.channel == "command") {
      target = target.substr(0, target.find_first_of(" \t;|&"));
    }
    j["notifications"].push_back({{"channel", n.channel}, {"target", target}, {"state", n.state},
                                  {"attempts", n.attempts}, {"last_error", n.last_error},
                                  {"next_at", n.state == "pending" ? nlohmann::json(n.next_at) : nlohmann::json()},
                                  {"sent_at", opt(n.sent_at)}});
  }
  return j;
}

nlohmann::json branch_json(const push::BranchStatus& b) {
  nlohmann::json j{{"branch", b.branch}, {"tree", b.tree}, {"tested_ref", b.tested_ref}};
  if (!b.tested_revision.empty()) {
    j["tested_revision"] = b.tested_revision;
    j["tested_describe"] = b.tested_describe;
  }
  if (b.tested_commit_time) {
    j["tested_commit_time"] = *b.tested_commit_time;
    j["tested_age_seconds"] = std::max<std::int64_t>(0, store::now() - *b.tested_commit_time);
  }
  if (b.last_flight) {
    j["last_flight"] = b.last_flight->id.value;
    j["last_outcome"] = b.last_flight->outcome;
    j["last_flight_created"] = b.last_flight->created;
  }
  j["streak"] = {{"kind", b.streak_kind}, {"flights", b.streak}};
  j["blocked"] = b.blocked ? nlohmann::json(*b.blocked) : nlohmann::json(nullptr);
  j["push_enabled"] = b.push_enabled;
  j["push_failures"] = b.push_failures;
  if (b.last_push) {
    j["last_push"] = {{"state", b.last_push->state}, {"new", b.last_push->new_rev}, {"at", b.last_push->created},
                      {"message", b.last_push->message}};
  }
  return j;
}

nlohmann::json host_event_json(const store::Store::HostEvent& e) {
  return {{"event", e.event}, {"flight", e.flight ? nlohmann::json(e.flight->value) : nlohmann::json()},
          {"job", e.job}, {"role", e.role}, {"detail", e.detail}, {"at", e.at}};
}

Result<nlohmann::json> job_history_json(const store::Store& st, const std::string& branch, const std::string& job,
                                        const std::string& testid, int limit) {
  auto runs = st.job_history(branch, job, testid, limit);
  if (!runs) return runs.error();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : *runs) {
    nlohmann::json row{{"flight", r.flight.value}, {"created", r.created}, {"job_status", r.job_status}};
    for (const auto& [k, v] : r.runvars) row[k] = v;
    if (!testid.empty()) row["status"] = r.step_status;
    out.push_back(row);
  }
  return out;
}

nlohmann::json host_json(const store::Host& h) {
  return {{"host", h.host}, {"kind", h.kind}, {"state", h.state}, {"reason", h.state_reason},
          {"consecutive_broken", h.consecutive_broken}, {"flags", h.flags},
          {"held_by", h.held_flight ? nlohmann::json(h.held_flight->str() + "." + h.held_job) : nlohmann::json()}};
}

extern const std::vector<std::string_view> kApiDocuments;

const std::map<std::string, nlohmann::json>& api_documents() {
  static const std::map<std::string, nlohmann::json> docs = [] {
    std::map<std::string, nlohmann::json> out;
    for (std::string_view text : kApiDocuments) {
      auto j = nlohmann::json::parse(text);
      std::string id = j.value("$id", "");
      std::string name = j.contains("openapi") ? "openapi.json" : id.substr(id.rfind('/') + 1);
      out[name] = std::move(j);
    }
    return out;
  }();
  return docs;
}

nlohmann::json frozen_json(const config::Config& config, const revisions::Frozen& f) {
  return {{"tree", f.tree},         {"branch", f.branch},     {"ref", f.ref},
          {"revision", f.revision}, {"describe", f.describe}, {"configured_branch", config.find_branch(f.branch) != nullptr}};
}

nlohmann::json frozen_change_json(const store::FrozenChange& c) {
  return {{"tree", c.tree},     {"branch", c.branch}, {"ref", c.ref},       {"action", c.action},
          {"old", c.old_rev},   {"new", c.new_rev},   {"describe", c.describe}, {"who", c.who},
          {"reason", c.reason}, {"at", c.at},         {"state", c.state},   {"note", c.note}};
}

Result<void> check_names(const config::Config& c, const Names& n) {
  auto one = [](const std::string& what, const std::string& name, const std::vector<std::string>& known,
                const std::string& see) -> Result<void> {
    if (name.empty() || std::find(known.begin(), known.end(), name) != known.end()) return {};
    std::string hint = config::did_you_mean(name, known);
    return Status::invalid_argument("unknown " + what + " \"" + name + "\"", hint.empty() ? see : hint);
  };
  std::vector<std::string> branches, jobs, hosts, testids;
  for (const auto& b : c.branches) branches.push_back(b.name);
  for (const auto& j : c.jobs) jobs.push_back(j.name);
  for (const auto& h : c.hosts) hosts.push_back(h.name);
  const config::Job* job = n.job.empty() ? nullptr : c.find_job(n.job);
  for (const auto& [name, r] : c.recipes) {
    if (job && job->recipe != name) continue;
    for (const auto& st : r.steps) {
      if (std::find(testids.begin(), testids.end(), st.testid) == testids.end()) testids.push_back(st.testid);
    }
  }
  if (auto r = one("branch", n.branch, branches, "see `pushgate branch status`"); !r) return r;
  if (auto r = one("job", n.job, jobs, "see the jobs in the configuration"); !r) return r;
  if (auto r = one("host", n.host, hosts, "see `pushgate host list`"); !r) return r;
  return one(job ? "step of job " + n.job : std::string("step"), n.testid, testids,
             job ? "recipe " + job->recipe + " has no such testid" : "no recipe has such a testid");
}

std::string iso_utc(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json with_utc_times(nlohmann::json j) {
  static const std::set<std::string> keys{"created", "started", "finished", "at", "date", "tested_commit_time",
                                          "last_flight_created", "cutoff", "next_at", "sent_at"};
  if (j.is_array()) {
    for (auto& e : j) e = with_utc_times(std::move(e));
  } else if (j.is_object()) {
    std::vector<std::pair<std::string, nlohmann::json>> add;
    for (auto& [k, v] : j.items()) {
      if (keys.count(k) && (v.is_number_integer() || v.is_null())) {
        add.push_back({k + "_utc", v.is_null() ? nlohmann::json() : nlohmann::json(iso_utc(v.get<std::int64_t>()))});
      } else if (v.is_structured()) {
        v = with_utc_times(std::move(v));
      }
    }
    for (auto& [k, v] : add) j[k] = std::move(v);
  }
  return j;
}

Result<std::string> load_token(const config::Config& c) { return config::api_token(c); }

namespace {

Response json(int status, const nlohmann::json& body) {
  return {status, "application/json", with_utc_times(body).dump(2) + "\n"};
}
Response error(int status, const std::string& message, const std::string& hint = {}) {
  nlohmann::json b{{"error", message}};
  if (!hint.empty()) b["hint"] = hint;
  return json(status, b);
}
Response from(const Status& s) {
  int code = s.code() == StatusCode::not_found          ? 404
             : s.code() == StatusCode::invalid_argument ? 400
             : s.code() == StatusCode::conflict         ? 409
             // A busy database or an unreachable remote: try again later.
             : s.code() == StatusCode::unavailable ? 503
                                                   : 500;
  return error(code, s.message(), s.hint());
}

/// Constant-time comparison of the bearer token.
bool token_ok(const std::string& given, const std::string& want) {
  // Look at every byte of the expected token whatever the input; the
  // volatile store keeps the compiler from stopping at the first difference.
  unsigned char diff = given.size() != want.size();
  for (std::size_t i = 0; i < want.size(); ++i) {
    diff = static_cast<unsigned char>(diff | (i < given.size() ? given[i] ^ want[i] : 1));
  }
  volatile unsigned char result = diff;
  return result == 0;
}

/// web::url_decode, or a 400 (the route's std::invalid_argument handler).
std::string decode(const std::string& s, bool plus_is_space) {
  auto d = web::url_decode(s, plus_is_space);
  if (!d) throw std::invalid_argument(d.error().message());
  return *d;
}

struct Target {
  std::vector<std::string> parts;
  std::map<std::string, std::string> query;
};

Target parse_target(const std::string& t) {
  Target out;
  auto q = t.find('?');
  std::string path = t.substr(0, q);
  std::istringstream ps(path);
  for (std::string p; std::getline(ps, p, '/');) {
    if (!p.empty()) out.parts.push_back(decode(p, false));
  }
  if (q != std::string::npos) {
    std::istringstream qs(t.substr(q + 1));
    for (std::string kv; std::getline(qs, kv, '&');) {
      auto eq = kv.find('=');
      out.query[decode(kv.substr(0, eq), true)] = eq == std::string::npos ? "" : decode(kv.substr(eq + 1), true);
    }
  }
  return out;
}

int int_param(const Target& t, const std::string& name, int def) {
  auto it = t.query.find(name);
  if (it == t.query.end()) return def;
  char* end = nullptr;
  long v = std::strtol(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end || v < 1 || v > 100000) throw std::invalid_argument(name + " must be a positive integer");
  return static_cast<int>(v);
}

std::string metrics_text(const config::Config& cfg, const store::Store& st, revisions::Mirrors& mirrors) {
  auto c = st.counts();
  if (!c) return "# error: " + c.error().message() + "\n";
  std::ostringstream o;
  auto family = [&](const char* name, const char* help, const char* label, const std::map<std::string, std::int64_t>& m,
                    const char* type) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
    for (const auto& [k, v] : m) o << name << "{" << label << "=\"" << k << "\"} " << v << "\n";
  };
  family("pushgate_flights_total", "Flights judged, by outcome.", "outcome", c->flights_by_outcome, "counter");
  o << "# HELP pushgate_flights_unfinished Flights without an outcome (queued, running, drained).\n"
       "# TYPE pushgate_flights_unfinished gauge\npushgate_flights_unfinished "
    << c->flights_unfinished << "\n";
  family("pushgate_jobs_total", "Jobs ended, by status (each attempt of a re-queued job).", "status",
         c->jobs_ended_by_status, "counter");
  family("pushgate_jobs", "Jobs now queued, preparing or running.", "status", c->jobs_by_status, "gauge");
  o << "# HELP pushgate_queue_length Jobs waiting to run.\n# TYPE pushgate_queue_length gauge\npushgate_queue_length "
    << (c->jobs_by_status.count("queued") ? c->jobs_by_status.at("queued") : 0) << "\n";
  family("pushgate_hosts", "Hosts by state (busy = held by a job).", "state", c->hosts_by_state, "gauge");
  family("pushgate_pushes_total", "Pushes by outcome.", "state", c->pushes_by_state, "counter");
  // Per branch: what a release manager watches (SPEC section 8), from the
  // branch status the board shows. A branch whose tested ref is not in its
  // mirror yet has no tested age.
  std::map<std::string, std::int64_t> push_failures, tested_age, tolerable_flight, tolerable_time;
  for (const auto& b : cfg.branches) {
    auto status = push::branch_status(cfg, st, mirrors, b);
    if (!status) return "# error: " + status.error().message() + "\n";
    push_failures[b.name] = status->push_failures;
    if (status->tested_commit_time) tested_age[b.name] = std::max<std::int64_t>(0, store::now() - *status->tested_commit_time);
    const auto& tol = status->last_tolerable;
    tolerable_flight[b.name] = tol ? tol->id.value : 0;
    tolerable_time[b.name] = tol ? tol->finished.value_or(tol->created) : 0;
  }
  family("pushgate_push_failures", "Failed or refused pushes in a row since the branch's last push.", "branch",
         push_failures, "gauge");
  family("pushgate_branch_tested_age_seconds", "Age of the commit the branch's tested ref points at.", "branch",
         tested_age, "gauge");
  family("pushgate_branch_last_tolerable_flight", "The branch's newest real flight judged perfect or tolerable (0: none).",
         "branch", tolerable_flight, "gauge");
  family("pushgate_branch_last_tolerable_timestamp_seconds",
         "When the branch's newest tolerable real flight finished (Unix time; 0: none).", "branch", tolerable_time,
         "gauge");
  o << "# HELP pushgate_step_duration_seconds Duration of finished steps.\n"
       "# TYPE pushgate_step_duration_seconds histogram\n";
  for (const auto& [le, n] : c->step_seconds_buckets) {
    o << "pushgate_step_duration_seconds_bucket{le=\"" << le << "\"} " << n << "\n";
  }
  o << "pushgate_step_duration_seconds_bucket{le=\"+Inf\"} " << c->step_seconds_count << "\n"
    << "pushgate_step_duration_seconds_sum " << c->step_seconds_sum << "\n"
    << "pushgate_step_duration_seconds_count " << c->step_seconds_count << "\n";
  return o.str();
}

Response route(const Context& ctx, const Request& req, const Target& t) {
  const store::Store& st = *ctx.store;
  const auto& p = t.parts;
  const std::string& m = req.method;
  auto is = [&](std::initializer_list<const char*> want) {
    if (p.size() != want.size()) return false;
    std::size_t i = 0;
    for (const char* w : want) {
      if (std::string(w) != "*" && p[i] != w) return false;
      ++i;
    }
    return true;
  };
  auto only = [&](const char* method) -> std::optional<Response> {
    if (m != method) return error(405, "method " + m + " not allowed here", std::string("use ") + method);
    return std::nullopt;
  };

  if (is({"metrics"})) {
    if (auto e = only("GET")) return *e;
    revisions::Mirrors own(*ctx.config);
    return {200, "text/plain; version=0.0.4", metrics_text(*ctx.config, st, ctx.mirrors ? *ctx.mirrors : own)};
  }
  if (p.empty() || p[0] != "api") {
    // Everything outside /api and /metrics is a web page.
    if (auto e = only("GET")) return *e;
    web::Page pg = web::render(*ctx.config, st, req.target, ctx.mirrors);
    return {pg.status, pg.content_type, pg.html};
  }
  if (p.size() < 2 || p[1] != "v1") return error(404, "no such route: " + req.target);
  if (is({"api", "v1", "openapi.json"}) || is({"api", "v1", "schemas", "*"})) {
    if (auto e = only("GET")) return *e;
    const auto& docs = api_documents();
    std::string name = p.size() == 3 ? "openapi.json" : p[3];
    auto d = docs.find(name);
    if (d == docs.end() || (p.size() == 4 && name == "openapi.json")) return error(404, "no schema \"" + name + "\"");
    return {200, "application/json", d->second.dump(2) + "\n"};
  }
  if (is({"api", "v1", "flights"})) {
    if (auto e = only("GET")) return *e;
    store::FlightFilter f;
    f.branch = t.query.count("branch") ? t.query.at("branch") : "";
    if (auto ok = check_names(*ctx.config, {.branch = f.branch}); !ok) return from(ok.error());
    if (t.query.count("blessing")) f.blessings = {t.query.at("blessing")};
    f.outcome = t.query.count("outcome") ? t.query.at("outcome") : "";
    f.limit = int_param(t, "limit", 50);
    if (t.query.count("before")) f.before = int_param(t, "before", 1);
    auto flights = st.list_flights(f);
    if (!flights) return from(flights.error());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& fl : *flights) {
      out.push_back(flight_summary_json(fl));
    }
    return json(200, out);
  }
  if (is({"api", "v1", "flights", "*"}) || is({"api", "v1", "flights", "*", "report"})) {
    if (auto e = only("GET")) return *e;
    auto id = FlightId::parse(p[3]);
    if (!id) return error(400, "flight number \"" + p[3] + "\" is not a positive integer");
    long long n = id->value;
    if (p.size() == 4) {
      auto j = flight_json(st, FlightId{n});
      return j ? json(200, *j) : from(j.error());
    }
    revisions::Mirrors own(*ctx.config);
    revisions::Mirrors& mirrors = ctx.mirrors ? *ctx.mirrors : own;
    auto rep = push::flight_report(*ctx.config, st, mirrors, FlightId{n});
    if (!rep) return from(rep.error());
    std::string format = t.query.count("format") ? t.query.at("format") : "json";
    if (format == "json") return {200, "application/json", verdict::render_json(*rep) + "\n"};
    if (format == "html") return {200, "text/html; charset=utf-8", verdict::render_html(*rep)};
    if (format == "text") return {200, "text/plain; charset=utf-8", verdict::render_text(*rep)};
    return error(400, "format must be json, html or text");
  }
  if (is({"api", "v1", "branches"}) || is({"api", "v1", "branches", "*"})) {
    if (auto e = only("GET")) return *e;
    revisions::Mirrors own(*ctx.config);
    revisions::Mirrors& mirrors = ctx.mirrors ? *ctx.mirrors : own;
    nlohmann::json out = nlohmann::json::array();
    for (const auto& b : ctx.config->branches) {
      if (p.size() == 4 && b.name != p[3]) continue;
      auto status = push::branch_status(*ctx.config, st, mirrors, b);
      if (!status) return from(status.error());
      out.push_back(branch_json(*status));
    }
    if (p.size() == 4) return out.empty() ? error(404, "unknown branch \"" + p[3] + "\"") : json(200, out[0]);
    return json(200, out);
  }
  if (is({"api", "v1", "branches", "*", "trigger"})) {
    if (auto e = only("POST")) return *e;
    if (!ctx.config->find_branch(p[3])) return error(404, "unknown branch \"" + p[3] + "\"");
    if (!ctx.trigger) return error(503, "this server cannot start flights");
    if (Status s = ctx.trigger(p[3]); !s.ok()) return from(s);
    return json(202, {{"branch", p[3]}, {"queued", true}});
  }
  if (is({"api", "v1", "hooks", "ref-updated"})) {
    // A git server's post-receive hook (or a forge's webhook relay): poll
    // every branch that uses the tree now instead of at its next interval.
    if (auto e = only("POST")) return *e;
    nlohmann::json body = nlohmann::json::parse(req.body.empty() ? "{}" : req.body);
    if (!body.is_object() || !body.contains("tree") || !body["tree"].is_string()) {
      return error(400, "body needs \"tree\" (and may name the \"ref\" that changed)");
    }
    std::string tree = body["tree"];
    if (!ctx.config->find_tree(tree)) return error(404, "unknown tree \"" + tree + "\"");
    if (!ctx.poll) return error(503, "this server cannot poll branches");
    nlohmann::json polled = nlohmann::json::array();
    for (const auto& b : ctx.config->branches) {
      auto trees = revisions::trees_of(*ctx.config, b);
      if (std::find(trees.begin(), trees.end(), tree) == trees.end()) continue;
      std::string why = "tree " + tree + (body.value("ref", "").empty() ? "" : " " + body.value("ref", ""));
      if (Status s = ctx.poll(b.name, why); !s.ok()) return from(s);
      polled.push_back(b.name);
    }
    return json(202, {{"tree", tree}, {"ref", body.value("ref", "")}, {"polling", polled}});
  }
  if (is({"api", "v1", "hosts"})) {
    if (auto e = only("GET")) return *e;
    auto hosts = st.list_hosts();
    if (!hosts) return from(hosts.error());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& h : *hosts) out.push_back(host_json(h));
    return json(200, out);
  }
  if (is({"api", "v1", "hosts", "*", "enable"}) || is({"api", "v1", "hosts", "*", "disable"})) {
    if (auto e = only("POST")) return *e;
    nlohmann::json body = req.body.empty() ? nlohmann::json::object() : nlohmann::json::parse(req.body);
    if (!body.is_object()) return error(400, "body must be a JSON object");
    std::string reason = body.value("reason", "");
    bool enable = p[4] == "enable";
    auto r = ctx.store->set_host_state(p[3], enable ? "enabled" : "disabled", enable ? "" : reason + " (api)");
    if (!r) return from(r.error());
    return json(200, {{"host", p[3]}, {"state", enable ? "enabled" : "disabled"}});
  }
  if (is({"api", "v1", "history", "host", "*"})) {
    if (auto e = only("GET")) return *e;
    if (auto ok = check_names(*ctx.config, {.host = p[4]}); !ok) return from(ok.error());
    auto ev = st.host_history(p[4], int_param(t, "limit", 50));
    if (!ev) return from(ev.error());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *ev) out.push_back(host_event_json(e));
    return json(200, out);
  }
  if (is({"api", "v1", "history", "job"}) || is({"api", "v1", "history", "step"})) {
    if (auto e = only("GET")) return *e;
    for (const char* need : {"branch", "job"}) {
      if (!t.query.count(need)) return error(400, std::string("missing query parameter ") + need);
    }
    bool step = p[3] == "step";
    if (step && !t.query.count("testid")) return error(400, "missing query parameter testid");
    Names names{t.query.at("branch"), t.query.at("job"), step ? t.query.at("testid") : "", ""};
    if (auto ok = check_names(*ctx.config, names); !ok) return from(ok.error());
    auto out = job_history_json(st, names.branch, names.job, names.testid, int_param(t, "limit", 20));
    return out ? json(200, *out) : from(out.error());
  }
  if (is({"api", "v1", "frozen"}) && m == "GET") {
    revisions::Mirrors own(*ctx.config);
    revisions::Mirrors& mirrors = ctx.mirrors ? *ctx.mirrors : own;
    auto list = revisions::list_frozen(*ctx.config, mirrors);
    if (!list) return from(list.error());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : *list) out.push_back(frozen_json(*ctx.config, f));
    return json(200, out);
  }
  if (is({"api", "v1", "frozen"}) || is({"api", "v1", "frozen", "*", "*"})) {
    revisions::FrozenRequest fr;
    if (p.size() == 5) {
      if (auto e = only("DELETE")) return *e;
      fr.action = revisions::FrozenAction::remove;
      fr.tree = p[3];
      fr.branch = p[4];
    } else {
      if (m != "POST" && m != "PUT") return error(405, "method " + m + " not allowed here", "GET, POST (add) or PUT (move)");
      nlohmann::json body = nlohmann::json::parse(req.body);
      if (!body.is_object()) return error(400, "body must be a JSON object");
      fr.action = m == "POST" ? revisions::FrozenAction::add : revisions::FrozenAction::move;
      fr.tree = body.value("tree", "");
      fr.branch = body.value("branch", "");
      fr.revision = body.value("rev", "");
      fr.from_last_tolerable = body.value("from_last_tolerable", false);
      fr.force = body.value("force", false);
      fr.reason = body.value("reason", "");
      if (fr.tree.empty() || fr.branch.empty()) return error(400, "body needs \"tree\" and \"branch\"");
    }
    fr.who = "api";
    revisions::Mirrors own(*ctx.config);
    revisions::Mirrors& mirrors = ctx.mirrors ? *ctx.mirrors : own;
    if (auto f = mirrors.fetch(fr.tree); !f && ctx.config->find_tree(fr.tree)) return from(f.error());
    auto r = revisions::change_frozen(*ctx.config, mirrors, *ctx.store, fr);
    if (!r) return from(r.error());
    return json(200, frozen_change_json(*r));
  }
  if (is({"api", "v1", "bisections"})) {
    if (auto e = only("GET")) return *e;
    store::Store::BisectionFilter f;
    f.limit = int_param(t, "limit", 50);
    if (t.query.count("status")) {
      if (auto s = bisect::parse_state(t.query.at("status")); !s) return from(s.error());
      f.status = t.query.at("status");
    }
    if (t.query.count("branch")) {
      if (!ctx.config->find_branch(t.query.at("branch"))) return error(404, "unknown branch \"" + t.query.at("branch") + "\"");
      f.branch = t.query.at("branch");
    }
    auto rows = st.list_bisections(f);
    if (!rows) return from(rows.error());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *rows) {
      auto b = bisect::load(*ctx.config, st, r.id);
      if (!b) return from(b.error());
      auto j = bisect::to_json(*b);
      j.erase("nodes");  // the list stays small; GET /api/v1/bisections/ID has them
      out.push_back(j);
    }
    return json(200, out);
  }
  if (is({"api", "v1", "bisections", "*"})) {
    if (auto e = only("GET")) return *e;
    auto id = bisect::parse_id(p[3]);
    if (!id) return error(400, "\"" + p[3] + "\" is not a bisection id");
    auto b = bisect::load(*ctx.config, st, *id);
    if (!b) return from(b.error());
    return json(200, bisect::to_json(*b));
  }
  return error(404, "no such route: " + req.target, "see docs/api.md");
}

}  // namespace

Response handle(const Context& ctx, const Request& req) {
  bool changes = req.method != "GET" && req.method != "HEAD";
  if (changes || ctx.read_requires_token) {
    // No token configured: nothing that needs one can pass, whatever the
    // client sends (an empty bearer must not match an empty token).
    if (ctx.token.empty()) {
      return error(403, changes ? "changes through the API are disabled" : "reads require a token, and none is configured",
                   "set daemon.api_token_file");
    }
    const std::string prefix = "Bearer ";
    if (!req.authorization.starts_with(prefix)) {
      return error(401, "this request needs a bearer token", "send Authorization: Bearer TOKEN");
    }
    if (!token_ok(req.authorization.substr(prefix.size()), ctx.token)) return error(403, "wrong token");
  }
  try {
    return route(ctx, req, parse_target(req.target));
  } catch (const nlohmann::json::exception& e) {
    return error(400, std::string("malformed JSON body: ") + e.what());
  } catch (const std::invalid_argument& e) {
    return error(400, e.what());
  } catch (const std::exception& e) {
    return error(500, e.what());
  }
}

}  // namespace pushgate::api
