// Entry point of the command line: global options, subcommands, exit codes.

#include <pushgate/api.hpp>
#include <pushgate/cli.hpp>

#include <cstdlib>
#include <filesystem>
#include <ctime>
#include <iostream>

#include "context.hpp"

namespace pushgate::cli {

const config::Config& Context::config() {
  if (config_) return *config_;
  if (config_path.empty()) {
    print_error(Status::invalid_argument("no configuration given",
                                         "pass --config PATH, set PUSHGATE_CONFIG, or install " PUSHGATE_DEFAULT_CONFIG));
    throw ExitError{kUsage};
  }
  config::LoadResult r = config::load(config_path);
  for (const auto& w : r.warnings) std::cerr << w.to_string() << "\n";
  if (!r.config) {
    for (const auto& e : r.errors) std::cerr << e.to_string() << "\n";
    std::cerr << "pushgate: " << r.errors.size() << " configuration error" << (r.errors.size() == 1 ? "" : "s")
              << "; nothing was changed\n";
    throw ExitError{kUsage};
  }
  config_ = std::move(*r.config);
  return *config_;
}

std::string Context::database_path() { return db_path.empty() ? config().daemon.database : db_path; }

store::Store& Context::store() {
  if (store_) return *store_;
  // A bad config must stop us before anything is created or written.
  if (!config_path.empty()) config();
  std::string path = database_path();
  store_ = must(store::Store::open({path}));
  return *store_;
}

void print_error(const Status& s) {
  std::cerr << "pushgate: error: " << s.message() << "\n";
  if (!s.hint().empty()) std::cerr << "  hint: " << s.hint() << "\n";
}

void fail(const Status& s, int code) {
  print_error(s);
  throw ExitError{code};
}

void fail_unknown(const std::string& what, const std::string& name, const std::vector<std::string>& known,
                  const std::string& see) {
  std::string hint = config::did_you_mean(name, known);
  fail(Status::invalid_argument("unknown " + what + " \"" + name + "\"", hint.empty() ? see : hint), kUsage);
}

std::map<std::string, std::string> parse_overrides(const std::vector<std::string>& revs) {
  std::map<std::string, std::string> out;
  for (const std::string& r : revs) {
    auto eq = r.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == r.size()) {
      fail(Status::invalid_argument("--rev \"" + r + "\": expected TREE=REV"), kUsage);
    }
    out[r.substr(0, eq)] = r.substr(eq + 1);
  }
  return out;
}

int code_of(const Status& s) { return s.code() == StatusCode::invalid_argument ? kUsage : kFailure; }

void print_json(const nlohmann::json& j) { std::cout << api::with_utc_times(j).dump(2) << "\n"; }

std::string human_time(std::int64_t when) {
  std::string iso = api::iso_utc(when);
  return iso.substr(0, 10) + " " + iso.substr(11, 5) + " UTC (" + age(when) + ")";
}

std::string age(std::int64_t when) {
  std::int64_t d = store::now() - when;
  if (d < 0) d = 0;
  if (d < 120) return std::to_string(d) + "s ago";
  if (d < 7200) return std::to_string(d / 60) + "m ago";
  if (d < 172800) return std::to_string(d / 3600) + "h ago";
  return std::to_string(d / 86400) + "d ago";
}

namespace {

/// An unknown subcommand in argv: walk the known ones from the top, skipping
/// options and their values; the first word that is not a subcommand of a
/// command that has subcommands (and no positional arguments of its own)
/// is the mistake. False when there is none.
bool unknown_subcommand(CLI::App& app, int argc, char** argv) {
  CLI::App* cur = &app;
  std::string path = "pushgate";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") return false;
    if (arg.size() > 1 && arg[0] == '-') {
      if (arg.find('=') != std::string::npos) continue;
      const CLI::Option* o = cur->get_option_no_throw(arg);
      if (o && o->get_items_expected_min() > 0) ++i;  // its value
      continue;
    }
    auto subs = cur->get_subcommands([](CLI::App*) { return true; });
    if (subs.empty()) return false;
    std::vector<std::string> names;
    for (CLI::App* s : subs) {
      if (s->check_name(arg)) {
        cur = s;
        path += " " + s->get_name();
        names.clear();
        break;
      }
      names.push_back(s->get_name());
    }
    if (names.empty()) continue;  // descended
    if (!cur->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) return false;
    std::string hint = config::did_you_mean(arg, names);
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
    print_error(Status::invalid_argument("unknown command \"" + arg + "\" for " + path,
                                         hint.empty() ? "one of: " + all + " (see " + path + " --help)" : hint));
    return true;
  }
  return false;
}

}  // namespace

int run(int argc, char** argv) {
  Context ctx;
  // --config, else $PUSHGATE_CONFIG, else the installed configuration.
  if (const char* env = std::getenv("PUSHGATE_CONFIG")) ctx.config_path = env;
  else if (std::error_code ec; std::filesystem::exists(PUSHGATE_DEFAULT_CONFIG, ec)) ctx.config_path = PUSHGATE_DEFAULT_CONFIG;
  if (const char* u = std::getenv("SUDO_USER")) ctx.who = u;
  else if (const char* u2 = std::getenv("USER")) ctx.who = u2;
  else ctx.who = "unknown";

  CLI::App app{"pushgate: push-gate CI for projects made of several git trees.\n"
               "Resolves revisions, runs flights of jobs on test hosts, records results,\n"
               "and fast-forwards a branch's tested ref only when nothing regressed."};
  app.set_version_flag("--version", std::string("pushgate ") + PUSHGATE_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  app.option_defaults()->always_capture_default();
  app.add_option("-c,--config", ctx.config_path,
                 "configuration file (default: $PUSHGATE_CONFIG, else " PUSHGATE_DEFAULT_CONFIG " when it exists)");
  app.add_option("--db", ctx.db_path, "SQLite database (default: daemon.database of the config)");
  app.add_option("--as", ctx.who, "name recorded in audit records (default: $SUDO_USER or $USER)");

  add_config_commands(app, ctx);
  add_revision_commands(app, ctx);
  add_flight_commands(app, ctx);
  add_branch_commands(app, ctx);
  add_history_commands(app, ctx);
  add_daemon_command(app, ctx);
  add_gc_command(app, ctx);
  add_bisect_commands(app, ctx);
  add_abi_commands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // `pushgate flight lst`: say which commands there are, not only that
    // "lst" was not expected.
    if (e.get_exit_code() != 0 && unknown_subcommand(app, argc, argv)) return kUsage;
    int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  } catch (const ExitError& e) {
    return e.code;
  } catch (const std::exception& e) {
    print_error(Status::internal(e.what()));
    return kFailure;
  }
  return kOk;
}

}  // namespace pushgate::cli
