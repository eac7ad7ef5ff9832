// Issue 10 (verdict fidelity) through real flights: `pushgate flight run` as
// a child process on repositories the test makes, local hosts, a real SQLite
// file. A moved dependency never hides a regression, starved jobs do not
// block a push, and a finished flight's verdict never changes after the fact.

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "support.hpp"

namespace pushgate {
namespace {

using test::TempDir;

class VerdictFlights : public ::testing::Test {
 protected:
  TempDir dir;
  std::unique_ptr<test::GitRepoBuilder> xen, qemu;
  nlohmann::json cfg;
  std::string heal;

  void SetUp() override {
    xen = std::make_unique<test::GitRepoBuilder>(dir.str("up/xen.git"));
    qemu = std::make_unique<test::GitRepoBuilder>(dir.str("up/qemu.git"));
    xen->set_branch("staging", xen->commit_on("master", "xen: import", {{"CHANGES", "import\n"}}));
    qemu->commit_on("master", "qemu: import");
    heal = dir.str("healed");
    // guest-start fails when the xen revision under test has a file BREAK,
    // unless the test has "healed" it (a flaky failure).
    std::string fails = "git --git-dir=\"$PUSHGATE_MIRROR_XEN\" cat-file -e \"$PUSHGATE_RV_revision_xen:BREAK\" 2>/dev/null";
    cfg = {
        {"daemon", {{"state_dir", "state"}, {"retest_regressions", false}, {"starve_after_seconds", 1}}},
        {"trees", {{{"name", "xen"}, {"upstream", "up/xen.git"}}, {{"name", "qemu"}, {"upstream", "up/qemu.git"}}}},
        {"branches",
         {{{"name", "xen-unstable"}, {"tree", "xen"}, {"input", "staging"}, {"tested", "master"},
           {"sources", {{"qemu", {{"ref", "master"}}}}}}}},
        {"recipes",
         {{"build", {{"steps", {{{"testid", "build"}, {"run", "true"}}}}}},
          {"test",
           {{"steps",
             {{{"testid", "guest-start"}, {"run", "if " + fails + " && [ ! -e " + heal + " ]; then exit 1; fi"}},
              {{"testid", "migrate-support-check"}, {"run", "false"}, {"non_fatal", true}}}}}}}},
        {"jobs",
         {{{"name", "build-amd64"}, {"kind", "build"}, {"recipe", "build"}, {"hosts", {{"host", {"x86"}}}}},
          {{"name", "test-amd64-amd64-xl"}, {"recipe", "test"}, {"depends", {"build-amd64"}},
           {"hosts", {{"host", {"x86"}}}}}}},
        {"hosts", {{{"name", "h0"}, {"kind", "local"}, {"flags", {"x86"}}}}}};
    write_config();
    std::filesystem::create_directories(dir.path() / "state");
  }

  void write_config() { test::write_file(dir.path() / "c.json", cfg.dump(2)); }

  test::RunResult pg(std::vector<std::string> a) {
    a.insert(a.begin(), {"--config", dir.str("c.json")});
    return test::pushgate(a);
  }

  /// `flight run`; returns the exit code and the verdict JSON.
  int run(nlohmann::json& verdict, bool always = false) {
    std::vector<std::string> a{"flight", "run", "xen-unstable", "--json"};
    if (always) a.push_back("--always");
    auto r = pg(a);
    EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 3) << r.out << r.err;
    verdict = nlohmann::json::parse(r.out)["verdict"];
    return r.exit_code;
  }

  static nlohmann::json item(const nlohmann::json& verdict, const std::string& job, const std::string& testid) {
    for (const auto& s : verdict["steps"]) {
      if (s["job"] == job && s["testid"] == testid) return s;
    }
    return nullptr;
  }

