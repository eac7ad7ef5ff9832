// Bisection end to end (SPEC section 7, issue 14): real repositories made
// here, real flights on a local host through the pushgate binary, and a
// step that fails iff a chosen commit is an ancestor of the tested
// revision. Each test makes a baseline flight, a regressing flight (and its
// retest), then bisects and checks the commit it names.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include <pushgate/store.hpp>

#include "support.hpp"

namespace pushgate {
namespace {

using test::TempDir;
using json = nlohmann::json;
using namespace std::chrono_literals;

// The step: fails iff culprit-xen (culprit-qemu) names an ancestor of the
// tested xen (qemu) revision; `flaky` names a revision that fails from its
// second run on; `basis-breaks` a revision that fails from now on; with
// `abi`, it records alias/pc, changed from culprit-abi on. Every run is
// logged to runs.log.
constexpr const char* kBoot = R"SH(set -u
d=$PUSHGATE_CONFIG_DIR
x=${PUSHGATE_RV_revision_xen:-}
q=${PUSHGATE_RV_revision_qemu:-}
echo "$PUSHGATE_JOB $x $q" >> $d/runs.log
if [ -f $d/slow ]; then
  touch $d/active.$$; ls $d/active.* | wc -l >> $d/concurrency; sleep 0.5; rm -f $d/active.$$
fi
if [ -f $d/flaky ] && [ "$x" = "$(cat $d/flaky)" ]; then
  n=$(cat $d/flaky-count 2>/dev/null || echo 0); n=$((n+1)); echo $n > $d/flaky-count
  [ $n -ge 2 ] && exit 1
fi
if [ -f $d/basis-breaks ] && [ "$x" = "$(cat $d/basis-breaks)" ]; then exit 1; fi
if [ -f $d/abi ]; then
  m=pc-i440fx-7.2
  if [ -f $d/culprit-abi ] && git --git-dir=$PUSHGATE_MIRROR_XEN merge-base --is-ancestor $(cat $d/culprit-abi) $x; then m=pc-i440fx-8.0; fi
  mkdir -p $PUSHGATE_ARTIFACTS/alias && echo "{\"alias\": \"pc\", \"machine\": \"$m\"}" > $PUSHGATE_ARTIFACTS/alias/pc.json
fi
if [ -f $d/culprit-xen ] && git --git-dir=$PUSHGATE_MIRROR_XEN merge-base --is-ancestor $(cat $d/culprit-xen) $x; then exit 1; fi
if [ -f $d/culprit-qemu ] && git --git-dir=$PUSHGATE_MIRROR_QEMU merge-base --is-ancestor $(cat $d/culprit-qemu) $q; then exit 1; fi
exit 0
)SH";
// The build fails for the xen revisions listed in `unbuildable`.
constexpr const char* kBuild = R"SH(! grep -qx "${PUSHGATE_RV_revision_xen:-}" $PUSHGATE_CONFIG_DIR/unbuildable 2>/dev/null)SH";

class Bisect : public ::testing::Test {
 protected:
  TempDir dir;
  std::unique_ptr<test::GitRepoBuilder> xen, qemu;
  int port = 0;

  void SetUp() override {
    xen = std::make_unique<test::GitRepoBuilder>(dir.str("up/xen.git"));
    xen->commit_on("master", "xen: import", {{"CHANGES", "import\n"}});
    xen->set_branch("staging", xen->head_of("master"));
    test::write_file(dir.path() / "boot.sh", kBoot);
    configure(false);
  }

