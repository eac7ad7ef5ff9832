// SPEC section 3 on real repositories: resolution sources, frozen refs,
// up-to-date and baseline detection, frozen-ref changes and their audit.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <pushgate/revisions.hpp>

#include "faulty_store.hpp"
#include "support.hpp"

namespace pushgate::revisions {
namespace {

using test::GitRepoBuilder;
using test::TempDir;

class RevisionsTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::unique_ptr<GitRepoBuilder> xen, libvirt;
  std::string xen_release, xen_master, xen_staging, xen_stable47, xen_staging47;
  std::string lv_old, lv_frozen, lv_tested, lv_master;
  std::optional<config::Config> cfg;
  std::unique_ptr<store::Store> store;

  void SetUp() override {
    xen = std::make_unique<GitRepoBuilder>(dir.str("up/xen.git"));
    xen->commit_on("master", "xen: import");
    xen_release = xen->commit_on("master", "xen: 4.7.0");
    xen->annotated_tag("RELEASE-4.7.0", xen_release);
    xen->set_branch("stable-4.7", xen_release);
    xen_master = xen->commit_on("master", "xen: 4.8 development");
    xen->set_branch("staging", xen_master);
    xen_staging = xen->commit_on("staging", "xen: new feature", {}, "Jan Beulich <jbeulich@example.org>");
    xen->set_branch("staging-4.7", xen_release);
    xen_stable47 = xen_release;
    xen_staging47 = xen->commit_on("staging-4.7", "xen: backport");

    libvirt = std::make_unique<GitRepoBuilder>(dir.str("up/libvirt.git"));
    lv_old = libvirt->commit_on("master", "libvirt: import");
    libvirt->annotated_tag("v1.3.0", lv_old);
    lv_frozen = libvirt->commit_on("master", "libvirt: libxl fixes");
    libvirt->set_branch("osstest/frozen/xen-4.7-testing", lv_frozen);
    lv_tested = libvirt->commit_on("master", "libvirt: more");
    libvirt->set_branch("xen-tested-master", lv_tested);
    lv_master = libvirt->commit_on("master", "libvirt: newest");

    std::string text = R"({
      "daemon": {"state_dir": "state"},
      "trees": [{"name": "xen", "upstream": "up/xen.git", "gate": "xen-unstable"},
                {"name": "libvirt", "upstream": "up/libvirt.git"}],
      "branches": [
        {"name": "xen-unstable", "tree": "xen", "input": "staging", "tested": "master"},
        {"name": "xen-4.7-testing", "tree": "xen", "input": "staging-4.7", "tested": "stable-4.7"},
        {"name": "libvirt", "tree": "libvirt", "input": "master", "tested": "xen-tested-master"}
      ]})";
    test::write_file(dir.path() / "pushgate.json", text);
    auto r = config::load(dir.str("pushgate.json"));
    ASSERT_TRUE(r.config.has_value()) << r.errors[0].to_string();
    cfg = std::move(r.config);
    store = store::Store::open({dir.str("p.db")}).value();
  }

  Mirrors fetched() {
    Mirrors m(*cfg);
    EXPECT_TRUE(m.fetch("xen").has_value());
    EXPECT_TRUE(m.fetch("libvirt").has_value());
    return m;
  }

  /// Record a real flight of `branch` that tested these revisions.
  FlightId flight(const std::string& branch, const std::map<std::string, std::string>& revs,
                  const std::string& outcome = "", const std::string& blessing = "real") {
    store::NewFlight f;
    f.branch = branch;
    f.blessing = blessing;
    f.jobs = {{{}, "build-amd64", "build"}};
    for (const auto& [tree, rev] : revs) f.runvars.push_back({"build-amd64", "revision_" + tree, rev});
    FlightId id = store->create_flight(f).value();
    if (!outcome.empty()) {  // a flight with an outcome has finished
      EXPECT_TRUE(store->set_flight_times(id, store::now(), store::now()).has_value());
      EXPECT_TRUE(store->set_flight_outcome(id, outcome).has_value());
    }
    return id;
  }

  FrozenRequest req(FrozenAction a, const std::string& rev = "") {
    FrozenRequest r;
    r.action = a;
    r.tree = "libvirt";
    r.branch = "xen-4.7-testing";
    r.revision = rev;
    r.who = "release-manager";
    return r;
  }
};

