// Loading a configuration: read and parse each file (line/column on syntax
// errors), validate each against the schema, merge includes, then check the
// meaning of the merged document and build the typed Config.

#include <pushgate/config.hpp>
#include <pushgate/git.hpp>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <unistd.h>

#include "checks.hpp"

namespace pushgate::config {

extern const char kConfigSchema[];  // generated from schemas/config.schema.json

namespace fs = std::filesystem;
using nlohmann::json;

const std::string& schema_text() {
  static const std::string text = kConfigSchema;
  return text;
}

std::string Diagnostic::to_string() const {
  std::string out = "config: ";
  if (!file.empty()) {
    out += file;
    if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
    out += ": ";
  }
  if (!pointer.empty()) out += pointer + ": ";
  out += message;
  if (warning) out = "warning: " + out;
  return out;
}

Status to_status(const LoadResult& r) {
  if (r.errors.empty()) return {};
  std::string msg = r.errors.front().to_string();
  if (r.errors.size() > 1) msg += " (and " + std::to_string(r.errors.size() - 1) + " more errors)";
  return Status::invalid_argument(msg, "run `pushgate config check` for the full list");
}

std::string Tree::frozen_ref(const std::string& branch) const {
  std::string out = frozen_pattern;
  for (auto pos = out.find("{branch}"); pos != std::string::npos; pos = out.find("{branch}", pos + branch.size())) {
    out.replace(pos, 8, branch);
  }
  return out;
}

template <typename T>
static const T* find_named(const std::vector<T>& v, const std::string& name) {
  auto it = std::find_if(v.begin(), v.end(), [&](const T& x) { return x.name == name; });
  return it == v.end() ? nullptr : &*it;
}
const Tree* Config::find_tree(const std::string& n) const { return find_named(trees, n); }
const Branch* Config::find_branch(const std::string& n) const { return find_named(branches, n); }
const Job* Config::find_job(const std::string& n) const { return find_named(jobs, n); }

std::string env_name(std::string_view name, bool upper) {
  std::string out(name);
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && c != '_') c = '_';
    else if (upper) c = static_cast<char>(std::toupper(u));
  }
  return out;
}

std::string step_role(const Job& job, const Step& step) {
  if (step.role_set) return step.role == "controller" ? std::string() : step.role;
  if (job.hosts.count("host")) return "host";
  if (job.hosts.size() == 1) return job.hosts.begin()->first;
  if (job.hosts.empty()) return "";
  return step.role;
}
std::string Config::push_url(const Branch& b) const {
  if (!b.push_url.empty()) return b.push_url;
  const Tree* t = find_tree(b.tree);
  return t ? t->push_url : std::string();
}
const Host* Config::find_host(const std::string& n) const { return find_named(hosts, n); }
const Branch* Config::gate_of(const std::string& tree) const {
  const Tree* t = find_tree(tree);
  if (t && !t->gate.empty()) return find_branch(t->gate);
  const Branch* b = find_branch(tree);
  return b && b->tree == tree ? b : nullptr;
}

