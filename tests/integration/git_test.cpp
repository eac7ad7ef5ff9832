// The libgit2 layer on real repositories made by the tests; the git command
// line is used only as an independent oracle and as a git:// server.

#include <gtest/gtest.h>
#include <sys/file.h>
#include <fcntl.h>

#include <atomic>
#include <vector>
#include <filesystem>
#include <mutex>
#include <thread>
#include <set>
#include <sstream>

#include <pushgate/git.hpp>

#include "support.hpp"

namespace pushgate::git {
namespace {

using test::GitRepoBuilder;
using test::TempDir;

std::string git_cli(const std::string& repo, std::vector<std::string> args, int* rc = nullptr) {
  std::vector<std::string> argv{"git", "-C", repo};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = test::run(argv);
  if (rc) *rc = r.exit_code;
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::unique_ptr<Repository> open(const std::string& path) {
  auto r = Repository::open(path);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().to_string());
  return std::move(r).value();
}

// Issue 12 item 10: a first start raced on mirror creation ("config.lock:
// File exists"). Several threads create the same mirror at once; all succeed.
TEST(GitMirror, ConcurrentCreationOfOneMirrorAllSucceed) {
  test::TempDir dir;
  for (int round = 0; round < 20; ++round) {
    std::string path = dir.str("mirrors/m" + std::to_string(round) + ".git");
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) {
      threads.emplace_back([&] {
        auto r = Repository::open_or_create_bare(path);
        if (!r) failed++;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failed.load(), 0) << "round " << round;
    int leftovers = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path() / "mirrors")) {
      leftovers += e.path().string().find(".init-") != std::string::npos;
    }
    EXPECT_EQ(leftovers, 0);
  }
}

TEST(GitRefNames, Validity) {
  EXPECT_TRUE(is_valid_ref_name("staging"));
  EXPECT_TRUE(is_valid_ref_name("osstest/frozen/xen-4.7-testing"));
  EXPECT_TRUE(is_valid_ref_name("refs/tags/RELEASE-4.7.0"));
  EXPECT_FALSE(is_valid_ref_name("sta..ging"));
  EXPECT_FALSE(is_valid_ref_name("a b"));
  EXPECT_FALSE(is_valid_ref_name("master.lock"));
  EXPECT_FALSE(is_valid_ref_name("x~1"));
  EXPECT_EQ(qualify_ref("staging"), "refs/heads/staging");
  EXPECT_EQ(qualify_ref("refs/tags/v1"), "refs/tags/v1");
}

// A history with annotated and lightweight tags, a merge, commits exactly on
// tags and commits with no tag before them.
struct DescribeRepo {
  TempDir dir;
  std::vector<std::string> commits;
  std::string path;
  DescribeRepo() : path(dir.str("d.git")) {
    GitRepoBuilder b(path);
    commits.push_back(b.commit_on("master", "c0 no tag before me"));
    commits.push_back(b.commit_on("master", "c1 lightweight tag only"));
    b.lightweight_tag("light-0.1", commits.back());
    commits.push_back(b.commit_on("master", "c2"));
    commits.push_back(b.commit_on("master", "c3 annotated"));
    b.annotated_tag("RELEASE-4.6.0", commits.back());
    for (int i = 4; i < 9; ++i) commits.push_back(b.commit_on("master", "c" + std::to_string(i)));
    b.lightweight_tag("light-4.7-rc", commits.back());
    std::string fork = commits.back();
    commits.push_back(b.commit_on("master", "c9"));
    b.annotated_tag("RELEASE-4.7.0", commits.back());
    for (int i = 10; i < 14; ++i) commits.push_back(b.commit_on("master", "c" + std::to_string(i)));
    // a side branch off the rc, with its own tag, merged back
    b.set_branch("stable", fork);
    for (int i = 0; i < 4; ++i) commits.push_back(b.commit_on("stable", "s" + std::to_string(i)));
    b.annotated_tag("RELEASE-4.6.9", commits.back());
    commits.push_back(b.commit_on("stable", "s4"));
    std::string merge = b.commit("merge stable", {b.head_of("master"), b.head_of("stable")}, {{"m", "1"}});
    b.set_branch("master", merge);
    commits.push_back(merge);
    for (int i = 0; i < 3; ++i) commits.push_back(b.commit_on("master", "after merge " + std::to_string(i)));
    b.lightweight_tag("light-tip", commits.back());
  }
};

TEST(GitDescribe, MatchesGitCommandLine) {
  DescribeRepo d;
  auto repo = open(d.path);
  ASSERT_GE(d.commits.size(), 20u);
  for (const std::string& c : d.commits) {
    for (bool tags : {false, true}) {
      int rc = 0;
      std::vector<std::string> args{"describe"};
      if (tags) args.push_back("--tags");
      args.push_back(c);
      std::string expected = git_cli(d.path, args, &rc);
      auto ours = repo->describe(c, tags ? DescribeTags::all : DescribeTags::annotated);
      if (rc != 0) {
        EXPECT_FALSE(ours.has_value()) << c << " tags=" << tags << " got " << (ours ? *ours : "");
      } else {
        ASSERT_TRUE(ours.has_value()) << c << " tags=" << tags << ": " << ours.error().to_string();
        EXPECT_EQ(*ours, expected) << c << " tags=" << tags;
      }
    }
  }
}

// Issue 13 item 3: git scales the abbreviation with the object count (and
// keeps it unique); pushgate always printed 7 hex digits. On a repository
// of 100k+ objects with many tags and merges, `describe --tags` of many
// commits equals git's, including the ones no tag precedes (both refuse).
TEST(GitDescribe, Issue13_MatchesGitOnALargeRepository) {
  TempDir dir;
  const std::string path = dir.str("big.git");
  test::generate_history(path, 34000, 250, 1000);  // about 102k objects
  auto repo = open(path);
  std::vector<std::string> all;
  {
    std::istringstream in(git_cli(path, {"rev-list", "--all"}));
    for (std::string id; in >> id;) all.push_back(id);
  }
  ASSERT_GE(all.size(), 34000u);
  // Every 97th commit, and the oldest ones (before the first tag).
  std::vector<std::string> sample;
  for (std::size_t i = 0; i + 400 < all.size(); i += 97) sample.push_back(all[i]);
  std::vector<std::string> untagged(all.end() - 5, all.end());
  std::vector<std::string> args{"describe", "--tags"};
  args.insert(args.end(), sample.begin(), sample.end());
  int rc = 0;
  std::istringstream expected(git_cli(path, args, &rc));
  ASSERT_EQ(rc, 0);
  std::size_t compared = 0;
  for (const auto& c : sample) {
    std::string want;
    std::getline(expected, want);
    auto ours = repo->describe(c, DescribeTags::all);
    ASSERT_TRUE(ours.has_value()) << c << ": " << ours.error().to_string();
    EXPECT_EQ(*ours, want) << c;
    ++compared;
  }
  EXPECT_GE(compared, 340u);
  for (const auto& c : untagged) {
    git_cli(path, {"describe", "--tags", c}, &rc);
    EXPECT_NE(rc, 0) << "git describes " << c;
    EXPECT_FALSE(repo->describe(c, DescribeTags::all).has_value()) << c;
  }
}

// describe results are cached per commit (status pages ask for the same
// few on every request); a tag added or removed by another process, loose
// or packed, is seen at the next describe.
TEST(GitDescribe, CachedResultsFollowNewAndRemovedTags) {
  TempDir dir;
  GitRepoBuilder b(dir.str("r.git"));
  std::string c1 = b.commit_on("master", "one");
  b.annotated_tag("v1", c1);
  std::string c2 = b.commit_on("master", "two");
  std::string c3 = b.commit_on("master", "three");
  auto repo = open(dir.str("r.git"));
  EXPECT_EQ(repo->describe(c3, DescribeTags::all).value(), git_cli(dir.str("r.git"), {"describe", "--tags", c3}));
  git_cli(dir.str("r.git"), {"tag", "v2", c2});  // loose, by git
  EXPECT_EQ(repo->describe(c3, DescribeTags::all).value(), git_cli(dir.str("r.git"), {"describe", "--tags", c3}));
  EXPECT_EQ(repo->describe(c3, DescribeTags::all).value().substr(0, 5), "v2-1-");
  git_cli(dir.str("r.git"), {"pack-refs", "--all"});
  git_cli(dir.str("r.git"), {"tag", "-d", "v2"});  // now from packed-refs
  EXPECT_EQ(repo->describe(c3, DescribeTags::all).value().substr(0, 5), "v1-2-");
  git_cli(dir.str("r.git"), {"tag", "-d", "v1"});
  EXPECT_FALSE(repo->describe(c3, DescribeTags::all).has_value());
}

TEST(GitHistory, ResolveAncestryMergeBaseAndLog) {
  DescribeRepo d;
  auto repo = open(d.path);
  std::string master = git_cli(d.path, {"rev-parse", "master"});
  EXPECT_EQ(repo->resolve("master").value(), master);
  EXPECT_EQ(repo->resolve("RELEASE-4.7.0").value(), git_cli(d.path, {"rev-parse", "RELEASE-4.7.0^{commit}"}));
  EXPECT_EQ(repo->resolve(master.substr(0, 10)).value(), master);
  EXPECT_EQ(repo->resolve("master~2").value(), git_cli(d.path, {"rev-parse", "master~2"}));
  EXPECT_EQ(repo->resolve("no-such-branch").error().code(), StatusCode::not_found);
  EXPECT_TRUE(repo->is_ancestor(d.commits[0], master).value());
  EXPECT_TRUE(repo->is_ancestor(master, master).value());
  EXPECT_FALSE(repo->is_ancestor(master, d.commits[0]).value());
  EXPECT_EQ(repo->merge_base("master~4", "stable").value(), git_cli(d.path, {"merge-base", "master~4", "stable"}));
  auto log = repo->log("RELEASE-4.7.0", "master").value();
  std::string expected = git_cli(d.path, {"rev-list", "RELEASE-4.7.0..master"});
  std::istringstream in(expected);
  std::string line;
  std::size_t n = 0;
  std::set<std::string> ours;
  for (const auto& c : log) ours.insert(c.id);
  while (std::getline(in, line)) {
    ++n;
    EXPECT_TRUE(ours.count(line)) << line;
  }
  EXPECT_EQ(log.size(), n);
  EXPECT_EQ(log.front().subject, "after merge 2");
  EXPECT_EQ(log.front().author_name, "Test Author");
  EXPECT_EQ(repo->log("", "master", 3).value().size(), 3u);
}

TEST(GitRefs, CompareAndSwapUpdate) {
  TempDir dir;
  GitRepoBuilder b(dir.str("r.git"));
  std::string a = b.commit_on("master", "a");
  std::string c = b.commit_on("master", "b");
  auto repo = open(dir.str("r.git"));
  ASSERT_TRUE(repo->update_ref("frozen/x", a, std::nullopt, "create").has_value());
  auto again = repo->update_ref("frozen/x", c, std::nullopt, "create twice");
  EXPECT_EQ(again.error().code(), StatusCode::conflict);
  auto wrong = repo->update_ref("frozen/x", c, c, "wrong old");
  EXPECT_EQ(wrong.error().code(), StatusCode::conflict);
  EXPECT_EQ(repo->ref_target("frozen/x").value().value(), a);
  ASSERT_TRUE(repo->update_ref("frozen/x", c, a, "move").has_value());
  EXPECT_EQ(repo->ref_target("frozen/x").value().value(), c);
  EXPECT_EQ(repo->delete_ref("frozen/x", a).error().code(), StatusCode::conflict);
  ASSERT_TRUE(repo->delete_ref("frozen/x", c).has_value());
  EXPECT_FALSE(repo->ref_target("frozen/x").value().has_value());
  EXPECT_EQ(repo->update_ref("bad..name", c, std::nullopt, "x").error().code(), StatusCode::invalid_argument);
}

TEST(GitFetch, FileUrlAndUnreachableUpstream) {
  TempDir dir;
  GitRepoBuilder up(dir.str("up.git"));
  std::string a = up.commit_on("master", "a");
  up.annotated_tag("v1", a);
  auto mirror = Repository::open_or_create_bare(dir.str("mirror.git")).value();
  std::vector<std::string> lines;
  ASSERT_TRUE(mirror->fetch("file://" + dir.str("up.git"), [&](const std::string& l) { lines.push_back(l); }).has_value());
  EXPECT_FALSE(lines.empty());
  EXPECT_EQ(mirror->ref_target("master").value().value(), a);
  EXPECT_EQ(mirror->describe("master").value(), "v1");
  std::string b2 = up.commit_on("master", "b");
  ASSERT_TRUE(mirror->fetch(dir.str("up.git")).has_value());  // plain path works too
  EXPECT_EQ(mirror->ref_target("master").value().value(), b2);
  auto bad = mirror->fetch("file://" + dir.str("nowhere.git"));
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("fetch from"), std::string::npos);
  EXPECT_EQ(mirror->ref_target("master").value().value(), b2);  // untouched
}

