// The pushgate binary as a child process: help, exit codes, config check,
// and that nothing is written to the database on a config error.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace pushgate {
namespace {

namespace fs = std::filesystem;
using test::pushgate;
using test::TempDir;

std::string example() { return (test::source_dir() / "config/example/pushgate.json").string(); }

TEST(Cli, HelpOnEveryCommand) {
  for (std::vector<std::string> cmd : std::vector<std::vector<std::string>>{
           {}, {"config"}, {"config", "check"}, {"config", "schema"}, {"db"}, {"db", "status"}}) {
    cmd.push_back("--help");
    auto r = pushgate(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd[0];
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << r.out;
  }
}

TEST(Cli, VersionAndUsageErrors) {
  auto v = pushgate({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("pushgate "), std::string::npos);
  EXPECT_EQ(pushgate({}).exit_code, 2);
  EXPECT_EQ(pushgate({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(pushgate({"config", "check", "--bogus"}).exit_code, 2);
}

// Issue 16 item 3: an unknown subcommand says which there are, with a
// suggestion when one is close; options and their values are skipped.
TEST(Cli, Issue16_UnknownSubcommandsGetDidYouMean) {
  auto r = pushgate({"flight", "lst"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown command \"lst\" for pushgate flight"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("did you mean \"list\"?"), std::string::npos) << r.err;
  r = pushgate({"--config", example(), "--as", "rm", "histroy", "job"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("did you mean \"history\"?"), std::string::npos) << r.err;
  r = pushgate({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("one of: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bisect"), std::string::npos) << r.err;
  // A positional argument is not a subcommand.
  r = pushgate({"--config", example(), "revisions", "no-such-branch", "--no-fetch"});
  EXPECT_EQ(r.err.find("unknown command"), std::string::npos) << r.err;
}

TEST(Cli, ConfigCheckValidExample) {
  // A copy: the example's API token file (made by scripts/example-repos.sh)
  // is written beside it, never into the checkout.
  TempDir root;
  std::filesystem::create_directories(root.path() / "config");
  std::filesystem::copy(test::source_dir() / "config" / "example", root.path() / "config" / "example",
                        std::filesystem::copy_options::recursive);
  std::string copy = root.str("config/example/pushgate.json");
  // Issue 12 item 9: without its token file the daemon would refuse to start; so does config check.
  auto no_token = pushgate({"--config", copy, "config", "check"});
  EXPECT_EQ(no_token.exit_code, 2);
  EXPECT_NE(no_token.err.find("/daemon/api_token_file: cannot read the API token file"), std::string::npos)
      << no_token.err;
  std::filesystem::create_directories(root.path() / "var/example");
  test::write_file(root.path() / "var/example/api-token", "0123456789abcdef0123\n");
  auto r = pushgate({"--config", copy, "config", "check"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("valid"), std::string::npos);
  EXPECT_NE(r.out.find("xen-4.7-testing"), std::string::npos);
  auto j = pushgate({"config", "check", "--json", "--config", copy});
  ASSERT_EQ(j.exit_code, 0);
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_TRUE(doc["valid"].get<bool>());
  EXPECT_EQ(doc["summary"]["trees"], 3);
}

// Issue 12 item 9: each check the daemon makes at start, `config check`
// makes too, with the pointer; and the daemon refuses the same config.
TEST(Cli, Issue12_ConfigCheckRefusesWhatTheDaemonRefuses) {
  struct Case {
    const char* name;
    std::string daemon, branch_schedule, pointer, message;
    std::string token;  // written to the token file when set
  };
  std::vector<Case> cases{
      {"bad_cron", "", R"(, "schedule": {"cron": "61 * * * *"})", "/branches/0/schedule/cron", "cron", ""},
      {"bad_time_zone", R"("time_zone": "Mars/Olympus_Mons")", "", "/daemon/time_zone", "unknown time zone", ""},
      {"short_token", R"("api_token_file": "token")", "", "/daemon/api_token_file", "shorter than 16 characters", "abc"},
      {"missing_token", R"("api_token_file": "no-such-token")", "", "/daemon/api_token_file", "cannot read", ""},
  };
  for (const auto& c : cases) {
    TempDir dir;
    if (!c.token.empty()) test::write_file(dir.path() / "token", c.token + "\n");
    test::write_file(dir.path() / "c.json",
                     std::string(R"({"daemon": {"state_dir": "state")") + (c.daemon.empty() ? "" : ", " + c.daemon) +
                         R"(}, "trees": [{"name": "xen", "upstream": "/srv/xen.git"}],
                            "branches": [{"name": "b", "tree": "xen", "input": "staging", "tested": "master")" +
                         c.branch_schedule + "}]}");
    auto r = pushgate({"--config", dir.str("c.json"), "config", "check", "--json"});
    EXPECT_EQ(r.exit_code, 2) << c.name << "\n" << r.out << r.err;
    auto j = nlohmann::json::parse(r.out);
    bool found = false;
    for (const auto& e : j["errors"]) {
      found = found || (e["pointer"] == c.pointer && e["message"].get<std::string>().find(c.message) != std::string::npos);
    }
    EXPECT_TRUE(found) << c.name << ": " << j.dump(2);
    auto d = pushgate({"--config", dir.str("c.json"), "daemon", "--once"});
    EXPECT_NE(d.exit_code, 0) << c.name;
    EXPECT_NE(d.err.find(c.pointer), std::string::npos) << c.name << ": " << d.err;
  }
}

TEST(Cli, ConfigCheckListsEveryErrorAndExits2) {
  TempDir dir;
  test::write_file(dir.path() / "bad.json", R"({"trees": [{"name": "xen", "upstream": "/x", "bogus": 1}],
    "branches": [{"name": "b", "tree": "xen", "input": "s", "tested": 5}]})");
  auto r = pushgate({"--config", dir.str("bad.json"), "config", "check"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("/trees/0: unknown key \"bogus\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/branches/0/tested: wrong type"), std::string::npos) << r.err;
  auto j = pushgate({"--config", dir.str("bad.json"), "config", "check", "--json"});
  EXPECT_EQ(j.exit_code, 2);
  EXPECT_EQ(nlohmann::json::parse(j.out)["errors"].size(), 2u);
}

TEST(Cli, ConfigErrorWritesNoDatabase) {
  TempDir dir;
  test::write_file(dir.path() / "bad.json", R"({"trees": 1})");
  auto r = pushgate({"--config", dir.str("bad.json"), "--db", dir.str("p.db"), "db", "status"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("nothing was changed"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "p.db"));
}

TEST(Cli, DbStatusCreatesAndSyncsHosts) {
  TempDir dir;
  auto r = pushgate({"--config", example(), "--db", dir.str("p.db"), "db", "status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["hosts"], 3);
  EXPECT_EQ(doc["schema_version"], doc["latest_schema_version"]);
  EXPECT_TRUE(fs::exists(dir.path() / "p.db"));
}

TEST(Cli, MissingDatabaseDirectoryExits1) {
  auto r = pushgate({"--config", example(), "--db", "/nonexistent-dir/p.db", "db", "status"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("database directory /nonexistent-dir does not exist"), std::string::npos) << r.err;
}

TEST(Cli, ReadOnlyDatabaseDirectoryExits1) {
  if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs root and setpriv to drop to nobody";
  TempDir dir;
  fs::create_directory(dir.path() / "ro");
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(dir.path() / "ro", fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  auto r = test::run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", test::pushgate_binary(),
                      "--config", example(), "--db", dir.str("ro/p.db"), "db", "status"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot open database"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.path() / "ro/p.db"));
}

TEST(Cli, NewerDatabaseExits1) {
  TempDir dir;
  ASSERT_EQ(pushgate({"--config", example(), "--db", dir.str("p.db"), "db", "status"}).exit_code, 0);
  auto set = test::run({"sqlite3", dir.str("p.db"), "PRAGMA user_version = 999"});
  if (set.exit_code != 0) GTEST_SKIP() << "sqlite3 shell not installed";
  auto r = pushgate({"--config", example(), "--db", dir.str("p.db"), "db", "status"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("newer than this pushgate"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pushgate