namespace {

const valijson::Schema& schema() {
  static const std::unique_ptr<valijson::Schema> s = [] {
    auto out = std::make_unique<valijson::Schema>();
    valijson::SchemaParser parser;
    json doc = json::parse(schema_text());
    valijson::adapters::NlohmannJsonAdapter adapter(doc);
    parser.populateSchema(adapter, *out);
    return out;
  }();
  return *s;
}

std::string escape_pointer_token(const std::string& t) {
  std::string out;
  for (char c : t) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

std::string pointer_of(const std::vector<std::string>& context) {
  std::string out;
  for (const std::string& c : context) {
    if (c == "<root>") continue;
    std::string token = c.size() >= 2 && c.front() == '[' && c.back() == ']' ? c.substr(1, c.size() - 2) : c;
    out += "/" + escape_pointer_token(token);
  }
  return out;
}

/// valijson's wording, made shorter for people.
std::string friendly(const std::string& m) {
  static const std::string unknown = "Object contains a property that could not be validated using 'properties' or "
                                     "'additionalProperties' constraints: '";
  if (m.starts_with(unknown)) return "unknown key \"" + m.substr(unknown.size(), m.size() - unknown.size() - 2) + "\"";
  static const std::string missing = "Missing required property '";
  if (m.starts_with(missing)) return "missing required key \"" + m.substr(missing.size(), m.size() - missing.size() - 2) + "\"";
  if (m.starts_with("Value type not permitted by 'type' constraint")) return "wrong type";
  return m;
}

/// Schema errors of one document, most specific only.
std::vector<Diagnostic> validate(const json& doc, const std::string& file) {
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(doc);
  std::vector<Diagnostic> out;
  if (validator.validate(schema(), target, &results)) return out;
  std::vector<valijson::ValidationResults::Error> errs;
  valijson::ValidationResults::Error e;
  while (results.popError(e)) errs.push_back(e);
  auto is_prefix = [](const std::vector<std::string>& a, const std::vector<std::string>& b) {
    return a.size() < b.size() && std::equal(a.begin(), a.end(), b.begin());
  };
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& err : errs) {
    // An error at a context that has a more specific error below it only
    // says "a child failed": the child's own error says what.
    if (std::any_of(errs.begin(), errs.end(), [&](const auto& o) { return is_prefix(err.context, o.context); })) {
      continue;
    }
    std::string ptr = pointer_of(err.context);
    std::string msg = friendly(err.description);
    // "child schema #N failed" wrappers repeat an error listed at the same place.
    if (msg.starts_with("Failed to validate against") &&
        std::any_of(errs.begin(), errs.end(), [&](const auto& o) {
          return o.context == err.context && !o.description.starts_with("Failed to validate against");
        })) {
      continue;
    }
    if (msg == "wrong type") {
      try {
        msg = std::string("wrong type: ") + doc.at(json::json_pointer(ptr)).type_name() + " is not allowed here";
      } catch (const json::exception&) {
      }
    }
    if (seen.insert({ptr, msg}).second) out.push_back({file, ptr, 0, 0, msg, false});
  }
  return out;
}

/// Where an element of a merged top-level array came from.
struct Origin {
  std::string file;
  std::size_t index = 0;
};

struct Loader {
  LoadResult result;
  json merged = json::object();
  std::map<std::string, std::vector<Origin>> origins;   // top-level array key -> per element
  std::map<std::string, std::string> object_key_files;  // "daemon/listen" -> file
  std::vector<std::string> stack;                        // include chain, for cycles

  void error(std::string file, std::string pointer, std::string message, int line = 0, int column = 0) {
    result.errors.push_back({std::move(file), std::move(pointer), line, column, std::move(message), false});
  }