  void configure(bool with_qemu, bool two_tests = false, bool second_branch = false) {
    port = test::free_port();
    json trees = {{{"name", "xen"}, {"upstream", "up/xen.git"}}};
    json branch = {{"name", "xen-unstable"}, {"tree", "xen"}, {"input", "staging"}, {"tested", "master"},
                   {"schedule", {{"poll_seconds", 1}}}};
    if (with_qemu) {
      trees.push_back({{"name", "qemu"}, {"upstream", "up/qemu.git"}});
      branch["sources"] = {{"qemu", {{"ref", "master"}}}};
    }
    json jobs = {{{"name", "build-amd64"}, {"kind", "build"}, {"recipe", "build"}, {"hosts", {{"host", {"x86"}}}}},
                 {{"name", "test-amd64-xl"},
                  {"recipe", "test"},
                  {"depends", {"build-amd64"}},
                  {"hosts", {{"host", {"x86"}}}}}};
    if (two_tests) {
      jobs.push_back({{"name", "test-amd64-libvirt"},
                      {"recipe", "test"},
                      {"depends", {"build-amd64"}},
                      {"hosts", {{"host", {"x86"}}}}});
    }
    json cfg = {
        {"daemon", {{"state_dir", "state"}, {"listen", "127.0.0.1:" + std::to_string(port)}}},
        {"trees", trees},
        {"branches", second_branch ? json::array({branch, {{"name", "xen-next"}, {"tree", "xen"}, {"input", "next"},
                                                            {"tested", "next-tested"}}})
                                   : json::array({branch})},
        {"recipes",
         {{"build", {{"steps", {{{"testid", "build"}, {"run", kBuild}}}}}},
          {"test", {{"steps", {{{"testid", "boot"}, {"run", "sh $PUSHGATE_CONFIG_DIR/boot.sh"}}}}}}}},
        {"jobs", jobs},
        {"hosts", {{{"name", "h0"}, {"kind", "local"}, {"flags", {"x86"}}},
                   {{"name", "h1"}, {"kind", "local"}, {"flags", {"x86"}}}}}};
    test::write_file(dir.path() / "c.json", cfg.dump(2));
    std::filesystem::create_directories(dir.path() / "state");
  }

  test::RunResult pg(std::vector<std::string> a) {
    a.insert(a.begin(), {"--config", dir.str("c.json")});
    return test::pushgate(a);
  }

  std::string commit(const std::string& what) {
    return xen->commit_on("staging", "xen: " + what, {{"CHANGES", what + "\n"}}, "Jan Beulich <jbeulich@example.org>");
  }
  void mark(const std::string& file, const std::string& content) { test::write_file(dir.path() / file, content + "\n"); }

