#include "checks.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include <pushgate/git.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace pushgate::config {
namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

template <typename T>
std::vector<std::string> names_of(const std::vector<T>& v) {
  std::vector<std::string> out;
  for (const T& x : v) out.push_back(x.name);
  return out;
}

std::string known_list(const std::vector<std::string>& known) {
  if (known.empty()) return "none are configured";
  std::string out = "known: ";
  for (std::size_t i = 0; i < known.size(); ++i) out += (i ? ", " : "") + known[i];
  return out;
}

struct Checker {
  const Config& c;
  std::vector<Diagnostic> out;

  void error(const std::string& ptr, const std::string& msg) { out.push_back({"", ptr, 0, 0, msg, false}); }
  void warning(const std::string& ptr, const std::string& msg) { out.push_back({"", ptr, 0, 0, msg, true}); }

  void unknown(const std::string& ptr, const std::string& what, const std::string& name,
               const std::vector<std::string>& known) {
    std::string hint = did_you_mean(name, known);
    error(ptr, "unknown " + what + " \"" + name + "\" (" + (hint.empty() ? known_list(known) : hint) + ")");
  }

  template <typename T>
  void unique(const std::vector<T>& v, const std::string& key, const std::string& what) {
    std::map<std::string, std::size_t> first;
    for (std::size_t i = 0; i < v.size(); ++i) {
      auto [it, fresh] = first.emplace(v[i].name, i);
      if (!fresh) {
        error("/" + key + "/" + std::to_string(i) + "/name",
              "duplicate " + what + " name \"" + v[i].name + "\" (first at /" + key + "/" + std::to_string(it->second) + ")");
      }
    }
  }

  void ref_name(const std::string& ptr, const std::string& ref) {
    if (!git::is_valid_ref_name(ref)) error(ptr, "invalid git ref name \"" + ref + "\"");
  }

  /// A git URL pushgate can use: scheme://host/path for git, ssh, http(s),
  /// file:///path; scp-like user@host:path; anything else is a path.
  void url(const std::string& ptr, const std::string& u) {
    auto sep = u.find("://");
    if (sep == std::string::npos) return;
    std::string scheme = u.substr(0, sep), rest = u.substr(sep + 3);
    static const std::set<std::string> known{"file", "git", "ssh", "git+ssh", "ssh+git", "http", "https"};
    if (!known.count(scheme)) {
      error(ptr, "URL \"" + u + "\" has scheme \"" + scheme + "\"; use one of file, git, ssh, http, https");
      return;
    }
    if (scheme == "file") {
      if (!rest.starts_with("/")) error(ptr, "file URL \"" + u + "\" needs an absolute path (file:///PATH)");
      return;
    }
    std::string host = rest.substr(0, rest.find('/'));
    if (host.empty() || rest.find('/') == std::string::npos || rest.find('/') + 1 >= rest.size()) {
      error(ptr, "URL \"" + u + "\" needs a host and a path (" + scheme + "://HOST/PATH)");
    }
  }

  /// HOST:PORT the daemon can listen on (the schema only checks the shape).
  void listen(const std::string& ptr, const std::string& l) {
    auto colon = l.rfind(':');
    if (colon == std::string::npos) return;  // the schema says so
    long port = std::strtol(l.c_str() + colon + 1, nullptr, 10);
    if (port < 0 || port > 65535) error(ptr, "port " + l.substr(colon + 1) + " is out of range (0-65535)");
    std::string host = l.substr(0, colon);
    if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
    unsigned char buf[16];
    if (host != "localhost" && ::inet_pton(AF_INET, host.c_str(), buf) != 1 &&
        ::inet_pton(AF_INET6, host.c_str(), buf) != 1) {
      error(ptr, "listen address \"" + host + "\" is not an IP address (or localhost)");
    }
  }