  void load_file(const fs::path& path, const std::string& from_file, const std::string& from_pointer) {
    std::string file = path.lexically_normal().string();
    if (std::find(stack.begin(), stack.end(), file) != stack.end()) {
      error(from_file, from_pointer, "include cycle: " + file + " includes itself through " + stack.back());
      return;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      error(from_file.empty() ? file : from_file, from_pointer,
            from_file.empty() ? "cannot read config file " + file + ": " + std::strerror(errno)
                              : "included file " + file + " cannot be read: " + std::strerror(errno));
      return;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    load_document(ss.str(), file);
  }

  /// (JSON pointer, key) of every key that repeats within its object.
  static std::vector<std::pair<std::string, std::string>> duplicate_keys(const std::string& text) {
    struct Frame {
      bool array = false;
      std::size_t next = 0;            // arrays: index of the next element
      std::string at;                  // the key or index of the value being read
      std::set<std::string> keys;      // objects: keys seen
    };
    struct Sax {
      std::vector<Frame> frames;
      std::vector<std::pair<std::string, std::string>> dups;
      static std::string escape(const std::string& k) {
        std::string o;
        for (char c : k) o += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
        return o;
      }
      std::string pointer() const {
        std::string p;
        for (std::size_t i = 0; i + 1 < frames.size(); ++i) p += "/" + frames[i].at;
        return p;
      }
      void value() {
        if (!frames.empty() && frames.back().array) frames.back().at = std::to_string(frames.back().next++);
      }
      bool null() { value(); return true; }
      bool boolean(bool) { value(); return true; }
      bool number_integer(json::number_integer_t) { value(); return true; }
      bool number_unsigned(json::number_unsigned_t) { value(); return true; }
      bool number_float(json::number_float_t, const std::string&) { value(); return true; }
      bool string(std::string&) { value(); return true; }
      bool binary(json::binary_t&) { value(); return true; }
      bool start_object(std::size_t) { value(); frames.push_back({}); return true; }
      bool end_object() { frames.pop_back(); return true; }
      bool start_array(std::size_t) { value(); frames.push_back({true, 0, "", {}}); return true; }
      bool end_array() { frames.pop_back(); return true; }
      bool key(std::string& k) {
        Frame& f = frames.back();
        f.at = escape(k);
        if (!f.keys.insert(k).second) dups.emplace_back(pointer() + "/" + f.at, k);
        return true;
      }
      bool parse_error(std::size_t, const std::string&, const json::exception&) { return false; }
    } sax;
    json::sax_parse(text, &sax);
    return sax.dups;
  }

  void load_document(const std::string& text, const std::string& file) {
    json doc;
    try {
      doc = json::parse(text);
    } catch (const json::parse_error& e) {
      int line = 1, col = 1;
      std::size_t end = std::min<std::size_t>(e.byte ? e.byte - 1 : 0, text.size());
      for (std::size_t i = 0; i < end; ++i) {
        if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
      }
      std::string what = e.what();
      auto pos = what.find("syntax error");
      error(file, "", "JSON syntax error: " + (pos == std::string::npos ? what : what.substr(pos)), line, col);
      return;
    }
    // nlohmann keeps the last of two equal keys without a word: a typo'd
    // copy of a block would silently replace the first (issue 12 item 9).
    if (auto dups = duplicate_keys(text); !dups.empty()) {
      for (const auto& d : dups) error(file, d.first, "duplicate key \"" + d.second + "\" in this object");
      return;
    }
    auto errs = validate(doc, file);
    if (!errs.empty()) {
      result.errors.insert(result.errors.end(), errs.begin(), errs.end());
      return;
    }
    stack.push_back(file);
    fs::path dir = fs::path(file).parent_path();
    if (doc.contains("include")) {
      const json& inc = doc["include"];
      for (std::size_t i = 0; i < inc.size(); ++i) {
        fs::path p = inc[i].get<std::string>();
        load_file(p.is_absolute() ? p : dir / p, file, "/include/" + std::to_string(i));
      }
    }
    stack.pop_back();
    merge(doc, file);
  }

  void merge(const json& doc, const std::string& file) {
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      const std::string& key = it.key();
      if (key == "include") continue;
      if (it->is_array()) {
        json& dst = merged[key];
        if (dst.is_null()) dst = json::array();
        for (std::size_t i = 0; i < it->size(); ++i) {
          dst.push_back((*it)[i]);
          origins[key].push_back({file, i});
        }
      } else {
        json& dst = merged[key];
        if (dst.is_null()) dst = json::object();
        for (auto m = it->begin(); m != it->end(); ++m) {
          std::string where = key + "/" + m.key();
          if (dst.contains(m.key())) {
            error(file, "/" + key + "/" + escape_pointer_token(m.key()),
                  "\"" + m.key() + "\" is also set in " + object_key_files[where]);
            continue;
          }
          dst[m.key()] = *m;
          object_key_files[where] = file;
        }
      }
    }
  }
};

std::string absolute(const fs::path& base, const std::string& p) {
  fs::path path(p);
  return (path.is_absolute() ? path : base / path).lexically_normal().string();
}

bool is_url(const std::string& s) {
  return s.find("://") != std::string::npos || (s.find('@') != std::string::npos && s.find(':') != std::string::npos);
}

Channels channels(const json& n, const Channels& base) {
  Channels c = base;
  c.mail = n.value("mail", base.mail);
  c.webhooks = n.value("webhooks", base.webhooks);
  c.commands = n.value("commands", base.commands);
  c.blessings = n.value("blessings", base.blessings);
  c.bisections = n.value("bisections", base.bisections);
  return c;
}

Config build(const json& j, const std::string& path) {
  Config c;
  c.path = path;
  fs::path dir = fs::absolute(fs::path(path)).parent_path();
  c.dir = dir.string();
  json d = j.value("daemon", json::object());
  c.daemon.state_dir = absolute(dir, d.value("state_dir", std::string("state")));
  c.daemon.database = absolute(dir, d.value("database", c.daemon.state_dir + "/pushgate.db"));
  c.daemon.listen = d.value("listen", c.daemon.listen);
  c.daemon.public_url = d.value("public_url", "http://" + c.daemon.listen);
  while (c.daemon.public_url.ends_with('/')) c.daemon.public_url.pop_back();
  c.daemon.log_level = d.value("log_level", c.daemon.log_level);
  c.daemon.log_format = d.value("log_format", c.daemon.log_format);
  c.daemon.retention_days = d.value("retention_days", c.daemon.retention_days);
  if (d.contains("api_token_file")) c.daemon.api_token_file = absolute(dir, d["api_token_file"]);
  c.daemon.api_token_env = d.value("api_token_env", "");
  c.daemon.read_requires_token = d.value("read_requires_token", false);
  c.daemon.api_workers = d.value("api_workers", c.daemon.api_workers);
  c.daemon.time_zone = d.value("time_zone", c.daemon.time_zone);
  c.daemon.api_busy_timeout_seconds = d.value("api_busy_timeout_seconds", c.daemon.api_busy_timeout_seconds);
  c.daemon.starve_after_seconds = d.value("starve_after_seconds", c.daemon.starve_after_seconds);
  c.daemon.quarantine_after = d.value("quarantine_after", c.daemon.quarantine_after);
  c.daemon.retest_regressions = d.value("retest_regressions", c.daemon.retest_regressions);
  c.daemon.bisect = d.value("bisect", c.daemon.bisect);
  c.daemon.bisect_same_hosts = d.value("bisect_same_hosts", c.daemon.bisect_same_hosts);
  c.daemon.bisect_parallel = d.value("bisect_parallel", c.daemon.bisect_parallel);
  c.daemon.max_parallel_jobs = d.value("max_parallel_jobs", c.daemon.max_parallel_jobs);
  c.daemon.stale_ref_lock_seconds = d.value("stale_ref_lock_seconds", c.daemon.stale_ref_lock_seconds);
  c.daemon.step_log_max_bytes = d.value("step_log_max_bytes", c.daemon.step_log_max_bytes);
  c.daemon.retry_broken = d.value("retry_broken", c.daemon.retry_broken);
  c.daemon.api_max_connections = d.value("api_max_connections", c.daemon.api_max_connections);
  c.daemon.push_attempts = d.value("push_attempts", c.daemon.push_attempts);
  c.daemon.reconcile_seconds = d.value("reconcile_seconds", c.daemon.reconcile_seconds);
  c.daemon.step_env = d.value("step_env", std::vector<std::string>{});

  const json n = j.value("notify", json::object());
  c.notify.from = n.value("from", "");
  if (c.notify.from.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "localhost");
    c.notify.from = std::string("pushgate@") + host;
  }
  c.notify.sendmail = n.value("sendmail", c.notify.sendmail);
  c.notify.smtp = n.value("smtp", "");
  c.notify.smtp_user = n.value("smtp_user", "");
  if (n.contains("smtp_password_file")) c.notify.smtp_password_file = absolute(dir, n["smtp_password_file"]);
  c.notify.attempts = n.value("attempts", c.notify.attempts);
  c.notify.retry_seconds = n.value("retry_seconds", c.notify.retry_seconds);
  c.notify.max_retry_seconds = n.value("max_retry_seconds", c.notify.max_retry_seconds);
  c.notify.timeout_seconds = n.value("timeout_seconds", c.notify.timeout_seconds);
  c.notify.defaults = channels(n, Channels{});

