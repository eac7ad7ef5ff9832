// What steps receive, for a Xen-like matrix (issue 16 item 5): a tree with
// `-` in its name, a test job with several builds, a two-host job whose
// `run` steps choose their role, and a tag as a branch's source ref.
// Real child processes, a real SQLite file, real libgit2 repositories.

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <sstream>

#include <pushgate/flight.hpp>

#include "support.hpp"

namespace pushgate::flight {
namespace {

using test::TempDir;

/// NAME=VALUE lines of a file written by `env`.
std::map<std::string, std::string> read_env(const std::filesystem::path& p) {
  std::map<std::string, std::string> out;
  std::istringstream in(test::read_file(p));
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

class StepEnvTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::optional<config::Config> cfg;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<hosts::Registry> reg;
  std::string xen_head, qemu_tag, qemu_master;

  void SetUp() override {
    test::GitRepoBuilder xen(dir.str("up/xen.git"));
    xen.set_branch("master", xen.commit_on("master", "xen"));
    xen.set_branch("staging", xen.commit_on("master", "xen 2"));
    xen_head = xen.head_of("staging");
    test::GitRepoBuilder qemu(dir.str("up/qemu-xen.git"));
    qemu_tag = qemu.commit_on("master", "qemu 4.18.0");
    qemu.annotated_tag("qemu-xen-4.18.0", qemu_tag);
    qemu_master = qemu.commit_on("master", "qemu after the release");
  }

  /// `ref` is the qemu-xen source of the branch; `extra` more of the document.
  config::LoadResult config_with(const std::string& ref, const std::string& recipes, const std::string& jobs) {
    test::write_file(dir.path() / "c.json", R"({"daemon": {"state_dir": "state", "starve_after_seconds": 5},
      "trees": [{"name": "xen", "upstream": "up/xen.git"}, {"name": "qemu-xen", "upstream": "up/qemu-xen.git"}],
      "branches": [{"name": "xen-unstable", "tree": "xen", "input": "staging", "tested": "master",
                    "sources": {"qemu-xen": {"ref": ")" + ref + R"("}}}],
      "recipes": )" + recipes + R"(, "jobs": )" + jobs + R"(,
      "hosts": [{"name": "h0", "kind": "local", "flags": ["x86"]}, {"name": "h1", "kind": "local", "flags": ["x86"]}]})");
    return config::load(dir.str("c.json"));
  }

  void load(const std::string& ref, const std::string& recipes, const std::string& jobs) {
    auto r = config_with(ref, recipes, jobs);
    ASSERT_TRUE(r.config.has_value()) << r.errors[0].to_string();
    cfg = std::move(r.config);
    std::filesystem::create_directories(cfg->daemon.state_dir);
    store = store::Store::open({cfg->daemon.database}).value();
    std::vector<store::Host> hs;
    for (const auto& h : cfg->hosts) hs.push_back({h.name, h.kind, "enabled", "", 0, {}, "", h.flags});
    ASSERT_TRUE(store->sync_hosts(hs).has_value());
    reg = hosts::Registry::create(*cfg).value();
  }

  Result<revisions::Resolution> resolve() {
    revisions::Mirrors m(*cfg);
    for (const char* t : {"xen", "qemu-xen"}) {
      if (auto f = m.fetch(t); !f) return f.error();
    }
    return revisions::resolve(*cfg, m, nullptr, "xen-unstable");
  }

  std::map<std::string, std::string> run_flight() {
    auto res = resolve();
    EXPECT_TRUE(res.has_value()) << (res ? "" : res.error().to_string());
    FlightId id = create(*cfg, *store, *res, {}).value();
    RunOptions o;
    o.poll_ms = 20;
    auto jobs = run(*cfg, *store, *reg, id, o);
    EXPECT_TRUE(jobs.has_value()) << (jobs ? "" : jobs.error().to_string());
    std::map<std::string, std::string> out;
    if (jobs) {
      for (auto& j : *jobs) out[j.job] = j.status + (j.status_reason.empty() ? "" : " (" + j.status_reason + ")");
    }
    return out;
  }