  /// Flight 1: the baseline (master), passes.
  void baseline() {
    auto r = pg({"flight", "run", "xen-unstable"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  /// Flight 2 regresses; its retest (3) fails too.
  void regress() {
    auto r = pg({"flight", "run", "xen-unstable", "--json"});
    ASSERT_EQ(r.exit_code, 3) << r.out << r.err;
    auto v = json::parse(r.out)["verdict"];
    ASSERT_EQ(v["outcome"], "regressions") << v.dump(2);
  }
  /// Start and run a bisection of test-amd64-xl boot; the JSON of `show`.
  json bisect(int expect_exit) {
    auto s = pg({"bisect", "start", "xen-unstable", "test-amd64-xl", "boot", "--json"});
    EXPECT_EQ(s.exit_code, 0) << s.out << s.err;
    EXPECT_EQ(test::schema_errors("cli/bisect-start.schema.json", s.out), "");
    std::string id = std::to_string(json::parse(s.out)["id"].get<int>());
    auto r = pg({"bisect", "run", id, "--json"});
    EXPECT_EQ(r.exit_code, expect_exit) << r.out << r.err;
    return json::parse(r.out);
  }
  static std::size_t bound(std::size_t commits) {
    return static_cast<std::size_t>(std::ceil(std::log2(static_cast<double>(commits)))) + 4;
  }
};

TEST_F(Bisect, Issue14_LinearRangeNamesTheCulpritAndItsParent) {
  baseline();
  std::string tested = xen->head_of("master");
  std::vector<std::string> c;
  for (int i = 0; i < 12; ++i) c.push_back(commit("change " + std::to_string(i)));
  mark("culprit-xen", c[6]);
  regress();
  json b = bisect(0);
  EXPECT_EQ(b["status"], "complete") << b.dump(2);
  ASSERT_TRUE(b["culprit"].is_object()) << b.dump(2);
  EXPECT_EQ(b["culprit"]["commit"], c[6]);
  EXPECT_EQ(b["culprit"]["tree"], "xen");
  EXPECT_EQ(b["culprit"]["subject"], "xen: change 6");
  EXPECT_EQ(b["culprit"]["author"], "Jan Beulich <jbeulich@example.org>");
  EXPECT_EQ(b["not_present"], c[5]);
  EXPECT_EQ(b["jobs"], json::array({"test-amd64-xl"}));
  EXPECT_EQ(b["testids"], json::array({"boot"}));
  EXPECT_LE(b["flights"].size(), bound(12)) << b.dump(2);
  EXPECT_GE(b["flights"].size(), 4u) << b.dump(2);  // 12 commits cannot be told apart in fewer
  // Probes run where the failure did.
  EXPECT_FALSE(b["pins"]["test-amd64-xl"]["host"].get<std::string>().empty());
  EXPECT_EQ(test::schema_errors("api/bisection.schema.json", b.dump()), "");
  auto list = pg({"bisect", "list", "--json"});
  EXPECT_EQ(test::schema_errors("api/bisections.schema.json", list.out), "");
  // The text report and the graph.
  auto show = pg({"bisect", "show", std::to_string(b["id"].get<int>())});
  EXPECT_NE(show.out.find("Found and reproduced problem changeset"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find(c[6]), std::string::npos);
  auto dot = pg({"bisect", "show", std::to_string(b["id"].get<int>()), "--dot"});
  EXPECT_NE(dot.out.find("first bad"), std::string::npos) << dot.out;
  // Every probe is a real-bisect flight that never pushed.
  auto st = store::Store::open({dir.str("state/pushgate.db")}).value();
  for (const auto& f : b["flights"]) EXPECT_EQ(st->get_flight(FlightId{f.get<std::int64_t>()}).value().blessing, "real-bisect");
  EXPECT_EQ(xen->head_of("master"), tested);
}

// Issue 18: an ABI item is bisected as a step is: the probes' records are
// compared with the basis flight's, and the commit that changed it is named.
TEST_F(Bisect, Issue18_BisectionNamesTheCommitThatChangedAnAbiRecord) {
  mark("abi", "1");
  baseline();
  std::vector<std::string> c;
  for (int i = 0; i < 10; ++i) c.push_back(commit("change " + std::to_string(i)));
  mark("culprit-abi", c[3]);
  regress();
  // A step that did not change is refused, as a step that passed is.
  EXPECT_EQ(pg({"bisect", "start", "xen-unstable", "test-amd64-xl", "abi machine/none"}).exit_code, 2);
  auto s = pg({"bisect", "start", "xen-unstable", "test-amd64-xl", "abi alias/pc", "--json"});
  ASSERT_EQ(s.exit_code, 0) << s.out << s.err;
  std::string id = std::to_string(json::parse(s.out)["id"].get<int>());
  auto r = pg({"bisect", "run", id, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json b = json::parse(r.out);
  EXPECT_EQ(b["status"], "complete") << b.dump(2);
  ASSERT_TRUE(b["culprit"].is_object()) << b.dump(2);
  EXPECT_EQ(b["culprit"]["commit"], c[3]);
  EXPECT_EQ(b["not_present"], c[2]);
  EXPECT_EQ(b["testids"], json::array({"abi alias/pc"}));
  EXPECT_LE(b["flights"].size(), bound(10)) << b.dump(2);
}

// Issue 15 item 5: the end of a bisection is mailed once, with the culprit
// in its headers; the branch's real flights are mailed, its retest and
// probe flights are not (blessings default to real).
TEST_F(Bisect, Issue15_EndedBisectionIsMailedOnce) {
  test::write_file(dir.path() / "sendmail.sh",
                   "#!/bin/sh\nf=$(mktemp " + dir.str("mail.XXXXXX") + ")\ncat > $f\n");
  std::filesystem::permissions(dir.path() / "sendmail.sh", std::filesystem::perms::owner_all);
  json cfg = json::parse(test::read_file(dir.path() / "c.json"));
  cfg["notify"] = {{"sendmail", dir.str("sendmail.sh")}, {"mail", {"xen-devel@xen.example"}}};
  test::write_file(dir.path() / "c.json", cfg.dump(2));
  baseline();
  std::vector<std::string> c;
  for (int i = 0; i < 6; ++i) c.push_back(commit("change " + std::to_string(i)));
  mark("culprit-xen", c[3]);
  regress();
  json b = bisect(0);
  ASSERT_EQ(b["status"], "complete") << b.dump(2);
  std::vector<std::string> subjects;
  std::string bisection_mail;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    if (!e.path().filename().string().starts_with("mail.")) continue;
    std::string m = test::read_file(e.path());
    auto s = m.find("\nSubject: ");
    subjects.push_back(m.substr(s + 10, m.find('\n', s + 1) - s - 10));
    if (m.find("bisection]") != std::string::npos) bisection_mail = m;
  }
  std::sort(subjects.begin(), subjects.end());
  EXPECT_EQ(subjects, (std::vector<std::string>{"[xen-unstable baseline test] 1: all pass",
                                                "[xen-unstable bisection] complete test-amd64-xl boot",
                                                "[xen-unstable test] 2: regressions - FAIL"}));
  EXPECT_NE(bisection_mail.find("\nX-Pushgate-Versions-This: xen=" + c[3] + "\n"), std::string::npos) << bisection_mail;
  EXPECT_NE(bisection_mail.find("\nX-Pushgate-Versions-That: xen=" + c[2] + "\n"), std::string::npos) << bisection_mail;
  EXPECT_NE(bisection_mail.find("\nX-Pushgate-Failures: xen-unstable:test-amd64-xl:boot:complete\n"), std::string::npos)
      << bisection_mail;
  EXPECT_NE(bisection_mail.find("Found and reproduced problem changeset"), std::string::npos) << bisection_mail;
  EXPECT_NE(bisection_mail.find("/bisections/1\n"), std::string::npos) << bisection_mail;
  // Showing or running it again sends nothing more.
  EXPECT_EQ(pg({"bisect", "run", "1"}).exit_code, 0);
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) n += e.path().filename().string().starts_with("mail.");
  EXPECT_EQ(n, 3);
}

TEST_F(Bisect, Issue14_CulpritOnAMergedSideBranch) {
  baseline();
  std::string base = xen->head_of("staging");
  std::string m1 = commit("main 1");
  // A side branch from the basis, merged after two more main commits.
  std::string s1 = xen->commit("side 1", {base}, {{"SIDE", "1\n"}});
  std::string s2 = xen->commit("side 2", {s1}, {{"SIDE", "2\n"}});
  std::string s3 = xen->commit("side 3", {s2}, {{"SIDE", "3\n"}});
  commit("main 2");
  std::string merge = xen->commit("Merge side", {xen->head_of("staging"), s3}, {{"SIDE", "3\n"}});
  xen->set_branch("staging", merge);
  commit("main 3");
  mark("culprit-xen", s2);
  regress();
  json b = bisect(0);
  EXPECT_EQ(b["status"], "complete") << b.dump(2);
  EXPECT_EQ(b["culprit"]["commit"], s2) << b.dump(2);
  EXPECT_EQ(b["not_present"], s1);
}

TEST_F(Bisect, Issue14_CulpritIsAMerge) {
  baseline();
  std::string base = xen->head_of("staging");
  commit("main 1");
  std::string s1 = xen->commit("side 1", {base}, {{"SIDE", "1\n"}});
  std::string s2 = xen->commit("side 2", {s1}, {{"SIDE", "2\n"}});
  std::string merge = xen->commit("Merge side", {xen->head_of("staging"), s2}, {{"SIDE", "2\n"}});
  xen->set_branch("staging", merge);
  commit("main 2");
  mark("culprit-xen", merge);
  regress();
  json b = bisect(0);
  EXPECT_EQ(b["status"], "complete") << b.dump(2);
  EXPECT_EQ(b["culprit"]["commit"], merge) << b.dump(2);
  EXPECT_EQ(b["culprit"]["subject"], "Merge side");
}

TEST_F(Bisect, Issue14_TwoTreesChangedCulpritInTheSecond) {
  qemu = std::make_unique<test::GitRepoBuilder>(dir.str("up/qemu.git"));
  qemu->commit_on("master", "qemu: import");
  configure(true);
  baseline();
  for (int i = 0; i < 5; ++i) commit("xen change " + std::to_string(i));
  std::vector<std::string> q;
  for (int i = 0; i < 4; ++i) q.push_back(qemu->commit_on("master", "qemu: change " + std::to_string(i)));
  mark("culprit-qemu", q[2]);
  regress();
  json b = bisect(0);
  EXPECT_EQ(b["status"], "complete") << b.dump(2);
  EXPECT_EQ(b["trees"], json::array({"xen", "qemu"}));
  EXPECT_EQ(b["culprit"]["tree"], "qemu") << b.dump(2);
  EXPECT_EQ(b["culprit"]["commit"], q[2]);
  EXPECT_EQ(b["not_present"], q[1]);
  EXPECT_LE(b["flights"].size(), bound(9));
}

TEST_F(Bisect, Issue14_FlakyStepIsInconsistent) {
  baseline();
  std::vector<std::string> c;
  for (int i = 0; i < 6; ++i) c.push_back(commit("change " + std::to_string(i)));
  mark("culprit-xen", c[3]);
  mark("flaky", c[2]);  // the last pass fails when it is tested again
  regress();
  json b = bisect(3);
  EXPECT_EQ(b["status"], "inconsistent") << b.dump(2);
  EXPECT_TRUE(b["culprit"].is_null());
}

TEST_F(Bisect, Issue14_BasisThatNoLongerPassesIsUnreproducible) {
  baseline();
  std::string basis = xen->head_of("master");
  std::vector<std::string> c;
  for (int i = 0; i < 4; ++i) c.push_back(commit("change " + std::to_string(i)));
  mark("culprit-xen", c[1]);
  regress();
  mark("basis-breaks", basis);  // the lab changed: the basis fails now too
  json b = bisect(3);
  EXPECT_EQ(b["status"], "unreproducible") << b.dump(2);
  EXPECT_EQ(b["flights"].size(), 1u);  // only the basis reproduction ran
}

TEST_F(Bisect, Issue14_UnbuildableCommitsAroundTheCulpritAreInconclusive) {
  baseline();
  std::vector<std::string> c;
  for (int i = 0; i < 6; ++i) c.push_back(commit("change " + std::to_string(i)));
  mark("culprit-xen", c[3]);
  mark("unbuildable", c[2] + "\n" + c[3]);
  regress();
  json b = bisect(3);
  EXPECT_EQ(b["status"], "inconclusive") << b.dump(2);
  // The untestable nodes are recorded as such.
  int untestable = 0;
  for (const auto& n : b["nodes"]) untestable += n["result"] == "untestable";
  EXPECT_GE(untestable, 1) << b.dump(2);
}

TEST_F(Bisect, Issue14_EquivalentHostsRunProbesInParallel) {
  baseline();
  std::vector<std::string> c;
  for (int i = 0; i < 20; ++i) c.push_back(commit("change " + std::to_string(i)));
  mark("culprit-xen", c[13]);
  regress();
  mark("slow", "1");
  auto s = pg({"bisect", "start", "xen-unstable", "test-amd64-xl", "boot", "--equiv-hosts", "--json"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto r = pg({"bisect", "run", "1", "--parallel", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json b = json::parse(r.out);
  EXPECT_EQ(b["culprit"]["commit"], c[13]) << b.dump(2);
  EXPECT_EQ(b["pins"], json::object());
  // Two hosts: two probe steps ran at the same moment.
  int most = 0;
  std::ifstream in(dir.path() / "concurrency");
  for (int n; in >> n;) most = std::max(most, n);
  EXPECT_GE(most, 2) << r.err;
  EXPECT_NE(r.err.find("in parallel with flight"), std::string::npos) << r.err;
  // --parallel is checked.
  EXPECT_EQ(pg({"bisect", "run", "1", "--parallel", "0"}).exit_code, 2);
}

// Results of another branch's flights on a node count when they ran on the
// hosts the bisection is pinned to, and only then.
TEST_F(Bisect, Issue14_OtherBranchesResultsOnTheSameHostsCount) {
  configure(false, false, true);
  xen->set_branch("next-tested", xen->head_of("master"));
  ASSERT_EQ(pg({"host", "disable", "h1"}).exit_code, 0);
  baseline();
  std::vector<std::string> c;
  for (int i = 0; i < 8; ++i) c.push_back(commit("change " + std::to_string(i)));
  mark("culprit-xen", c[4]);
  regress();  // on h0: the bisection is pinned there
  // xen-next tests c2 on h0 (passes) and c5 on h1 (fails); its first
  // flight is a baseline flight of its tested ref.
  xen->set_branch("next", c[2]);
  auto r = pg({"flight", "run", "xen-next"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = pg({"flight", "run", "xen-next", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::int64_t c2_flight = json::parse(r.out)["flight"].get<std::int64_t>();
  ASSERT_EQ(pg({"host", "enable", "h1"}).exit_code, 0);
  ASSERT_EQ(pg({"host", "disable", "h0"}).exit_code, 0);
  xen->set_branch("next", c[5]);
  r = pg({"flight", "run", "xen-next"});
  ASSERT_EQ(r.exit_code, 3) << r.err;
  ASSERT_EQ(pg({"host", "enable", "h0"}).exit_code, 0);
  auto st = store::Store::open({dir.str("state/pushgate.db")}).value();
  auto next_flights = st->list_flights({.branch = "xen-next", .blessings = {"real"}, .limit = 10}).value();
  std::set<std::int64_t> on_h1;
  for (const auto& f : next_flights) {
    for (const auto& v : st->list_runvars(f.id, "test-amd64-xl").value()) {
      if (v.synth && v.name == "host" && v.value == "h1") on_h1.insert(f.id.value);
    }
  }
  ASSERT_GE(on_h1.size(), 1u);
  json b = bisect(0);
  EXPECT_EQ(b["culprit"]["commit"], c[4]) << b.dump(2);
  EXPECT_EQ(b["pins"]["test-amd64-xl"]["host"], "h0");
  for (const auto& n : b["nodes"]) {
    for (const auto& f : n["flights"]) {
      EXPECT_FALSE(on_h1.count(f.get<std::int64_t>())) << "a result from h1 counted on " << n["commit"];
    }
    if (n["commit"] == c[2]) {
      auto fl = n["flights"].get<std::vector<std::int64_t>>();
      EXPECT_NE(std::find(fl.begin(), fl.end(), c2_flight), fl.end()) << n.dump();
    }
  }
}

TEST_F(Bisect, Issue14_CancelledBisectionStopsAndKeepsItsState) {
  baseline();
  std::vector<std::string> c;
  for (int i = 0; i < 4; ++i) c.push_back(commit("change " + std::to_string(i)));
  mark("culprit-xen", c[2]);
  regress();
  ASSERT_EQ(pg({"bisect", "start", "xen-unstable", "test-amd64-xl", "boot"}).exit_code, 0);
  // A second bisection of the same step of the same flight is refused while one runs.
  EXPECT_NE(pg({"bisect", "start", "xen-unstable", "test-amd64-xl", "boot"}).exit_code, 0);
  auto c1 = pg({"bisect", "cancel", "1"});
  EXPECT_EQ(c1.exit_code, 0) << c1.err;
  auto r = pg({"bisect", "run", "1", "--json"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  json b = json::parse(r.out);
  EXPECT_EQ(b["status"], "cancelled");
  EXPECT_TRUE(b["flights"].empty());  // nothing ran after the cancel
  EXPECT_NE(pg({"bisect", "cancel", "1"}).exit_code, 0);  // it has ended
  auto l = pg({"bisect", "list", "--status", "cancelled", "--json"});
  EXPECT_EQ(json::parse(l.out).size(), 1u) << l.out;
}

TEST_F(Bisect, Issue14_UnknownInputsAreUsageErrors) {
  baseline();
  EXPECT_EQ(pg({"bisect", "start", "no-such-branch", "test-amd64-xl", "boot"}).exit_code, 2);
  EXPECT_EQ(pg({"bisect", "start", "xen-unstable", "no-such-job", "boot"}).exit_code, 2);
  // Flight 1 passed: nothing to bisect.
  auto r = pg({"bisect", "start", "xen-unstable", "test-amd64-xl", "boot", "--flight", "1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(pg({"bisect", "show", "99"}).exit_code, 2);
  EXPECT_EQ(pg({"bisect", "list", "--status", "finished"}).exit_code, 2);
  auto l = pg({"bisect", "list", "--json"});
  EXPECT_EQ(l.exit_code, 0);
  EXPECT_EQ(json::parse(l.out), json::array());
}

// The daemon starts one bisection for two jobs regressing over one range,
// each probe carries both; a kill -9 in the middle of a probe is resumed
// with the same probe flight, and no probe is repeated.
TEST_F(Bisect, Issue14_DaemonBisectsTwoJobsTogetherAndResumesAfterKillDashNine) {
  configure(false, true);
  baseline();
  std::vector<std::string> c;
  for (int i = 0; i < 10; ++i) c.push_back(commit("change " + std::to_string(i)));
  mark("culprit-xen", c[4]);
  auto st = store::Store::open({dir.str("state/pushgate.db")}).value();
  auto d = std::make_unique<test::Background>(
      std::vector<std::string>{test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str("daemon.log"));
  auto wait_until = [](const std::function<bool()>& cond, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline && !cond()) std::this_thread::sleep_for(50ms);
    return cond();
  };
  // Two probes finished and a third is running: kill -9.
  std::vector<store::Store::BisectionProbe> before;
  ASSERT_TRUE(wait_until(
      [&] {
        auto p = st->bisection_probes(1);
        if (!p || p->size() < 3) return false;
        auto f = st->get_flight(p->back().flight);
        auto jobs = st->list_jobs(p->back().flight);
        bool running = jobs && std::any_of(jobs->begin(), jobs->end(), [](const store::Job& j) { return j.status == "running"; });
        if (f && !f->finished && running) {
          before = *p;
          return true;
        }
        return false;
      },
      120s))
      << test::read_file(dir.path() / "daemon.log");
  ::kill(d->pid(), SIGKILL);
  d->wait(10000);
  d = std::make_unique<test::Background>(
      std::vector<std::string>{test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str("daemon2.log"));
  ASSERT_TRUE(wait_until(
      [&] {
        auto b = st->get_bisection(1);
        return b && b->status != "running";
      },
      180s))
      << test::read_file(dir.path() / "daemon2.log");
  d->signal(SIGTERM);
  d->wait(30000);
  auto row = st->get_bisection(1).value();
  EXPECT_EQ(row.status, "complete") << row.reason;
  EXPECT_EQ(row.who, "daemon");
  auto targets = json::parse(row.targets);
  EXPECT_EQ(targets, json::parse(R"([["test-amd64-libvirt", "boot"], ["test-amd64-xl", "boot"]])")) << row.targets;
  auto state = json::parse(row.state);
  EXPECT_EQ(state["culprit"]["commit"], c[4]) << row.state;
  for (const auto& t : state["targets"]) EXPECT_EQ(t["status"], "complete") << row.state;
  auto after = st->bisection_probes(1).value();
  ASSERT_GE(after.size(), before.size());
  // The probe cut short is the same flight after the restart, not a new one.
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i].flight, before[i].flight);
  // Every probe flight carries both jobs, and finished.
  for (const auto& p : after) {
    auto jobs = st->list_jobs(p.flight).value();
    int tests = 0;
    for (const auto& j : jobs) tests += j.job.rfind("test-", 0) == 0;
    EXPECT_EQ(tests, 2) << "flight " << p.flight.str();
    EXPECT_TRUE(st->get_flight(p.flight).value().finished.has_value());
  }
  // No node was probed more often than its reproduction needs (twice).
  std::map<std::string, int> per_node;
  for (const auto& p : after) ++per_node[p.node];
  for (const auto& [node, n] : per_node) EXPECT_LE(n, 2) << node;
  EXPECT_LE(after.size(), bound(10));

  // The API and the pages (a new daemon: the one above has stopped).
  d = std::make_unique<test::Background>(
      std::vector<std::string>{test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str("daemon3.log"));
  ASSERT_TRUE(test::wait_for_port(port, 20000)) << test::read_file(dir.path() / "daemon3.log");
  auto one = test::http(port, "GET", "/api/v1/bisections/1");
  EXPECT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(test::schema_errors("api/bisection.schema.json", one.body), "");
  EXPECT_EQ(json::parse(one.body)["culprit"]["commit"], c[4]);
  auto all = test::http(port, "GET", "/api/v1/bisections?status=complete&branch=xen-unstable");
  EXPECT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(test::schema_errors("api/bisections.schema.json", all.body), "");
  EXPECT_EQ(json::parse(all.body).size(), 1u);
  // The daemon keeps testing the broken input (poll every second), and each
  // of those flights regresses over the same range: still one bisection.
  auto regressed = st->list_flights({.branch = "xen-unstable", .blessings = {"real"}, .outcome = "regressions", .limit = 50});
  ASSERT_TRUE(regressed);
  EXPECT_GE(regressed->size(), 2u);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/bisections/2").status, 404);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/bisections/x1").status, 400);
  EXPECT_EQ(test::http(port, "GET", "/api/v1/bisections?status=done").status, 400);
  auto page = test::http(port, "GET", "/bisections/1");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<svg"), std::string::npos) << page.body.substr(0, 2000);
  EXPECT_NE(page.body.find(c[4]), std::string::npos);
  auto listing = test::http(port, "GET", "/bisections");
  EXPECT_EQ(listing.status, 200);
  EXPECT_NE(listing.body.find("/bisections/1"), std::string::npos);
  // Issue 15: the bisection page in a browser, its graph drawn.
  if (!std::filesystem::exists("/usr/bin/chromium")) GTEST_FAIL() << "chromium is missing: scripts/setup.sh installs it";
  const auto chrome = test::chromium(dir.str("chrome"));
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/bisections/1";
  auto dom = test::run(test::with_url(chrome, url, {"--dump-dom"}));
  ASSERT_EQ(dom.exit_code, 0) << dom.err;
  EXPECT_NE(dom.out.find("<table id=\"culprit\">"), std::string::npos) << dom.out.substr(0, 2000);
  EXPECT_NE(dom.out.find("<svg"), std::string::npos);
  EXPECT_EQ(test::run(test::with_url(chrome, url, {"--screenshot=" + (test::artifacts_dir() / "bisection.png").string()}))
                .exit_code,
            0);
  d->signal(SIGTERM);
  d->wait(30000);
}

}  // namespace
}  // namespace pushgate