TEST_F(RevisionsTest, FrozenRefPinsStableBranchOnly) {
  Mirrors m = fetched();
  auto stable = resolve(*cfg, m, nullptr, "xen-4.7-testing").value();
  describe(stable, m);
  ASSERT_EQ(stable.trees.size(), 2u);
  EXPECT_EQ(stable.trees[0].tree, "xen");
  EXPECT_EQ(stable.trees[0].revision, xen_staging47);
  EXPECT_EQ(stable.trees[0].source, "input");
  EXPECT_EQ(stable.find("libvirt")->revision, lv_frozen);
  EXPECT_EQ(stable.find("libvirt")->source, "frozen");
  EXPECT_EQ(stable.find("libvirt")->describe, "v1.3.0-1-g" + lv_frozen.substr(0, 7));

  auto unstable = resolve(*cfg, m, nullptr, "xen-unstable").value();
  EXPECT_EQ(unstable.find("libvirt")->revision, lv_tested);
  EXPECT_EQ(unstable.find("libvirt")->source, "tested-of:libvirt");
  EXPECT_EQ(unstable.tested_revision, xen_master);

  auto lv = resolve(*cfg, m, nullptr, "libvirt").value();
  EXPECT_EQ(lv.find("xen")->revision, xen_master);
  EXPECT_EQ(lv.find("xen")->source, "tested-of:xen-unstable");

  auto vars = runvars(stable);
  EXPECT_NE(std::find(vars.begin(), vars.end(), std::make_pair(std::string("revsrc_libvirt"), std::string("frozen"))),
            vars.end());
}

TEST_F(RevisionsTest, MovingTheFrozenRefChangesTheNextResolution) {
  Mirrors m = fetched();
  libvirt->set_branch("osstest/frozen/xen-4.7-testing", lv_tested);
  ASSERT_TRUE(m.fetch("libvirt").has_value());
  EXPECT_EQ(resolve(*cfg, m, nullptr, "xen-4.7-testing").value().find("libvirt")->revision, lv_tested);
}

TEST_F(RevisionsTest, OverrideWinsOverEverything) {
  Mirrors m = fetched();
  auto r = resolve(*cfg, m, nullptr, "xen-4.7-testing", {{"libvirt", "v1.3.0"}, {"xen", xen_release}}).value();
  EXPECT_EQ(r.find("libvirt")->revision, lv_old);
  EXPECT_EQ(r.find("libvirt")->source, "override");
  EXPECT_EQ(r.find("xen")->revision, xen_release);
  EXPECT_EQ(r.find("xen")->source, "override");
  EXPECT_FALSE(r.up_to_date);
  auto bad = resolve(*cfg, m, nullptr, "xen-4.7-testing", {{"libvirt", "no-such-rev"}});
  EXPECT_EQ(bad.error().code(), StatusCode::invalid_argument);
  auto unused = resolve(*cfg, m, nullptr, "xen-4.7-testing", {{"qemu", "master"}});
  EXPECT_EQ(unused.error().code(), StatusCode::invalid_argument);
}

TEST_F(RevisionsTest, UpToDateAndBaselineFlights) {
  Mirrors m = fetched();
  // No flight has tested master yet: a baseline flight of master itself.
  auto first = resolve(*cfg, m, store.get(), "xen-unstable").value();
  EXPECT_TRUE(first.baseline_flight);
  EXPECT_EQ(first.trees[0].revision, xen_master);
  EXPECT_EQ(first.trees[0].source, "tested-of:xen-unstable");
  // Adhoc flights are not evidence.
  flight("xen-unstable", {{"xen", xen_master}}, "perfect", "adhoc");
  EXPECT_TRUE(resolve(*cfg, m, store.get(), "xen-unstable").value().baseline_flight);
  flight("xen-unstable", {{"xen", xen_master}}, "perfect");
  auto next = resolve(*cfg, m, store.get(), "xen-unstable").value();
  EXPECT_FALSE(next.baseline_flight);
  EXPECT_FALSE(next.up_to_date);
  EXPECT_EQ(next.trees[0].revision, xen_staging);
  // Input == tested: nothing to do.
  xen->set_branch("master", xen_staging);
  ASSERT_TRUE(m.fetch("xen").has_value());
  flight("xen-unstable", {{"xen", xen_staging}}, "perfect");
  EXPECT_TRUE(resolve(*cfg, m, store.get(), "xen-unstable").value().up_to_date);
}

