// Configuration loading: schema errors, meaning errors, includes, defaults.
// Every bad config asserts the JSON pointer and the message.

#include <gtest/gtest.h>

#include <pushgate/config.hpp>

#include "support.hpp"

namespace pushgate::config {
namespace {

using test::TempDir;
using test::write_file;

// A small valid config; cases replace parts of it.
const char* kTrees = R"("trees": [{"name": "xen", "upstream": "/srv/xen.git"}, {"name": "qemu", "upstream": "/srv/qemu.git"}])";
const char* kRecipes = R"("recipes": {"r": {"steps": [{"testid": "s", "run": "true"}]}})";
const char* kHosts = R"("hosts": [{"name": "h0", "kind": "local", "flags": ["arch-amd64"]}])";
const char* kBranches =
    R"("branches": [{"name": "xen-unstable", "tree": "xen", "input": "staging", "tested": "master", "sources": {"qemu": {"ref": "master"}}}])";
const char* kJobs = R"("jobs": [{"name": "build-amd64", "recipe": "r"}])";

std::string doc(std::initializer_list<std::string> parts) {
  std::string out = "{";
  bool first = true;
  for (const auto& p : parts) {
    out += (first ? "" : ",\n") + p;
    first = false;
  }
  return out + "}";
}

struct BadCase {
  const char* name;
  std::string text;
  std::string pointer;
  std::string message;
};

std::vector<BadCase> bad_cases() {
  return {
      {"wrong_type", doc({kTrees, R"("branches": [{"name": "b", "tree": "xen", "input": "staging", "tested": 5}])"}),
       "/branches/0/tested", "wrong type: number is not allowed here"},
      {"missing_required", doc({kTrees, R"("branches": [{"name": "b", "tree": "xen", "tested": "master"}])"}),
       "/branches/0", "missing required key \"input\""},
      {"unknown_top_key", R"({"tress": []})", "", "unknown key \"tress\""},
      {"unknown_nested_key", doc({R"("trees": [{"name": "xen", "upstream": "/x", "bogus": 1}])"}), "/trees/0",
       "unknown key \"bogus\""},
      {"whole_document_not_object", "[]", "", "wrong type: array is not allowed here"},
      {"bad_name_characters", doc({R"("trees": [{"name": "x y", "upstream": "/x"}])"}), "/trees/0/name",
       "pattern"},
      {"bad_enum", doc({R"("daemon": {"log_level": "loud"})"}), "/daemon/log_level", "enum"},
      {"api_workers_zero", doc({R"("daemon": {"api_workers": 0})"}), "/daemon/api_workers", "greater than or equal to 1"},
      {"libvirt_host_without_uri", doc({R"("hosts": [{"name": "lv", "kind": "libvirt"}])"}), "/hosts/0",
       "missing required key \"uri\""},
      {"baremetal_without_known_hosts",
       doc({R"("hosts": [{"name": "bm", "kind": "baremetal", "address": "10.0.0.5"}])"}), "/hosts/0",
       "missing required key \"known_hosts\""},
      {"frozen_pattern_without_branch",
       doc({R"("trees": [{"name": "xen", "upstream": "/x", "frozen_pattern": "osstest/frozen"}])"}),
       "/trees/0/frozen_pattern", "pattern"},
      // Issue 11 item 8: one gate per tested ref.
      {"two_branches_share_a_tested_ref",
       doc({kTrees, R"("branches": [{"name": "a", "tree": "xen", "input": "staging", "tested": "master", "sources": {"qemu": {"ref": "master"}}},
                                    {"name": "b", "tree": "xen", "input": "next", "tested": "refs/heads/master", "sources": {"qemu": {"ref": "master"}}}])"}),
       "/branches/1/tested", "pushes the same tested ref refs/heads/master as branch \"a\""},
      {"branch_unknown_tree",
       doc({kTrees, R"("branches": [{"name": "b", "tree": "xenn", "input": "staging", "tested": "master"}])"}),
       "/branches/0/tree", "unknown tree \"xenn\" (did you mean \"xen\"?)"},
      {"job_unknown_dependency", doc({kTrees, kRecipes, R"("jobs": [{"name": "t", "recipe": "r", "depends": ["build-amd"]}])"}),
       "/jobs/0/depends/0", "unknown job \"build-amd\""},
      {"branch_unknown_job", doc({kTrees, kRecipes, kJobs,
                                  R"("branches": [{"name": "b", "tree": "xen", "input": "staging", "tested": "master", "sources": {"qemu": {"ref": "master"}}, "jobs": ["build-i386"]}])"}),
       "/branches/0/jobs/0", "unknown job \"build-i386\""},
      {"job_unknown_recipe", doc({kRecipes, R"("jobs": [{"name": "t", "recipe": "rr"}])"}), "/jobs/0/recipe",
       "unknown recipe \"rr\" (did you mean \"r\"?)"},
      {"dependency_cycle",
       doc({kRecipes, R"("jobs": [{"name": "a", "recipe": "r", "depends": ["b"]}, {"name": "b", "recipe": "r", "depends": ["a"]}])"}),
       "/jobs/1/depends", "dependency cycle: a -> b -> a"},
      {"self_dependency", doc({kRecipes, R"("jobs": [{"name": "a", "recipe": "r", "depends": ["a"]}])"}),
       "/jobs/0/depends", "dependency cycle: a -> a"},
      {"invalid_input_ref",
       doc({kTrees, R"("branches": [{"name": "b", "tree": "xen", "input": "sta..ging", "tested": "master", "sources": {"qemu": {"ref": "master"}}}])"}),
       "/branches/0/input", "invalid git ref name \"sta..ging\""},
      {"invalid_tested_ref",
       doc({kTrees, R"("branches": [{"name": "b", "tree": "xen", "input": "staging", "tested": "master.lock", "sources": {"qemu": {"ref": "master"}}}])"}),
       "/branches/0/tested", "invalid git ref name \"master.lock\""},
      {"invalid_source_ref",
       doc({kTrees, R"("branches": [{"name": "b", "tree": "xen", "input": "staging", "tested": "master", "sources": {"qemu": {"ref": "a b"}}}])"}),
       "/branches/0/sources/qemu/ref", "invalid git ref name \"a b\""},
      {"input_equals_tested",
       doc({kTrees, R"("branches": [{"name": "b", "tree": "xen", "input": "master", "tested": "refs/heads/master", "sources": {"qemu": {"ref": "master"}}}])"}),
       "/branches/0/tested", "must differ from the input ref"},
      {"duplicate_tree", doc({R"("trees": [{"name": "xen", "upstream": "/x"}, {"name": "xen", "upstream": "/y"}])"}),
       "/trees/1/name", "duplicate tree name \"xen\" (first at /trees/0)"},
      {"duplicate_host", doc({R"("hosts": [{"name": "h", "kind": "local"}, {"name": "h", "kind": "local"}])"}),
       "/hosts/1/name", "duplicate host name \"h\""},
      {"duplicate_job", doc({kRecipes, R"("jobs": [{"name": "a", "recipe": "r"}, {"name": "a", "recipe": "r"}])"}),
       "/jobs/1/name", "duplicate job name \"a\""},
      {"duplicate_branch",
       doc({kTrees, R"("branches": [{"name": "b", "tree": "xen", "input": "s", "tested": "m", "sources": {"qemu": {"ref": "m"}}}, {"name": "b", "tree": "xen", "input": "s", "tested": "m", "sources": {"qemu": {"ref": "m"}}}])"}),
       "/branches/1/name", "duplicate branch name \"b\""},
      {"source_unknown_tree",
       doc({kTrees, R"("branches": [{"name": "b", "tree": "xen", "input": "s", "tested": "m", "sources": {"qemu": {"ref": "m"}, "qmeu": {"ref": "m"}}}])"}),
       "/branches/0/sources/qmeu", "unknown tree \"qmeu\""},
      {"tested_of_wrong_tree",
       doc({kTrees, R"("branches": [{"name": "xen", "tree": "xen", "input": "s", "tested": "m", "sources": {"qemu": {"ref": "m"}}}, {"name": "b", "tree": "xen", "input": "s2", "tested": "m2", "sources": {"qemu": {"tested-of": "xen"}}}])"}),
       "/branches/1/sources/qemu/tested-of", "branch \"xen\" tests tree \"xen\", not \"qemu\""},
      {"no_revision_source",
       doc({kTrees, R"("branches": [{"name": "b", "tree": "xen", "input": "s", "tested": "m"}])"}), "/branches/0",
       "no revision source for tree \"qemu\""},
      {"gate_of_other_tree",
       doc({R"("trees": [{"name": "xen", "upstream": "/x", "gate": "q"}, {"name": "qemu", "upstream": "/q"}])",
            R"("branches": [{"name": "q", "tree": "qemu", "input": "s", "tested": "m", "sources": {"xen": {"ref": "m"}}}])"}),
       "/trees/0/gate", "branch \"q\" tests tree \"qemu\", not \"xen\""},
      {"step_with_run_and_op", doc({R"("recipes": {"r": {"steps": [{"testid": "s", "run": "true", "op": "libvirt:start"}]}})"}),
       "/recipes/r/steps/0", "exactly one of \"run\""},
      {"step_with_neither", doc({R"("recipes": {"r": {"steps": [{"testid": "s"}]}})"}), "/recipes/r/steps/0",
       "exactly one of \"run\""},
      {"duplicate_testid",
       doc({R"("recipes": {"r": {"steps": [{"testid": "s", "run": "a"}, {"testid": "s", "run": "b"}]}})"}),
       "/recipes/r/steps/1/testid", "duplicate testid \"s\""},
      {"op_without_host_role",
       doc({R"("recipes": {"r": {"steps": [{"testid": "s", "op": "libvirt:start"}]}})", R"("jobs": [{"name": "t", "recipe": "r"}])"}),
       "/jobs/0/hosts", "is operation libvirt:start, which needs a host role"},
      {"bad_timeout", doc({R"("recipes": {"r": {"steps": [{"testid": "s", "run": "x", "timeout": 0}]}})"}),
       "/recipes/r/steps/0/timeout", "greater than or equal to 1"},
      // Issue 12 item 9: what the daemon would refuse or degrade on at start.
      {"port_out_of_range", doc({R"("daemon": {"listen": "127.0.0.1:99999"})"}), "/daemon/listen",
       "port 99999 is out of range"},
      {"listen_not_an_address", doc({R"("daemon": {"listen": "example.org:8480"})"}), "/daemon/listen",
       "is not an IP address"},
      {"url_unknown_scheme", doc({R"("trees": [{"name": "xen", "upstream": "htp://xenbits.xen.org/xen.git"}])"}),
       "/trees/0/upstream", "has scheme \"htp\""},
      {"url_without_host", doc({R"("trees": [{"name": "xen", "upstream": "git:///xen.git"}])"}), "/trees/0/upstream",
       "needs a host and a path"},
      {"file_url_relative", doc({R"("trees": [{"name": "xen", "upstream": "/x", "push_url": "file://srv/xen.git"}])"}),
       "/trees/0/push_url", "needs an absolute path"},
      {"allow_without_testid", doc({R"("allow": ["test-amd64-amd64-xl"])"}), "/allow/0", "pattern"},
      {"allow_with_two_spaces", doc({R"("allow": ["test-@@  guest-start"])"}), "/allow/0", "pattern"},
      {"duplicate_key", R"({"daemon": {"state_dir": "a", "state_dir": "b"}})", "/daemon/state_dir",
       "duplicate key \"state_dir\""},
      {"duplicate_key_in_array_element",
       R"({"trees": [{"name": "a", "upstream": "/a"}, {"name": "b", "upstream": "/b", "name": "c"}]})", "/trees/1/name",
       "duplicate key \"name\""},
      {"reads_need_a_token_none_configured", doc({R"("daemon": {"read_requires_token": true})"}),
       "/daemon/read_requires_token", "no token is configured"},
  };
}

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, ReportsPointerAndMessage) {
  const BadCase& c = GetParam();
  LoadResult r = load_text(c.text, "/etc/pushgate/test.json");
  ASSERT_FALSE(r.config.has_value()) << c.name;
  ASSERT_FALSE(r.errors.empty());
  bool found = false;
  std::string all;
  for (const auto& e : r.errors) {
    all += e.to_string() + "\n";
    if (e.pointer == c.pointer && e.message.find(c.message) != std::string::npos) found = true;
  }
  EXPECT_TRUE(found) << "wanted " << c.pointer << ": " << c.message << "\ngot:\n" << all;
}

INSTANTIATE_TEST_SUITE_P(Cases, BadConfig, ::testing::ValuesIn(bad_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ConfigSyntax, ReportsLineAndColumn) {
  TempDir dir;
  write_file(dir.path() / "c.json", "{\n  \"trees\": [\n    {\"name\": \"xen\",}\n  ]\n}\n");
  LoadResult r = load(dir.str("c.json"));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 3);
  EXPECT_EQ(r.errors[0].column, 20);
  EXPECT_NE(r.errors[0].message.find("syntax error"), std::string::npos);
  EXPECT_NE(r.errors[0].to_string().find("c.json:3:20:"), std::string::npos) << r.errors[0].to_string();
}

TEST(ConfigFile, MissingFileIsAnError) {
  LoadResult r = load("/nonexistent/pushgate.json");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("cannot read config file"), std::string::npos);
}

TEST(ConfigInclude, MissingIncludeNamesThePointer) {
  TempDir dir;
  write_file(dir.path() / "main.json", R"({"include": ["other.json", "gone.json"]})");
  write_file(dir.path() / "other.json", R"({"trees": []})");
  LoadResult r = load(dir.str("main.json"));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].pointer, "/include/1");
  EXPECT_NE(r.errors[0].message.find("gone.json cannot be read"), std::string::npos);
}

TEST(ConfigInclude, CycleIsAnError) {
  TempDir dir;
  write_file(dir.path() / "a.json", R"({"include": ["b.json"]})");
  write_file(dir.path() / "b.json", R"({"include": ["a.json"]})");
  LoadResult r = load(dir.str("a.json"));
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors[0].message.find("include cycle"), std::string::npos) << r.errors[0].to_string();
}

TEST(ConfigInclude, KeySetTwiceAcrossFiles) {
  TempDir dir;
  write_file(dir.path() / "a.json", R"({"include": ["b.json"], "daemon": {"listen": "127.0.0.1:1"}})");
  write_file(dir.path() / "b.json", R"({"daemon": {"listen": "127.0.0.1:2"}})");
  LoadResult r = load(dir.str("a.json"));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].pointer, "/daemon/listen");
  EXPECT_NE(r.errors[0].message.find("also set in"), std::string::npos);
}

TEST(ConfigInclude, ErrorsPointIntoTheIncludedFile) {
  TempDir dir;
  write_file(dir.path() / "main.json",
             doc({R"("include": ["more.json"])", kTrees,
                  R"("branches": [{"name": "a", "tree": "xen", "input": "s", "tested": "m", "sources": {"qemu": {"ref": "m"}}}])"}));
  write_file(dir.path() / "more.json",
             R"({"branches": [{"name": "b", "tree": "linux", "input": "s", "tested": "m"}]})");
  LoadResult r = load(dir.str("main.json"));
  ASSERT_EQ(r.errors.size(), 1u) << r.errors[0].to_string();
  EXPECT_EQ(r.errors[0].pointer, "/branches/0/tree");  // index 0 in more.json, 1 when merged
  EXPECT_NE(r.errors[0].file.find("more.json"), std::string::npos);
}

TEST(ConfigInclude, SchemaErrorsPointIntoTheIncludedFile) {
  TempDir dir;
  write_file(dir.path() / "main.json", R"({"include": ["hosts.json"]})");
  write_file(dir.path() / "hosts.json", R"({"hosts": [{"name": "h", "kind": "vm"}]})");
  LoadResult r = load(dir.str("main.json"));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].pointer, "/hosts/0/kind");
  EXPECT_NE(r.errors[0].file.find("hosts.json"), std::string::npos);
}