  const char* recipes() const {
    return R"({"build": {"steps": [{"testid": "build", "run": "echo $PUSHGATE_JOB > $PUSHGATE_WORKDIR/built-by"}]},
      "pair": {"steps": [
        {"testid": "src-env", "role": "src_host", "run": "env > $PUSHGATE_WORKDIR/env-src"},
        {"testid": "dst-env", "role": "dst_host", "run": "env > $PUSHGATE_WORKDIR/env-dst"},
        {"testid": "ctl-env", "role": "controller", "run": "env > $PUSHGATE_WORKDIR/env-ctl"},
        {"testid": "builds", "role": "dst_host",
         "run": "test \"$(cat $PUSHGATE_BUILD_DIR_BUILD_XEN/built-by)\" = build-xen && test \"$(cat $PUSHGATE_BUILD_DIR_BUILD_QEMU_XEN/built-by)\" = build-qemu-xen"}]}})";
  }
  const char* jobs() const {
    return R"([{"name": "build-xen", "recipe": "build", "hosts": {"host": ["x86"]}},
      {"name": "build-qemu-xen", "recipe": "build", "hosts": {"host": ["x86"]}},
      {"name": "test-pair", "recipe": "pair", "depends": ["build-xen", "build-qemu-xen"],
       "hosts": {"src_host": ["x86"], "dst_host": ["x86"]}, "runvars": {"guest-os": "debian"}}])";
  }
};

TEST_F(StepEnvTest, Issue16_XenMatrixStepsGetTheirVariablesBuildsAndHosts) {
  load("qemu-xen-4.18.0", recipes(), jobs());
  auto jobs1 = run_flight();
  ASSERT_EQ(jobs1["test-pair"], "pass") << jobs1["test-pair"];
  auto flights = store->list_flights({}).value();
  ASSERT_FALSE(flights.empty());
  FlightId f1 = flights.front().id;
  std::string work = cfg->daemon.state_dir + "/work/" + f1.str() + "/test-pair";
  // The work directory of attempt 1 (work_dir adds nothing for attempt 1).
  auto src = read_env(work + "/env-src"), dst = read_env(work + "/env-dst"), ctl = read_env(work + "/env-ctl");

  // Runvars named with `-` reach the step under `_`: the tree qemu-xen's
  // revision (from the tag, by its short name) and the job's own runvar.
  EXPECT_EQ(src["PUSHGATE_RV_revision_qemu_xen"], qemu_tag);
  EXPECT_EQ(src["PUSHGATE_RV_revision_xen"], xen_head);
  EXPECT_EQ(src["PUSHGATE_RV_guest_os"], "debian");
  EXPECT_TRUE(src.count("PUSHGATE_MIRROR_QEMU_XEN"));

  // run steps on the role they chose; the controller when they chose it.
  EXPECT_EQ(src["PUSHGATE_HOST"], src["PUSHGATE_SRC_HOST"]);
  EXPECT_EQ(dst["PUSHGATE_HOST"], dst["PUSHGATE_DST_HOST"]);
  EXPECT_NE(src["PUSHGATE_SRC_HOST"], src["PUSHGATE_DST_HOST"]);
  EXPECT_TRUE(src["PUSHGATE_HOST"] == "h0" || src["PUSHGATE_HOST"] == "h1") << src["PUSHGATE_HOST"];
  EXPECT_EQ(ctl["PUSHGATE_HOST"], "controller");

  // Every build by name, and the first as PUSHGATE_BUILD_DIR.
  EXPECT_TRUE(std::filesystem::is_directory(src["PUSHGATE_BUILD_DIR_BUILD_XEN"]));
  EXPECT_TRUE(std::filesystem::is_directory(src["PUSHGATE_BUILD_DIR_BUILD_QEMU_XEN"]));
  EXPECT_NE(src["PUSHGATE_BUILD_DIR_BUILD_XEN"], src["PUSHGATE_BUILD_DIR_BUILD_QEMU_XEN"]);
  EXPECT_EQ(src["PUSHGATE_BUILD_DIR"], src["PUSHGATE_BUILD_DIR_BUILD_XEN"]);

  // The next flight reuses both builds: the test job still gets each one's
  // directory, the directories flight 1 built.
  auto jobs2 = run_flight();
  EXPECT_EQ(jobs2["build-xen"], "pass (reused build of flight " + f1.str() + ")");
  EXPECT_EQ(jobs2["test-pair"], "pass") << jobs2["test-pair"];
  FlightId f2 = store->list_flights({}).value().front().id;
  ASSERT_NE(f2, f1);
  auto src2 = read_env(cfg->daemon.state_dir + "/work/" + f2.str() + "/test-pair/env-src");
  EXPECT_EQ(src2["PUSHGATE_BUILD_DIR_BUILD_XEN"], src["PUSHGATE_BUILD_DIR_BUILD_XEN"]);
  EXPECT_EQ(src2["PUSHGATE_BUILD_DIR_BUILD_QEMU_XEN"], src["PUSHGATE_BUILD_DIR_BUILD_QEMU_XEN"]);
}