TEST_F(RevisionsTest, UnknownBranchAndMissingRefs) {
  Mirrors m = fetched();
  auto r = resolve(*cfg, m, nullptr, "xen-unstabel");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().hint().find("did you mean \"xen-unstable\"?"), std::string::npos);
  TempDir other;
  config::Config c2 = *cfg;
  for (auto& t : c2.trees) t.mirror = other.str(t.name + ".git");
  Mirrors unfetched(c2);
  auto missing = resolve(c2, unfetched, nullptr, "xen-unstable");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message().find("refs/heads/staging"), std::string::npos) << missing.error().message();
}

TEST_F(RevisionsTest, FrozenAddMoveRemoveAreAudited) {
  Mirrors m = fetched();
  // Already exists: add refused.
  auto dup = change_frozen(*cfg, m, *store, req(FrozenAction::add, lv_tested));
  EXPECT_EQ(dup.error().code(), StatusCode::conflict);
  // Fast-forward move.
  auto mv = change_frozen(*cfg, m, *store, req(FrozenAction::move, lv_tested));
  ASSERT_TRUE(mv.has_value()) << mv.error().to_string();
  EXPECT_EQ(mv->old_rev, lv_frozen);
  EXPECT_EQ(mv->new_rev, lv_tested);
  EXPECT_EQ(mv->describe, "v1.3.0-2-g" + lv_tested.substr(0, 7));
  EXPECT_EQ(libvirt->head_of("osstest/frozen/xen-4.7-testing"), lv_tested);  // upstream moved
  EXPECT_EQ(resolve(*cfg, m, nullptr, "xen-4.7-testing").value().find("libvirt")->revision, lv_tested);
  // Backwards without --force: refused, nothing changed.
  auto back = change_frozen(*cfg, m, *store, req(FrozenAction::move, "v1.3.0"));
  ASSERT_FALSE(back.has_value());
  EXPECT_NE(back.error().hint().find("--force"), std::string::npos);
  EXPECT_EQ(libvirt->head_of("osstest/frozen/xen-4.7-testing"), lv_tested);
  FrozenRequest forced = req(FrozenAction::move, "v1.3.0");
  forced.force = true;
  auto f = change_frozen(*cfg, m, *store, forced);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  EXPECT_EQ(f->action, "force-move");
  EXPECT_EQ(f->describe, "v1.3.0");
  // Remove: the branch falls back to libvirt's tested ref.
  ASSERT_TRUE(change_frozen(*cfg, m, *store, req(FrozenAction::remove)).has_value());
  EXPECT_EQ(libvirt->head_of("osstest/frozen/xen-4.7-testing"), "");
  auto after = resolve(*cfg, m, nullptr, "xen-4.7-testing").value();
  EXPECT_EQ(after.find("libvirt")->source, "tested-of:libvirt");
  // Add again.
  ASSERT_TRUE(change_frozen(*cfg, m, *store, req(FrozenAction::add, lv_frozen)).has_value());
  auto history = store->frozen_history("libvirt", "xen-4.7-testing", 10).value();
  ASSERT_EQ(history.size(), 4u);
  EXPECT_EQ(history[0].action, "add");
  EXPECT_EQ(history[1].action, "remove");
  EXPECT_EQ(history[2].action, "force-move");
  EXPECT_EQ(history[3].action, "move");
  EXPECT_EQ(history[3].who, "release-manager");
  auto listed = list_frozen(*cfg, m).value();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].branch, "xen-4.7-testing");
  EXPECT_EQ(listed[0].revision, lv_frozen);
}

TEST_F(RevisionsTest, FrozenMoveRefusedWhenUpstreamMovedMeanwhile) {
  Mirrors m = fetched();
  // Someone moves the frozen ref upstream after our fetch.
  libvirt->set_branch("osstest/frozen/xen-4.7-testing", lv_master);
  auto r = change_frozen(*cfg, m, *store, req(FrozenAction::move, lv_tested));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), StatusCode::conflict);
  EXPECT_EQ(libvirt->head_of("osstest/frozen/xen-4.7-testing"), lv_master);
  auto mirror = m.repo("libvirt").value();
  EXPECT_EQ(mirror->ref_target("osstest/frozen/xen-4.7-testing").value().value(), lv_frozen);
  // The attempt is audited as refused, with what was found upstream.
  auto h = store->frozen_history("", "", 10).value();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].state, "refused");
  EXPECT_NE(h[0].note.find("moved by someone else"), std::string::npos) << h[0].note;
  EXPECT_TRUE(store->pending_frozen_changes().value().empty());
}