TEST(ConfigWarnings, FlagNoHostHasIsAWarningNotAnError) {
  LoadResult r = load_text(doc({kTrees, kRecipes, kHosts, kBranches,
                                R"("jobs": [{"name": "t", "recipe": "r", "hosts": {"host": ["arch-arm64"]}}])"}),
                           "/x/c.json");
  ASSERT_TRUE(r.config.has_value());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].pointer, "/jobs/0/hosts/host");
  EXPECT_NE(r.warnings[0].message.find("will starve"), std::string::npos);
}

TEST(ConfigGood, DefaultsAndPaths) {
  LoadResult r = load_text(doc({kTrees, kRecipes, kHosts, kBranches, kJobs}), "/etc/pushgate/c.json");
  ASSERT_TRUE(r.config.has_value()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const Config& c = *r.config;
  EXPECT_EQ(c.daemon.state_dir, "/etc/pushgate/state");
  EXPECT_EQ(c.daemon.database, "/etc/pushgate/state/pushgate.db");
  ASSERT_NE(c.find_tree("xen"), nullptr);
  EXPECT_EQ(c.find_tree("xen")->mirror, "/etc/pushgate/state/mirrors/xen.git");
  EXPECT_EQ(c.find_tree("xen")->push_url, "/srv/xen.git");
  EXPECT_EQ(c.find_tree("xen")->frozen_ref("xen-4.7-testing"), "osstest/frozen/xen-4.7-testing");
  EXPECT_EQ(c.find_job("build-amd64")->kind, "build");
  EXPECT_EQ(c.find_branch("xen-unstable")->sources.at("qemu").value, "master");
}

TEST(ConfigGood, ExampleConfigIsValid) {
  LoadResult r = load((test::source_dir() / "config/example/pushgate.json").string());
  ASSERT_TRUE(r.config.has_value()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_TRUE(r.warnings.empty()) << r.warnings[0].to_string();
  const Config& c = *r.config;
  EXPECT_EQ(c.trees.size(), 3u);
  ASSERT_NE(c.find_branch("xen-4.7-testing"), nullptr);
  EXPECT_EQ(c.find_tree("libvirt")->frozen_ref("xen-4.7-testing"), "osstest/frozen/xen-4.7-testing");
  EXPECT_EQ(c.find_host("lv-test0")->uri, "test:///default");
}

TEST(ConfigSchema, SchemaTextIsTheShippedFile) {
  EXPECT_EQ(schema_text(), test::read_file(test::source_dir() / "schemas/config.schema.json"));
}

}  // namespace
}  // namespace pushgate::config
