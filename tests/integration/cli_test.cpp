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

TEST(Cli, ConfigCheckValidExample) {
  auto r = pushgate({"--config", example(), "config", "check"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("valid"), std::string::npos);
  EXPECT_NE(r.out.find("xen-4.7-testing"), std::string::npos);
  auto j = pushgate({"config", "check", "--json", "--config", example()});
  ASSERT_EQ(j.exit_code, 0);
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_TRUE(doc["valid"].get<bool>());
  EXPECT_EQ(doc["summary"]["trees"], 3);
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