  void run() {
    listen("/daemon/listen", c.daemon.listen);
    if (c.daemon.read_requires_token && c.daemon.api_token_file.empty() && c.daemon.api_token_env.empty()) {
      error("/daemon/read_requires_token", "reads require a token, but no token is configured (daemon.api_token_file)");
    }
    unique(c.trees, "trees", "tree");
    unique(c.branches, "branches", "branch");
    unique(c.jobs, "jobs", "job");
    unique(c.hosts, "hosts", "host");
    auto trees = names_of(c.trees);
    auto branches = names_of(c.branches);
    auto jobs = names_of(c.jobs);

    // Names that become parts of step environment variables must stay
    // apart there (PUSHGATE_MIRROR_<TREE>, PUSHGATE_RV_revision_<tree>,
    // PUSHGATE_BUILD_DIR_<JOB>).
    env_apart(trees, "/trees/", "tree", "PUSHGATE_MIRROR_");
    env_apart(jobs, "/jobs/", "job", "PUSHGATE_BUILD_DIR_");
    for (std::size_t i = 0; i < c.jobs.size(); ++i) {
      std::vector<std::string> roles, vars;
      for (const auto& [role, flags] : c.jobs[i].hosts) roles.push_back(role);
      for (const auto& [k, v] : c.jobs[i].runvars) vars.push_back(k);
      std::string p = "/jobs/" + std::to_string(i);
      env_apart(roles, p + "/hosts/", "host role", "PUSHGATE_", true);
      env_apart(vars, p + "/runvars/", "runvar", "PUSHGATE_RV_", true);
    }

    for (std::size_t i = 0; i < c.trees.size(); ++i) {
      const Tree& t = c.trees[i];
      std::string p = "/trees/" + std::to_string(i);
      url(p + "/upstream", t.upstream);
      url(p + "/push_url", t.push_url);
      if (!git::is_valid_ref_name(t.frozen_ref("example-branch"))) {
        error(p + "/frozen_pattern", "pattern \"" + t.frozen_pattern + "\" does not make a valid git ref name");
      }
      if (!t.gate.empty()) {
        const Branch* g = c.find_branch(t.gate);
        if (!g) unknown(p + "/gate", "branch", t.gate, branches);
        else if (g->tree != t.name) error(p + "/gate", "branch \"" + t.gate + "\" tests tree \"" + g->tree + "\", not \"" + t.name + "\"");
      }
    }

    // One gate per tested ref: a second branch pushing the same ref would see
    // every push of the first as "moved by hand" and never push itself.
    std::map<std::string, std::size_t> gate_of_ref;
    for (std::size_t i = 0; i < c.branches.size(); ++i) {
      const Branch& b = c.branches[i];
      if (!c.find_tree(b.tree)) continue;
      std::string target = c.push_url(b) + " " + git::qualify_ref(b.tested);
      auto [it, fresh] = gate_of_ref.emplace(target, i);
      if (!fresh) {
        error("/branches/" + std::to_string(i) + "/tested",
              "branch \"" + b.name + "\" pushes the same tested ref " + git::qualify_ref(b.tested) + " as branch \"" +
                  c.branches[it->second].name + "\" (/branches/" + std::to_string(it->second) +
                  "); give each branch its own tested ref");
      }
    }

    for (std::size_t i = 0; i < c.branches.size(); ++i) {
      const Branch& b = c.branches[i];
      std::string p = "/branches/" + std::to_string(i);
      if (!c.find_tree(b.tree)) unknown(p + "/tree", "tree", b.tree, trees);
      ref_name(p + "/input", b.input);
      ref_name(p + "/tested", b.tested);
      if (git::qualify_ref(b.input) == git::qualify_ref(b.tested)) {
        error(p + "/tested", "the tested ref must differ from the input ref \"" + b.input + "\"");
      }
      for (std::size_t k = 0; k < b.trees.size(); ++k) {
        if (!c.find_tree(b.trees[k])) unknown(p + "/trees/" + std::to_string(k), "tree", b.trees[k], trees);
      }
      for (const auto& [tree, src] : b.sources) {
        std::string sp = p + "/sources/" + tree;
        if (!c.find_tree(tree)) {
          unknown(sp, "tree", tree, trees);
          continue;
        }
        if (src.kind == Source::Kind::tested_of) {
          const Branch* other = c.find_branch(src.value);
          if (!other) unknown(sp + "/tested-of", "branch", src.value, branches);
          else if (other->tree != tree) {
            error(sp + "/tested-of", "branch \"" + src.value + "\" tests tree \"" + other->tree + "\", not \"" + tree + "\"");
          }
        } else {
          ref_name(sp + "/ref", src.value);
        }
      }
      // Every tree the branch needs must have a revision source.
      std::vector<std::string> needed = b.trees.empty() ? trees : b.trees;
      for (const std::string& t : needed) {
        if (!c.find_tree(b.tree)) break;  // already reported; every tree would look unsourced
        if (t == b.tree || b.sources.count(t) || !c.find_tree(t)) continue;
        if (!c.gate_of(t)) {
          error(p, "no revision source for tree \"" + t + "\": add sources." + t +
                       " ({\"tested-of\": BRANCH} or {\"ref\": NAME}), a branch named \"" + t + "\", or trees[].gate");
        }
      }
      for (std::size_t k = 0; k < b.jobs.size(); ++k) {
        if (!c.find_job(b.jobs[k])) unknown(p + "/jobs/" + std::to_string(k), "job", b.jobs[k], jobs);
      }
    }

    std::vector<std::string> recipes;
    for (const auto& [name, r] : c.recipes) recipes.push_back(name);
    for (const auto& [name, r] : c.recipes) {
      std::set<std::string> testids;
      for (std::size_t k = 0; k < r.steps.size(); ++k) {
        if (r.steps[k].run.empty() == r.steps[k].op.empty()) {
          error("/recipes/" + name + "/steps/" + std::to_string(k),
                "a step needs exactly one of \"run\" (a command) or \"op\" (a built-in host operation)");
        }
        if (!testids.insert(r.steps[k].testid).second) {
          error("/recipes/" + name + "/steps/" + std::to_string(k) + "/testid",
                "duplicate testid \"" + r.steps[k].testid + "\" in recipe \"" + name + "\"");
        }
      }
    }
    for (std::size_t i = 0; i < c.jobs.size(); ++i) {
      const Job& j = c.jobs[i];
      std::string p = "/jobs/" + std::to_string(i);
      auto recipe = c.recipes.find(j.recipe);
      if (recipe == c.recipes.end()) unknown(p + "/recipe", "recipe", j.recipe, recipes);
      for (std::size_t k = 0; k < j.depends.size(); ++k) {
        if (!c.find_job(j.depends[k])) unknown(p + "/depends/" + std::to_string(k), "job", j.depends[k], jobs);
      }
      for (const auto& [role, flags] : j.hosts) {
        bool any = std::any_of(c.hosts.begin(), c.hosts.end(), [&](const Host& h) {
          return std::all_of(flags.begin(), flags.end(), [&](const std::string& f) {
            if (f == "equiv-*") {
              return std::any_of(h.flags.begin(), h.flags.end(), [](const auto& x) { return x.starts_with("equiv-"); });
            }
            return std::find(h.flags.begin(), h.flags.end(), f) != h.flags.end();
          });
        });
        if (!any) {
          warning(p + "/hosts/" + role, "no configured host has all flags required for role \"" + role +
                                            "\": the job will starve");
        }
      }
      if (j.hosts.count("controller")) {
        error(p + "/hosts/controller", "\"controller\" is not a host role: a step with role \"controller\" runs on "
                                       "the controller; rename the role");
      }
      if (recipe != c.recipes.end()) {
        std::vector<std::string> declared;
        for (const auto& [role, flags] : j.hosts) declared.push_back(role);
        std::string choices;
        for (const auto& r : declared) choices += (choices.empty() ? "" : ", ") + r;
        for (const Step& s : recipe->second.steps) {
          std::string role = step_role(j, s);
          std::string where = "recipe \"" + j.recipe + "\" step \"" + s.testid + "\"";
          if (role.empty()) {
            if (!s.op.empty()) {
              error(p + "/hosts", where + " is operation " + s.op + ", which needs a host role; job \"" + j.name +
                                      "\" runs it on the controller");
            }
          } else if (!j.hosts.count(role)) {
            if (s.role_set) {
              error(p + "/hosts", where + " needs host role \"" + role + "\", which job \"" + j.name +
                                      "\" does not declare (it has " + choices + ")");
            } else {
              error(p + "/hosts", where + " names no role, and job \"" + j.name + "\" has several (" + choices +
                                      "), none named host: give the step a role (one of them, or \"controller\")");
            }
          }
        }
      }
    }
    cycles();
    notify();
  }