  for (const json& t : j.value("trees", json::array())) {
    Tree tree;
    tree.name = t["name"];
    std::string up = t["upstream"];
    tree.upstream = is_url(up) ? up : absolute(dir, up);
    tree.mirror = absolute(dir, t.value("mirror", c.daemon.state_dir + "/mirrors/" + tree.name + ".git"));
    std::string push = t.value("push_url", up);
    tree.push_url = is_url(push) ? push : absolute(dir, push);
    tree.frozen_pattern = t.value("frozen_pattern", "osstest/frozen/{branch}");
    tree.gate = t.value("gate", "");
    c.trees.push_back(std::move(tree));
  }
  for (const json& b : j.value("branches", json::array())) {
    Branch br;
    br.name = b["name"];
    br.tree = b["tree"];
    br.input = b["input"];
    br.tested = b["tested"];
    br.push = b.value("push", true);
    if (b.contains("push_url")) {
      std::string p = b["push_url"];
      br.push_url = is_url(p) ? p : absolute(dir, p);
    }
    br.always_run = b.value("always_run", false);
    br.priority = b.value("priority", 0);
    br.trees = b.value("trees", std::vector<std::string>{});
    if (b.contains("sources")) {
      for (auto& [tree, src] : b["sources"].items()) {
        Source s;
        if (src.contains("tested-of")) {
          s.kind = Source::Kind::tested_of;
          s.value = src["tested-of"];
        } else {
          s.kind = Source::Kind::ref;
          s.value = src["ref"];
        }
        br.sources[tree] = s;
      }
    }
    br.jobs = b.value("jobs", std::vector<std::string>{});
    br.allow = b.value("allow", std::vector<std::string>{});
    if (b.contains("schedule")) {
      br.cron = b["schedule"].value("cron", "");
      br.poll_seconds = b["schedule"].value("poll_seconds", 0);
    }
    br.notify = b.contains("notify") ? channels(b["notify"], c.notify.defaults) : c.notify.defaults;
    c.branches.push_back(std::move(br));
  }
  const json recipes = j.value("recipes", json::object());
  for (auto& [name, r] : recipes.items()) {
    Recipe recipe;
    recipe.name = name;
    for (const json& s : r["steps"]) {
      Step st;
      st.testid = s["testid"];
      st.run = s.value("run", "");
      st.op = s.value("op", "");
      st.role_set = s.contains("role");
      st.role = s.value("role", st.role);
      st.timeout = s.value("timeout", st.timeout);
      st.on_failure = s.value("on_failure", st.on_failure);
      st.always = s.value("always", false);
      st.non_fatal = s.value("non_fatal", false);
      st.log_max_bytes = s.value("log_max_bytes", std::int64_t{0});
      recipe.steps.push_back(std::move(st));
    }
    c.recipes[name] = std::move(recipe);
  }
  for (const json& jj : j.value("jobs", json::array())) {
    Job job;
    job.name = jj["name"];
    job.kind = jj.value("kind", job.name.starts_with("build-") ? std::string("build") : std::string("test"));
    job.recipe = jj["recipe"];
    job.depends = jj.value("depends", std::vector<std::string>{});
    if (jj.contains("hosts")) {
      for (auto& [role, flags] : jj["hosts"].items()) job.hosts[role] = flags.get<std::vector<std::string>>();
    }
    if (jj.contains("runvars")) {
      for (auto& [k, v] : jj["runvars"].items()) job.runvars[k] = v.get<std::string>();
    }
    c.jobs.push_back(std::move(job));
  }
  for (const json& h : j.value("hosts", json::array())) {
    Host host;
    host.name = h["name"];
    host.kind = h["kind"];
    host.flags = h.value("flags", std::vector<std::string>{});
    host.uri = h.value("uri", "");
    host.address = h.value("address", "");
    host.ssh_user = h.value("ssh_user", host.ssh_user);
    host.ssh_port = h.value("ssh_port", host.ssh_port);
    auto path_of = [&](const char* key) { return h.contains(key) ? absolute(dir, h[key]) : std::string(); };
    host.ssh_key = path_of("ssh_key");
    host.known_hosts = path_of("known_hosts");
    host.power_command = h.value("power_command", "");
    host.console_command = h.value("console_command", "");
    host.pxe_template = path_of("pxe_template");
    host.pxe_dir = path_of("pxe_dir");
    host.password_file = path_of("password_file");
    host.password_env = h.value("password_env", "");
    host.keepalive_interval = h.value("keepalive_interval", host.keepalive_interval);
    host.keepalive_count = h.value("keepalive_count", host.keepalive_count);
    c.hosts.push_back(std::move(host));
  }
  c.allow = j.value("allow", std::vector<std::string>{});
  return c;
}