TEST_F(StepEnvTest, Issue16_SourceRefsTakeBranchesTagsAndFullNames) {
  const char* none = R"({"r": {"steps": [{"testid": "t", "run": "true"}]}})";
  const char* one = R"([{"name": "j", "recipe": "r"}])";
  struct Case {
    std::string ref, want;
  };
  for (const Case& c : std::vector<Case>{{"qemu-xen-4.18.0", "tag"},
                                         {"tags/qemu-xen-4.18.0", "tag"},
                                         {"refs/tags/qemu-xen-4.18.0", "tag"},
                                         {"master", "master"},
                                         {"refs/heads/master", "master"}}) {
    load(c.ref, none, one);
    auto res = resolve();
    ASSERT_TRUE(res.has_value()) << c.ref << ": " << res.error().to_string();
    for (const auto& t : res->trees) {
      if (t.tree == "qemu-xen") {
        EXPECT_EQ(t.revision, c.want == "tag" ? qemu_tag : qemu_master) << c.ref;
      }
    }
  }
  // A name that is both a branch and a tag, at different commits: refused,
  // with the two full names to choose from.
  test::GitRepoBuilder qemu(dir.str("up/qemu-xen.git"));
  qemu.set_branch("qemu-xen-4.18.0", qemu_master);
  load("qemu-xen-4.18.0", none, one);
  auto res = resolve();
  ASSERT_FALSE(res.has_value());
  EXPECT_NE(res.error().to_string().find("both a branch and a tag"), std::string::npos) << res.error().to_string();
  EXPECT_NE(res.error().to_string().find("refs/tags/qemu-xen-4.18.0"), std::string::npos);
}

TEST_F(StepEnvTest, Issue16_ConfigCheckRefusesStepsWithNoHostAndNamesThatCollide) {
  auto errors_of = [&](const std::string& recipes, const std::string& jobs) {
    auto r = config_with("master", recipes, jobs);
    std::string all;
    for (const auto& e : r.errors) all += e.to_string() + "\n";
    return all;
  };
  const char* run = R"({"r": {"steps": [{"testid": "t", "run": "true"}]}})";
  // A two-host job with no role named host: a step must choose.
  EXPECT_NE(errors_of(run, R"([{"name": "j", "recipe": "r", "hosts": {"src_host": ["x86"], "dst_host": ["x86"]}}])")
                .find("names no role"),
            std::string::npos);
  // A role the job does not have.
  EXPECT_NE(errors_of(R"({"r": {"steps": [{"testid": "t", "role": "src_hots", "run": "true"}]}})",
                      R"([{"name": "j", "recipe": "r", "hosts": {"src_host": ["x86"]}}])")
                .find("does not declare"),
            std::string::npos);
  // One role, not named host: the step runs there, no error.
  EXPECT_EQ(errors_of(run, R"([{"name": "j", "recipe": "r", "hosts": {"src_host": ["x86"]}}])"), "");
  // A job's own runvars that become one variable.
  EXPECT_NE(errors_of(run, R"([{"name": "j", "recipe": "r", "runvars": {"guest-os": "a", "guest_os": "b"}}])")
                .find("PUSHGATE_RV_guest_os"),
            std::string::npos);
  // Job names that become one PUSHGATE_BUILD_DIR_ variable.
  EXPECT_NE(errors_of(run, R"([{"name": "build-x", "recipe": "r"}, {"name": "build_x", "recipe": "r"}])")
                .find("PUSHGATE_BUILD_DIR_BUILD_X"),
            std::string::npos);
  // "controller" is the controller, never a host role.
  EXPECT_NE(errors_of(run, R"([{"name": "j", "recipe": "r", "hosts": {"controller": ["x86"]}}])").find("not a host role"),
            std::string::npos);
}

}  // namespace
}  // namespace pushgate::flight