  /// Mail needs a way out: SMTP with a user needs its password file (read
  /// at start-up, daemon::startup_checks), and sendmail must be a program.
  void notify() {
    const Notify& n = c.notify;
    if (n.smtp_user.empty() != n.smtp_password_file.empty()) {
      error(n.smtp_user.empty() ? "/notify/smtp_password_file" : "/notify/smtp_user",
            "notify.smtp_user and notify.smtp_password_file go together");
    }
    if (!n.smtp_user.empty() && n.smtp.empty()) error("/notify/smtp_user", "notify.smtp_user is set but notify.smtp is not");
    if (n.max_retry_seconds < n.retry_seconds) {
      error("/notify/max_retry_seconds", "notify.max_retry_seconds is shorter than notify.retry_seconds");
    }
    bool mail = !n.defaults.mail.empty();
    for (const auto& b : c.branches) mail = mail || !b.notify.mail.empty();
    if (!mail || !n.smtp.empty()) return;
    std::string program = n.sendmail.substr(0, n.sendmail.find_first_of(" \t"));
    if (program.empty() || program[0] != '/') {
      error("/notify/sendmail", "notify.sendmail must start with an absolute path (\"" + program + "\")");
    } else if (::access(program.c_str(), X_OK) != 0) {
      warning("/notify/sendmail", program + " is not an executable here: mail will fail (and be retried) until it is, "
                                            "or set notify.smtp");
    }
  }