/// Objects stored in a repository (loose and packed), by `git count-objects`.
long stored_objects(const std::string& repo) {
  std::istringstream in(git_cli(repo, {"count-objects", "-v"}));
  long total = 0;
  for (std::string key, value; in >> key >> value;) {
    if (key == "count:" || key == "in-pack:") total += std::stol(value);
  }
  return total;
}

// Issue 13 item 1: libgit2's local transport sent, for one new commit, a
// pack of objects the mirror already had (114k of 400k on a 100k-commit
// repository), and progress said one line per ref. One new commit now
// brings its own few objects, for a path upstream and a file:// one; the
// progress is a handful of lines whatever the number of refs.
TEST(GitFetch, Issue13_OneNewCommitBringsOnlyItsObjectsAndProgressIsBrief) {
  TempDir dir;
  GitRepoBuilder up(dir.str("up.git"));
  for (int i = 0; i < 150; ++i) {
    up.commit_on("master", "commit " + std::to_string(i),
                 {{"f" + std::to_string(i % 20), "version " + std::to_string(i) + "\n"}, {"common", std::to_string(i)}});
    if (i % 4 == 0) up.annotated_tag("v" + std::to_string(i), up.head_of("master"));
  }
  for (const std::string& url : {dir.str("up.git"), "file://" + dir.str("up.git")}) {
    std::string mirror = dir.str(url.starts_with("file") ? "m-file.git" : "m-path.git");
    auto repo = Repository::open_or_create_bare(mirror).value();
    std::vector<std::string> lines;
    ASSERT_TRUE(repo->fetch(url, [&](const std::string& l) { lines.push_back(l); }).has_value());
    EXPECT_LE(lines.size(), 20u) << "one line per ref?";
    ASSERT_FALSE(lines.empty());
    EXPECT_NE(lines.back().find("39 new, 0 updated, 0 deleted"), std::string::npos) << lines.back();
    EXPECT_EQ(git_cli(mirror, {"rev-parse", "master"}), up.head_of("master"));
    long before = stored_objects(mirror);
    EXPECT_EQ(before, stored_objects(dir.str("up.git")));
    std::string c = up.commit_on("master", "one more", {{"f3", "changed for " + url + "\n"}});
    lines.clear();
    ASSERT_TRUE(repo->fetch(url, [&](const std::string& l) { lines.push_back(l); }).has_value());
    // The commit, its tree and the changed file: 3 objects.
    EXPECT_EQ(stored_objects(mirror) - before, 3) << url;
    EXPECT_EQ(repo->resolve("master").value(), c);
    EXPECT_NE(lines.back().find("0 new, 1 updated"), std::string::npos) << lines.back();
  }
}