TEST_F(RevisionsTest, FromLastTolerable) {
  Mirrors m = fetched();
  FrozenRequest r = req(FrozenAction::move);
  r.from_last_tolerable = true;
  auto none = change_frozen(*cfg, m, *store, r);
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().message().find("no tolerable real flight"), std::string::npos);
  flight("xen-4.7-testing", {{"xen", xen_staging47}, {"libvirt", lv_tested}}, "tolerable");
  flight("xen-4.7-testing", {{"xen", xen_staging47}, {"libvirt", lv_master}}, "regressions");
  flight("xen-4.7-testing", {{"xen", xen_staging47}, {"libvirt", lv_master}}, "perfect", "adhoc");
  auto moved = change_frozen(*cfg, m, *store, r);
  ASSERT_TRUE(moved.has_value()) << moved.error().to_string();
  EXPECT_EQ(moved->new_rev, lv_tested);
}

TEST_F(RevisionsTest, FrozenBadInput) {
  Mirrors m = fetched();
  FrozenRequest r = req(FrozenAction::move, lv_tested);
  r.tree = "libvrit";
  auto t = change_frozen(*cfg, m, *store, r);
  EXPECT_EQ(t.error().code(), StatusCode::invalid_argument);
  EXPECT_NE(t.error().hint().find("did you mean \"libvirt\"?"), std::string::npos);
  r = req(FrozenAction::move, lv_tested);
  r.branch = "nope";
  EXPECT_EQ(change_frozen(*cfg, m, *store, r).error().code(), StatusCode::invalid_argument);
  r = req(FrozenAction::move, "no-such-revision");
  EXPECT_EQ(change_frozen(*cfg, m, *store, r).error().code(), StatusCode::invalid_argument);
  r = req(FrozenAction::add, xen_release);
  r.tree = "xen";  // the tree under test of xen-4.7-testing
  auto own = change_frozen(*cfg, m, *store, r);
  EXPECT_NE(own.error().message().find("tree under test"), std::string::npos);
  EXPECT_EQ(libvirt->head_of("osstest/frozen/xen-4.7-testing"), lv_frozen);
  EXPECT_TRUE(store->frozen_history("", "", 10).value().empty());
}

/// Issue 11 item 8: a frozen-ref change killed (as kill -9 would) at `point`
/// of its way; the child opens its own store (SQLite connections do not
/// cross fork).
class FrozenCrashTest : public RevisionsTest {
 protected:
  void crash_during(const FrozenRequest& r, bool test::FaultyStore::*point) {
    Mirrors warm = fetched();  // the mirrors exist before the child runs
    pid_t child = fork();
    if (child == 0) {
      auto real = store::Store::open({dir.str("p.db")}).value();
      test::FaultyStore faulty(*real);
      faulty.*point = true;
      Mirrors m(*cfg);
      (void)change_frozen(*cfg, m, faulty, r);
      _exit(0);  // not reached
    }
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 137) << status;
    ASSERT_EQ(store->pending_frozen_changes().value().size(), 1u);
  }
};

TEST_F(FrozenCrashTest, Issue11_CrashAfterThePushIsAuditedDoneByReconciliation) {
  crash_during(req(FrozenAction::move, lv_tested), &test::FaultyStore::die_before_frozen_finish);
  EXPECT_EQ(libvirt->head_of("osstest/frozen/xen-4.7-testing"), lv_tested);  // it was pushed
  Mirrors m(*cfg);
  std::vector<std::string> lines;
  auto done = reconcile_frozen(*cfg, m, *store, [&](const std::string& l) { lines.push_back(l); }).value();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].state, "done");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("reconciled: done"), std::string::npos) << lines[0];
  auto h = store->frozen_history("libvirt", "xen-4.7-testing", 10).value();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].state, "done");
  EXPECT_EQ(h[0].action, "move");
  EXPECT_EQ(h[0].old_rev, lv_frozen);
  EXPECT_EQ(h[0].new_rev, lv_tested);
  EXPECT_EQ(h[0].who, "release-manager");
  EXPECT_NE(h[0].note.find("changer died"), std::string::npos);
  // The mirror follows without a fetch, and a second round changes nothing.
  EXPECT_EQ(m.repo("libvirt").value()->ref_target("osstest/frozen/xen-4.7-testing").value().value(), lv_tested);
  EXPECT_TRUE(reconcile_frozen(*cfg, m, *store).value().empty());
  EXPECT_EQ(store->frozen_history("", "", 10).value().size(), 1u);
}