  /// Two names that make the same environment variable: an error at the
  /// second (pointer prefix + index, or + name when `by_name`).
  void env_apart(const std::vector<std::string>& names, const std::string& prefix, const std::string& what,
                 const std::string& variable, bool by_name = false) {
    const bool upper = variable != "PUSHGATE_RV_";
    std::map<std::string, std::string> seen;
    for (std::size_t i = 0; i < names.size(); ++i) {
      std::string key = env_name(names[i], upper);
      auto [it, fresh] = seen.emplace(key, names[i]);
      if (!fresh && it->second != names[i]) {
        error(prefix + (by_name ? names[i] : std::to_string(i)),
              what + " \"" + names[i] + "\" and " + what + " \"" + it->second + "\" both give steps " + variable +
                  key + "; rename one");
      }
    }
  }

  void cycles() {
    enum Mark { white, grey, black };
    std::map<std::string, Mark> mark;
    std::vector<std::string> path;
    std::set<std::string> reported;
    std::function<void(const Job&)> visit = [&](const Job& j) {
      mark[j.name] = grey;
      path.push_back(j.name);
      for (const std::string& d : j.depends) {
        const Job* dj = c.find_job(d);
        if (!dj) continue;
        if (mark[d] == grey) {
          auto from = std::find(path.begin(), path.end(), d);
          std::string cyc;
          for (auto it = from; it != path.end(); ++it) cyc += *it + " -> ";
          cyc += d;
          if (reported.insert(d).second) {
            std::size_t idx = static_cast<std::size_t>(&j - c.jobs.data());
            error("/jobs/" + std::to_string(idx) + "/depends", "dependency cycle: " + cyc);
          }
        } else if (mark[d] == white) {
          visit(*dj);
        }
      }
      path.pop_back();
      mark[j.name] = black;
    };
    for (const Job& j : c.jobs) {
      if (mark[j.name] == white) visit(j);
    }
  }
};

}  // namespace

std::string did_you_mean(const std::string& name, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = 3;
  for (const std::string& k : known) {
    std::size_t d = edit_distance(name, k);
    if (d < best_d && d <= std::max<std::size_t>(1, name.size() / 3)) {
      best_d = d;
      best = k;
    }
  }
  return best.empty() ? "" : "did you mean \"" + best + "\"?";
}

Result<std::string> api_token(const Config& c) {
  if (!c.daemon.api_token_env.empty()) {
    const char* v = std::getenv(c.daemon.api_token_env.c_str());
    if (!v || !*v) return Status::invalid_argument("environment variable " + c.daemon.api_token_env + " (daemon.api_token_env) is empty");
    if (std::string(v).size() < 16) {
      return Status::invalid_argument("the API token in " + c.daemon.api_token_env + " is shorter than 16 characters");
    }
    return std::string(v);
  }
  if (c.daemon.api_token_file.empty()) return std::string();
  std::ifstream in(c.daemon.api_token_file);
  if (!in) return Status::invalid_argument("cannot read the API token file " + c.daemon.api_token_file);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) return Status::invalid_argument("the API token in " + c.daemon.api_token_file + " is shorter than 16 characters");
  return token;
}

std::vector<Diagnostic> check(const Config& config) {
  Checker ch{config, {}};
  ch.run();
  return std::move(ch.out);
}

}  // namespace pushgate::config