TEST(GitFetch, RefsDeletedUpstreamArePrunedFromTheMirror) {
  TempDir dir;
  GitRepoBuilder up(dir.str("up.git"));
  std::string a = up.commit_on("master", "a");
  up.set_branch("osstest/frozen/xen-4.7-testing", a);
  up.lightweight_tag("v0", a);
  auto mirror = Repository::open_or_create_bare(dir.str("mirror.git")).value();
  ASSERT_TRUE(mirror->fetch(dir.str("up.git")).has_value());
  ASSERT_TRUE(mirror->ref_target("osstest/frozen/xen-4.7-testing").value().has_value());
  auto del = test::run({"git", "--git-dir", dir.str("up.git"), "branch", "-D", "osstest/frozen/xen-4.7-testing"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  ASSERT_EQ(test::run({"git", "--git-dir", dir.str("up.git"), "tag", "-d", "v0"}).exit_code, 0);
  ASSERT_TRUE(mirror->fetch(dir.str("up.git")).has_value());
  EXPECT_FALSE(mirror->ref_target("osstest/frozen/xen-4.7-testing").value().has_value());
  EXPECT_FALSE(mirror->ref_target("refs/tags/v0").value().has_value());
  EXPECT_EQ(mirror->ref_target("master").value().value(), a);
}

TEST(GitFetch, ConcurrentFetchesIntoOneMirrorAllSucceed) {
  // Branches sharing a tree poll at the same moment (daemon threads, or a
  // daemon and a `pushgate flight run`): their fetches must not trip over
  // each other's ref locks.
  TempDir dir;
  GitRepoBuilder up(dir.str("up.git"));
  for (int b = 0; b < 20; ++b) up.commit_on("b" + std::to_string(b), "start");
  ASSERT_TRUE(Repository::open_or_create_bare(dir.str("mirror.git")).value()->fetch(dir.str("up.git")).has_value());
  std::atomic<int> failures{0};
  std::string first_error;
  std::mutex m;
  auto fetcher = [&] {
    auto mirror = Repository::open_or_create_bare(dir.str("mirror.git")).value();
    for (int i = 0; i < 15; ++i) {
      auto r = mirror->fetch(dir.str("up.git"));
      if (!r) {
        ++failures;
        std::lock_guard<std::mutex> g(m);
        if (first_error.empty()) first_error = r.error().message();
      }
    }
  };
  std::thread a(fetcher), b(fetcher), c(fetcher);
  for (int round = 0; round < 10; ++round) {
    for (int br = 0; br < 20; ++br) up.commit_on("b" + std::to_string(br), "change " + std::to_string(round));
  }
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(failures.load(), 0) << first_error;
  auto mirror = Repository::open_or_create_bare(dir.str("mirror.git")).value();
  ASSERT_TRUE(mirror->fetch(dir.str("up.git")).has_value());
  EXPECT_EQ(mirror->ref_target("b7").value().value(), up.head_of("b7"));
}

TEST(GitPush, FastForwardOnlyAndRefusedWhenRemoteMoved) {
  TempDir dir;
  GitRepoBuilder up(dir.str("up.git"));
  std::string a = up.commit_on("master", "a");
  up.set_branch("staging", a);
  auto mirror = Repository::open_or_create_bare(dir.str("mirror.git")).value();
  ASSERT_TRUE(mirror->fetch(dir.str("up.git")).has_value());
  // A new commit arrives on staging upstream; the mirror sees it.
  std::string b = up.commit_on("staging", "b");
  ASSERT_TRUE(mirror->fetch(dir.str("up.git")).has_value());
  std::string url = "file://" + dir.str("up.git");
  ASSERT_TRUE(mirror->push(url, "master", a, b).has_value());
  EXPECT_EQ(up.head_of("master"), b);
  // Pushing again from the stale value is refused: the remote is at b now.
  auto stale = mirror->push(url, "master", a, b);
  ASSERT_FALSE(stale.has_value());
  EXPECT_EQ(stale.error().code(), StatusCode::conflict);
  // A non-descendant is refused before anything is sent.
  std::string side = up.commit("side", {a});
  up.set_branch("side", side);
  ASSERT_TRUE(mirror->fetch(dir.str("up.git")).has_value());
  auto nonff = mirror->push(url, "master", b, side);
  ASSERT_FALSE(nonff.has_value());
  EXPECT_NE(nonff.error().message().find("does not descend"), std::string::npos);
  EXPECT_EQ(up.head_of("master"), b);
}

TEST(GitPush, CreateForceAndDeleteRemoteRefs) {
  TempDir dir;
  GitRepoBuilder up(dir.str("up.git"));
  std::string a = up.commit_on("master", "a");
  std::string b = up.commit_on("master", "b");
  auto mirror = Repository::open_or_create_bare(dir.str("mirror.git")).value();
  ASSERT_TRUE(mirror->fetch(dir.str("up.git")).has_value());
  std::string url = dir.str("up.git");
  ASSERT_TRUE(mirror->push_ref(url, "frozen/x", std::nullopt, b, false).has_value());
  EXPECT_EQ(mirror->remote_ref(url, "frozen/x").value().value(), b);
  EXPECT_EQ(mirror->push_ref(url, "frozen/x", std::nullopt, a, false).error().code(), StatusCode::conflict);
  ASSERT_TRUE(mirror->push_ref(url, "frozen/x", b, a, false).has_value());  // backwards, forced
  EXPECT_EQ(up.head_of("frozen/x"), a);
  ASSERT_TRUE(mirror->push_ref(url, "frozen/x", a, std::nullopt, false).has_value());
  EXPECT_EQ(up.head_of("frozen/x"), "");
}

TEST(GitDaemonTransport, FetchAndPushOverGitProtocol) {
  TempDir dir;
  GitRepoBuilder up(dir.str("srv/xen.git"));
  std::string a = up.commit_on("master", "a");
  up.set_branch("staging", a);
  std::string b = up.commit_on("staging", "b");
  test::run({"git", "-C", dir.str("srv/xen.git"), "config", "daemon.receivepack", "true"});
  test::GitDaemon daemon(dir.str("srv"));
  ASSERT_TRUE(daemon.ok()) << "git daemon did not start";
  auto mirror = Repository::open_or_create_bare(dir.str("mirror.git")).value();
  ASSERT_TRUE(mirror->fetch(daemon.url("xen.git")).has_value());
  EXPECT_EQ(mirror->ref_target("staging").value().value(), b);
  auto pushed = mirror->push(daemon.url("xen.git"), "master", a, b);
  ASSERT_TRUE(pushed.has_value()) << pushed.error().to_string();
  EXPECT_EQ(up.head_of("master"), b);
  // Someone else moves master on the server: our stale push is refused.
  std::string c = up.commit_on("master", "c by someone else");
  auto refused = mirror->push(daemon.url("xen.git"), "master", a, b);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), StatusCode::conflict);
  EXPECT_EQ(up.head_of("master"), c);
  auto unreachable = mirror->fetch("git://127.0.0.1:" + std::to_string(test::free_port()) + "/xen.git");
  EXPECT_FALSE(unreachable.has_value());
  EXPECT_EQ(mirror->ref_target("staging").value().value(), b);
}