LoadResult finish(Loader& l, const std::string& path) {
  if (!l.result.errors.empty()) return std::move(l.result);
  Config c = build(l.merged, path);
  std::vector<Diagnostic> found = check(c);
  for (Diagnostic& d : found) {
    // Point into the file the element came from: /branches/3 of the merged
    // document may be /branches/1 of an included file.
    if (d.pointer.size() > 1) {
      auto slash1 = d.pointer.find('/', 1);
      std::string key = d.pointer.substr(1, slash1 == std::string::npos ? std::string::npos : slash1 - 1);
      auto it = l.origins.find(key);
      if (it != l.origins.end() && slash1 != std::string::npos) {
        auto slash2 = d.pointer.find('/', slash1 + 1);
        std::size_t idx = std::stoul(d.pointer.substr(slash1 + 1, slash2 - slash1 - 1));
        if (idx < it->second.size()) {
          const Origin& o = it->second[idx];
          d.file = o.file;
          d.pointer = "/" + key + "/" + std::to_string(o.index) + (slash2 == std::string::npos ? "" : d.pointer.substr(slash2));
        }
      } else if (d.file.empty()) {
        d.file = path;
      }
    }
    (d.warning ? l.result.warnings : l.result.errors).push_back(std::move(d));
  }
  if (l.result.errors.empty()) l.result.config = std::move(c);
  return std::move(l.result);
}

}  // namespace

LoadResult load(const std::string& path) {
  Loader l;
  l.load_file(fs::path(path), "", "");
  return finish(l, path);
}

LoadResult load_text(const std::string& text, const std::string& path) {
  Loader l;
  l.load_document(text, fs::path(path).lexically_normal().string());
  return finish(l, path);
}

}  // namespace pushgate::config
