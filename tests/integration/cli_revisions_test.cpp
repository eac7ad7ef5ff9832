// `pushgate revisions` and `pushgate frozen` as child processes: output,
// --json, exit codes on bad input, nothing changed on refusal.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support.hpp"

namespace pushgate {
namespace {

using test::GitRepoBuilder;
using test::TempDir;

class CliRevisions : public ::testing::Test {
 protected:
  TempDir dir;
  std::string lv_old, lv_frozen, lv_new, xen_master;

  void SetUp() override {
    GitRepoBuilder xen(dir.str("up/xen.git"));
    xen_master = xen.commit_on("master", "xen: import");
    xen.annotated_tag("RELEASE-4.7.0", xen_master);
    xen.set_branch("stable-4.7", xen_master);
    xen.set_branch("staging-4.7", xen_master);
    xen.commit_on("staging-4.7", "xen: backport");
    GitRepoBuilder lv(dir.str("up/libvirt.git"));
    lv_old = lv.commit_on("master", "libvirt: import");
    lv.annotated_tag("v1.3.0", lv_old);
    lv_frozen = lv.commit_on("master", "libvirt: fixes");
    lv.set_branch("osstest/frozen/xen-4.7-testing", lv_frozen);
    lv_new = lv.commit_on("master", "libvirt: more");
    test::write_file(dir.path() / "c.json", R"({
      "daemon": {"state_dir": "state"},
      "trees": [{"name": "xen", "upstream": "up/xen.git"}, {"name": "libvirt", "upstream": "up/libvirt.git"}],
      "branches": [{"name": "xen-4.7-testing", "tree": "xen", "input": "staging-4.7", "tested": "stable-4.7",
                    "sources": {"libvirt": {"ref": "master"}}}]})");
    std::filesystem::create_directories(dir.path() / "state");
  }

  test::RunResult pg(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", dir.str("c.json"), "--as", "rm"});
    return test::pushgate(args);
  }
};

TEST_F(CliRevisions, ShowsSourcesAndDescribe) {
  auto r = pg({"revisions", "xen-4.7-testing"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("frozen"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("v1.3.0-1-g"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("fetched"), std::string::npos) << "progress lines expected: " << r.err;
  auto j = pg({"revisions", "xen-4.7-testing", "--json", "--no-fetch", "--rev", "libvirt=v1.3.0"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["trees"][1]["tree"], "libvirt");
  EXPECT_EQ(doc["trees"][1]["revision"], lv_old);
  EXPECT_EQ(doc["trees"][1]["source"], "override");
  EXPECT_EQ(doc["baseline_flight"], true);
}

TEST_F(CliRevisions, BadInputExitCodes) {
  EXPECT_EQ(pg({"revisions", "xen-4.7-testin"}).exit_code, 2);
  EXPECT_EQ(pg({"revisions", "xen-4.7-testing", "--rev", "libvirt"}).exit_code, 2);
  EXPECT_EQ(pg({"revisions", "xen-4.7-testing", "--rev", "libvirt=nope"}).exit_code, 2);
  EXPECT_EQ(pg({"frozen", "add", "libvirt", "xen-4.7-testing"}).exit_code, 2);  // no --rev
  EXPECT_EQ(pg({"frozen", "move", "libvirt"}).exit_code, 2);                   // missing branch
  // Upstream gone: the fetch fails with exit 1 and says so.
  std::filesystem::rename(dir.path() / "up/libvirt.git", dir.path() / "up/gone.git");
  auto gone = pg({"revisions", "xen-4.7-testing"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("fetch"), std::string::npos) << gone.err;
}

TEST_F(CliRevisions, FrozenLifecycle) {
  auto back = pg({"frozen", "move", "libvirt", "xen-4.7-testing", "--rev", "v1.3.0"});
  EXPECT_EQ(back.exit_code, 1);
  EXPECT_NE(back.err.find("not a fast-forward"), std::string::npos) << back.err;
  EXPECT_NE(back.err.find("--force"), std::string::npos);
  auto mv = pg({"frozen", "move", "libvirt", "xen-4.7-testing", "--rev", "master", "--reason", "4.7.1 prep"});
  ASSERT_EQ(mv.exit_code, 0) << mv.err;
  EXPECT_NE(mv.out.find("v1.3.0-2-g"), std::string::npos) << mv.out;
  auto list = pg({"frozen", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto doc = nlohmann::json::parse(list.out);
  ASSERT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc[0]["revision"], lv_new);
  auto hist = pg({"frozen", "list", "--history", "--json"});
  auto h = nlohmann::json::parse(hist.out);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0]["who"], "rm");
  EXPECT_EQ(h[0]["reason"], "4.7.1 prep");
  EXPECT_EQ(h[0]["old"], lv_frozen);
  auto rm = pg({"frozen", "remove", "libvirt", "xen-4.7-testing"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  auto none = pg({"frozen", "list"});
  EXPECT_NE(none.out.find("no frozen refs"), std::string::npos);
  auto from = pg({"frozen", "add", "libvirt", "xen-4.7-testing", "--from-last-tolerable"});
  EXPECT_EQ(from.exit_code, 1);
  EXPECT_NE(from.err.find("no tolerable real flight"), std::string::npos) << from.err;
}

TEST_F(CliRevisions, HelpOnEveryCommand) {
  for (std::vector<std::string> cmd : std::vector<std::vector<std::string>>{
           {"revisions"}, {"frozen"}, {"frozen", "add"}, {"frozen", "move"}, {"frozen", "remove"}, {"frozen", "list"}}) {
    cmd.push_back("--help");
    auto r = test::pushgate(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd[0];
    EXPECT_NE(r.out.find("Usage:"), std::string::npos);
  }
}

}  // namespace
}  // namespace pushgate