TEST_F(FrozenCrashTest, Issue11_CrashBeforeThePushIsFailedNeverAppliedLater) {
  crash_during(req(FrozenAction::remove), &test::FaultyStore::die_after_frozen_intent);
  EXPECT_EQ(libvirt->head_of("osstest/frozen/xen-4.7-testing"), lv_frozen);  // not pushed
  // The next change settles the dead one first, and never applies it.
  Mirrors m = fetched();
  auto mv = change_frozen(*cfg, m, *store, req(FrozenAction::move, lv_tested));
  ASSERT_TRUE(mv.has_value()) << mv.error().to_string();
  EXPECT_EQ(libvirt->head_of("osstest/frozen/xen-4.7-testing"), lv_tested);
  auto h = store->frozen_history("", "", 10).value();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].action, "move");
  EXPECT_EQ(h[0].state, "done");
  EXPECT_EQ(h[1].action, "remove");
  EXPECT_EQ(h[1].state, "failed");
  EXPECT_NE(h[1].note.find("nothing changed"), std::string::npos) << h[1].note;
  EXPECT_TRUE(store->pending_frozen_changes().value().empty());
}

TEST_F(FrozenCrashTest, Issue11_UpstreamMovedAfterTheCrashIsRefused) {
  crash_during(req(FrozenAction::move, lv_tested), &test::FaultyStore::die_after_frozen_intent);
  libvirt->set_branch("osstest/frozen/xen-4.7-testing", lv_master);  // someone else, meanwhile
  Mirrors m(*cfg);
  auto done = reconcile_frozen(*cfg, m, *store).value();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].state, "refused");
  EXPECT_EQ(libvirt->head_of("osstest/frozen/xen-4.7-testing"), lv_master);
}

TEST_F(FrozenCrashTest, Issue11_ALiveChangersIntentIsLeftToIt) {
  crash_during(req(FrozenAction::move, lv_tested), &test::FaultyStore::die_before_frozen_finish);
  // A live changer holds the frozen lock (as change_frozen does to its end).
  std::filesystem::create_directories(dir.path() / "state/locks");
  int fd = ::open(dir.str("state/locks/frozen.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  Mirrors m(*cfg);
  EXPECT_TRUE(reconcile_frozen(*cfg, m, *store).value().empty());
  EXPECT_EQ(store->pending_frozen_changes().value().size(), 1u);
  ::close(fd);  // the changer is gone
  EXPECT_EQ(reconcile_frozen(*cfg, m, *store).value().size(), 1u);
  EXPECT_TRUE(store->pending_frozen_changes().value().empty());
}

TEST_F(FrozenCrashTest, Issue11_UnreachableUpstreamLeavesTheIntentPending) {
  crash_during(req(FrozenAction::move, lv_tested), &test::FaultyStore::die_before_frozen_finish);
  std::filesystem::rename(dir.path() / "up/libvirt.git", dir.path() / "up/libvirt.away");
  Mirrors m(*cfg);
  std::vector<std::string> lines;
  EXPECT_TRUE(reconcile_frozen(*cfg, m, *store, [&](const std::string& l) { lines.push_back(l); }).value().empty());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("still pending"), std::string::npos) << lines[0];
  EXPECT_EQ(store->pending_frozen_changes().value().size(), 1u);
  std::filesystem::rename(dir.path() / "up/libvirt.away", dir.path() / "up/libvirt.git");
  EXPECT_EQ(reconcile_frozen(*cfg, m, *store).value().at(0).state, "done");
}

}  // namespace
}  // namespace pushgate::revisions