  /// Flight 1 (baseline, passes), then flight 2 of a commit that breaks guest-start.
  void baseline_then_regression() {
    nlohmann::json v;
    ASSERT_EQ(run(v, true), 0) << v.dump(2);
    EXPECT_EQ(v["subject"], "[xen-unstable baseline test] 1: tolerable all pass") << "a baseline flight says so";
    EXPECT_EQ(item(v, "test-amd64-amd64-xl", "migrate-support-check")["summary"], "never pass");
    xen->commit_on("staging", "xen: break guest-start", {{"BREAK", "1\n"}});
    ASSERT_EQ(run(v), 3);
    EXPECT_EQ(item(v, "test-amd64-amd64-xl", "guest-start")["summary"], "REGR. vs. 1");
  }
};

TEST_F(VerdictFlights, DependencyMovedIsStillARegression) {
  baseline_then_regression();
  std::string tested = xen->head_of("master");
  // qemu's ref moves (daily, in a Xen lab): flight 3 tests the same xen with another qemu.
  qemu->commit_on("master", "qemu: next");
  nlohmann::json v;
  EXPECT_EQ(run(v), 3) << v.dump(2);
  EXPECT_EQ(v["outcome"], "regressions");
  EXPECT_EQ(item(v, "test-amd64-amd64-xl", "guest-start")["summary"], "REGR. vs. 1");
  EXPECT_FALSE(v["pushed"].get<bool>());
  EXPECT_EQ(xen->head_of("master"), tested) << "a regression was pushed";
}

TEST_F(VerdictFlights, StarvedJobsDoNotBlockThePush) {
  nlohmann::json v;
  ASSERT_EQ(run(v, true), 0);
  // An arm64 build and test whose only host is disabled for maintenance: they starve.
  cfg["hosts"].push_back({{"name", "arm0"}, {"kind", "local"}, {"flags", {"arm64"}}});
  cfg["jobs"].push_back({{"name", "build-arm64"}, {"kind", "build"}, {"recipe", "build"}, {"hosts", {{"host", {"arm64"}}}}});
  cfg["jobs"].push_back({{"name", "test-arm64-arm64-xl"}, {"recipe", "test"}, {"depends", {"build-arm64"}},
                         {"hosts", {{"host", {"arm64"}}}}});
  write_config();
  auto d = pg({"host", "disable", "arm0", "--reason", "maintenance"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  std::string good = xen->commit_on("staging", "xen: good", {{"CHANGES", "good\n"}});
  EXPECT_EQ(run(v), 0) << v.dump(2);
  EXPECT_EQ(item(v, "build-arm64", "hosts-allocate")["status"], "starved");
  EXPECT_EQ(item(v, "build-arm64", "hosts-allocate")["summary"], "n/a");
  EXPECT_EQ(item(v, "test-arm64-arm64-xl", "build-check")["status"], "starved");
  EXPECT_EQ(item(v, "test-arm64-arm64-xl", "build-check")["category"], "not blocking");
  EXPECT_EQ(v["subject"], "[xen-unstable test] 2: tolerable trouble: pass/starved - PUSHED");
  EXPECT_EQ(xen->head_of("master"), good);
}

TEST_F(VerdictFlights, VerdictIsFrozenOnceGiven) {
  baseline_then_regression();
  auto before_text = pg({"flight", "report", "2"});
  auto before_json = pg({"flight", "report", "2", "--format", "json"});
  ASSERT_EQ(before_text.exit_code, 0) << before_text.err;
  EXPECT_NE(before_text.out.find("\nRegressions :-(\n"), std::string::npos) << before_text.out;
  EXPECT_NE(before_text.out.find("Last test of basis   1       "), std::string::npos) << before_text.out;
  EXPECT_NE(before_text.out.find("   0 days"), std::string::npos) << before_text.out;
  // The evidence changes after the fact: the same revision passes in a later
  // flight (flight 3, pushed), and the allow list now names the step.
  test::write_file(heal, "");
  nlohmann::json v;
  EXPECT_EQ(run(v, true), 0) << v.dump(2);
  cfg["branches"][0]["allow"] = {"test-amd64-amd64-xl guest-start"};
  write_config();
  auto after_json = pg({"flight", "report", "2", "--format", "json"});
  auto j = nlohmann::json::parse(after_json.out);
  EXPECT_EQ(j["outcome"], "regressions");
  EXPECT_EQ(item(j, "test-amd64-amd64-xl", "guest-start")["summary"], "REGR. vs. 1");
  EXPECT_EQ(j["steps"], nlohmann::json::parse(before_json.out)["steps"]);
  EXPECT_EQ(pg({"flight", "report", "2"}).out, before_text.out);
  // Only an audited rejudge changes it, and both verdicts are kept.
  EXPECT_EQ(pg({"flight", "rejudge", "2"}).exit_code, 2) << "--reason is required";
  auto rj = pg({"flight", "rejudge", "2", "--reason", "guest-start allowed after review", "--json"});
  ASSERT_EQ(rj.exit_code, 0) << rj.err;
  auto rjj = nlohmann::json::parse(rj.out);
  EXPECT_EQ(rjj["before"], "regressions");
  EXPECT_EQ(rjj["after"], "tolerable");
  auto now = nlohmann::json::parse(pg({"flight", "report", "2", "--format", "json"}).out);
  EXPECT_EQ(now["outcome"], "tolerable");
  EXPECT_EQ(item(now, "test-amd64-amd64-xl", "guest-start")["category"], "allowable");
  ASSERT_EQ(now["earlier_verdicts"].size(), 2u) << now.dump(2);
  EXPECT_NE(now["earlier_verdicts"][1].get<std::string>().find("guest-start allowed after review"), std::string::npos);
  EXPECT_EQ(xen->head_of("master"), xen->head_of("staging")) << "flight 3 pushed; the rejudge pushed nothing else";
}

TEST_F(VerdictFlights, RunningFlightShowsProgressNotAVerdict) {
  auto c = pg({"flight", "create", "xen-unstable", "--always"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto text = pg({"flight", "report", "1"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("[xen-unstable test] 1: running 0/2"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("In progress: 0 of 2 jobs done, 0 running, 2 queued."), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("Regressions"), std::string::npos);
  EXPECT_EQ(text.out.find("Perfect"), std::string::npos);
  auto j = nlohmann::json::parse(pg({"flight", "report", "1", "--format", "json"}).out);
  EXPECT_FALSE(j["judged"].get<bool>());
  EXPECT_TRUE(j["outcome"].is_null());
  auto html = pg({"flight", "report", "1", "--format", "html"}).out;
  EXPECT_EQ(html.find("Outcome:"), std::string::npos);
  EXPECT_NE(html.find("id=\"progress\""), std::string::npos);
}

}  // namespace
}  // namespace pushgate