// Issue 11 item 1 over a smart transport: the mirror's writer lock is held
// while the push starts (as during a fetch) and someone moves the ref on the
// server meanwhile. The server compares the old value we advertised: their
// update or ours wins, never both.
TEST(GitDaemonTransport, Issue11_ConcurrentWriterInTheCompareAndSwapWindow) {
  TempDir dir;
  GitRepoBuilder up(dir.str("srv/xen.git"));
  std::string base = up.commit_on("master", "base");
  up.set_branch("staging", base);
  std::string ours = up.commit_on("staging", "ours");
  std::string theirs = up.commit("theirs", {base});
  test::run({"git", "-C", dir.str("srv/xen.git"), "config", "daemon.receivepack", "true"});
  test::GitDaemon daemon(dir.str("srv"));
  ASSERT_TRUE(daemon.ok()) << "git daemon did not start";
  auto mirror = Repository::open_or_create_bare(dir.str("mirror.git")).value();
  ASSERT_TRUE(mirror->fetch(daemon.url("xen.git")).has_value());
  int fd = ::open(dir.str("mirror.git/pushgate.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  Result<void> pushed = Status::internal("not run");
  std::thread t([&] {
    auto repo = Repository::open(dir.str("mirror.git")).value();
    pushed = repo->push(daemon.url("xen.git"), "refs/heads/master", base, ours);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto moved = test::run({"git", "--git-dir=" + dir.str("srv/xen.git"), "update-ref", "refs/heads/master", theirs, base});
  ::flock(fd, LOCK_UN);
  ::close(fd);
  t.join();
  if (moved.exit_code == 0) {
    EXPECT_FALSE(pushed.has_value()) << "our push overwrote their " << theirs;
    EXPECT_EQ(up.head_of("master"), theirs);
  } else {
    EXPECT_TRUE(pushed.has_value()) << pushed.error().to_string();
    EXPECT_EQ(up.head_of("master"), ours);
  }
}

}  // namespace
}  // namespace pushgate::git
