// ABI records end to end (issue 18): a step writes JSON records, the
// verdict compares each with the baseline flight's record of the same key
// and job, a changed one blocks the push with a field-by-field diff, a new
// key does not, and after `pushgate abi accept` the next flight pushes.
// Real repositories, real `pushgate` processes, a real SQLite file.

#include <gtest/gtest.h>
#include <signal.h>

#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "support.hpp"

namespace pushgate {
namespace {

using nlohmann::json;
using test::TempDir;

const char* kJob = "test-amd64-amd64-qemuu-abi";

class Abi : public ::testing::Test {
 protected:
  TempDir dir;
  std::unique_ptr<test::GitRepoBuilder> xen;

  /// The recorder stands in for QEMU: it copies the tree's records into
  /// $PUSHGATE_ARTIFACTS, so what a commit "changes in QEMU" is what the
  /// records say.
  void SetUp() override {
    xen = std::make_unique<test::GitRepoBuilder>(dir.str("up/xen.git"));
    xen->commit_on("master", "xen: import", records(pc72(), machine72(), false));
    xen->set_branch("staging", xen->head_of("master"));
    // (Test trees are flat: "rec+alias+pc.json" is the record alias/pc.)
    std::string copy =
        "cd $PUSHGATE_WORKDIR && rm -rf t && mkdir t &&"
        " git --git-dir=$PUSHGATE_MIRROR_XEN archive $PUSHGATE_RV_revision_xen | tar -x -C t &&"
        " for f in t/rec+*; do [ -e \"$f\" ] || continue; k=$(basename \"$f\" | cut -c5- | tr + /);"
        " mkdir -p \"$(dirname \"$PUSHGATE_ARTIFACTS/$k\")\" && cp \"$f\" \"$PUSHGATE_ARTIFACTS/$k\" || exit 1; done";
    json steps = json::array({{{"testid", "guest-start"}, {"run", "true"}},
                              {{"testid", "abi-record"}, {"run", copy}}});
    // Broken records must not quarantine the one host: the test breaks it on purpose.
    json cfg = {{"daemon", {{"state_dir", "state"}, {"quarantine_after", 100}}},
                {"trees", {{{"name", "xen"}, {"upstream", "up/xen.git"}}}},
                {"branches", {{{"name", "xen-unstable"}, {"tree", "xen"}, {"input", "staging"}, {"tested", "master"}}}},
                {"recipes", {{"abi", {{"steps", steps}}}}},
                {"jobs", {{{"name", kJob}, {"recipe", "abi"}, {"hosts", {{"host", {"x86"}}}}}}},
                {"hosts", {{{"name", "h0"}, {"kind", "local"}, {"flags", {"x86"}}}}}};
    test::write_file(dir.path() / "c.json", cfg.dump(2));
    std::filesystem::create_directories(dir.path() / "state");
  }

  static std::string pc72() { return R"({"alias": "pc", "machine": "pc-i440fx-7.2"})"; }
  static std::string machine72() {
    return R"({"name": "pc-i440fx-7.2", "properties": {"acpi": "on", "smbus": true}, "devices": ["i440FX", "PIIX3"]})";
  }
  static std::map<std::string, std::string> records(const std::string& pc, const std::string& machine, bool cpu) {
    std::map<std::string, std::string> files{{"rec+alias+pc.json", pc + "\n"},
                                             {"rec+machine+pc-i440fx-7.2.json", machine + "\n"}};
    if (cpu) files["rec+cpu+host-model.json"] = R"({"model": "host", "props": {"vmx": true}})" "\n";
    return files;
  }

  test::RunResult pg(std::vector<std::string> a) {
    a.insert(a.begin(), {"--config", dir.str("c.json")});
    return test::pushgate(a);
  }

  int flight(json& verdict) {
    auto r = pg({"flight", "run", "xen-unstable", "--json"});
    EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 3 || r.exit_code == 5) << r.err;
    EXPECT_EQ(test::schema_errors("cli/flight-run.schema.json", r.out), "");
    verdict = json::parse(r.out)["verdict"];
    EXPECT_EQ(test::schema_errors("verdict.schema.json", verdict.dump()), "");
    return r.exit_code;
  }

  static const json* abi_of(const json& v, const std::string& key) {
    for (const auto& a : v["abi"]) {
      if (a["key"] == key) return &a;
    }
    return nullptr;
  }
  static const json* item(const json& v, const std::string& testid) {
    for (const auto& s : v["steps"]) {
      if (s["testid"] == testid) return &s;
    }
    return nullptr;
  }
};

TEST_F(Abi, Issue18_ChangedRecordBlocksUntilAcceptedTheSameOrANewKeyDoesNot) {
  json v;
  // 1: the baseline flight of master records alias/pc and the machine type.
  ASSERT_EQ(flight(v), 0) << v.dump(2);
  ASSERT_NE(abi_of(v, "alias/pc"), nullptr) << v.dump(2);
  EXPECT_EQ((*abi_of(v, "alias/pc"))["state"], "new");

  // 2: the same records written another way (keys reordered, spaced), and a
  // key recorded for the first time: no ABI item, pushed.
  xen->commit_on("staging", "qemu: cosmetic",
                 records(R"({ "machine" : "pc-i440fx-7.2",   "alias" : "pc" })", machine72(), true));
  ASSERT_EQ(flight(v), 0) << v.dump(2);
  EXPECT_TRUE(v["pushed"].get<bool>()) << v.dump(2);
  EXPECT_EQ(v["outcome"], "perfect") << v.dump(2);
  EXPECT_EQ((*abi_of(v, "alias/pc"))["state"], "same");
  EXPECT_EQ((*abi_of(v, "alias/pc"))["reference"], 1);
  EXPECT_EQ((*abi_of(v, "machine/pc-i440fx-7.2"))["state"], "same");
  ASSERT_NE(abi_of(v, "cpu/host-model"), nullptr);
  EXPECT_EQ((*abi_of(v, "cpu/host-model"))["state"], "new");
  EXPECT_EQ(item(v, "abi cpu/host-model"), nullptr);
  EXPECT_TRUE(v["steps"].empty()) << v.dump(2);
}

TEST_F(Abi, Issue18_AliasExpandsToANewMachineTypeBlocksThenAcceptIsAuditedAndTheNextFlightPushes) {
  // The first content of every key is in the baseline.
  xen->commit_on("master", "qemu: cpu record", records(pc72(), machine72(), true));
  xen->set_branch("staging", xen->head_of("master"));
  json v;
  ASSERT_EQ(flight(v), 0);  // 1: baseline
  xen->commit_on("staging", "unrelated", records(pc72(), machine72(), true));
  xen->commit_on("staging", "unrelated too", {{"README", "hello\n"}});
  ASSERT_EQ(flight(v), 0);  // 2: same records, pushed
  ASSERT_TRUE(v["pushed"].get<bool>()) << v.dump(2);
  for (const auto& a : v["abi"]) EXPECT_EQ(a["state"], "same") << a.dump();
  EXPECT_EQ(item(v, "abi alias/pc"), nullptr);

  // 3: `pc` now expands to pc-i440fx-8.0 and the 7.2 machine lost smbus:
  // blocking ABI items with the diff; not pushed.
  xen->commit_on("staging", "qemu: new default machine",
                 records(R"({"alias": "pc", "machine": "pc-i440fx-8.0"})",
                         R"({"name": "pc-i440fx-7.2", "properties": {"acpi": "on"}, "devices": ["i440FX", "PIIX3", "pvpanic"]})",
                         true));
  ASSERT_EQ(flight(v), 3) << v.dump(2);
  EXPECT_FALSE(v["pushed"].get<bool>());
  EXPECT_EQ(v["outcome"], "regressions");
  ASSERT_EQ(v["flight"], 3);  // and its regressions are retested in flight 4
  const json* pc = item(v, "abi alias/pc");
  ASSERT_NE(pc, nullptr) << v.dump(2);
  EXPECT_EQ((*pc)["summary"], "changed vs. 2");
  EXPECT_EQ((*pc)["category"], "blocking");
  EXPECT_EQ((*pc)["cited"], 2);
  const json* pca = abi_of(v, "alias/pc");
  ASSERT_NE(pca, nullptr);
  EXPECT_EQ((*pca)["state"], "changed");
  ASSERT_EQ((*pca)["changes"].size(), 1u) << pca->dump(2);
  EXPECT_EQ((*pca)["changes"][0], json({{"path", "/machine"}, {"op", "replace"}, {"old", "\"pc-i440fx-7.2\""},
                                       {"new", "\"pc-i440fx-8.0\""}}));
  const json* m = abi_of(v, "machine/pc-i440fx-7.2");
  ASSERT_NE(m, nullptr);
  json changes = (*m)["changes"];
  EXPECT_NE(std::find(changes.begin(), changes.end(),
                      json({{"path", "/properties/smbus"}, {"op", "remove"}, {"old", "true"}, {"new", ""}})),
            changes.end())
      << changes.dump(2);
  EXPECT_NE(std::find(changes.begin(), changes.end(),
                      json({{"path", "/devices/2"}, {"op", "add"}, {"old", ""}, {"new", "\"pvpanic\""}})),
            changes.end())
      << changes.dump(2);
  EXPECT_EQ(item(v, "abi cpu/host-model"), nullptr) << "recorded the same: not an item";
  auto text = pg({"flight", "report", "3"});
  EXPECT_NE(text.out.find("abi alias/pc: changed vs. 2"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("/machine: \"pc-i440fx-7.2\" -> \"pc-i440fx-8.0\""), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("- /properties/smbus: true"), std::string::npos) << text.out;

  // What the CLI shows of the records.
  auto list = pg({"abi", "list", "3", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(test::schema_errors("cli/abi-list.schema.json", list.out), "");
  EXPECT_EQ(json::parse(list.out).size(), 3u);
  auto show = pg({"abi", "show", "3", kJob, "alias/pc"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(json::parse(show.out)["machine"], "pc-i440fx-8.0");
  auto diff = pg({"abi", "show", "3", kJob, "alias/pc", "--against", "2", "--json"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_EQ(test::schema_errors("cli/abi-diff.schema.json", diff.out), "");
  EXPECT_EQ(json::parse(diff.out).size(), 1u);
  // The digest is the git blob id of the stored file: anyone can check it.
  json rec = json::parse(list.out)[0];
  auto hashed = test::run({"git", "hash-object", rec["path"].get<std::string>()});
  EXPECT_EQ(hashed.out.substr(0, 40), rec["digest"].get<std::string>());
  auto shown = pg({"flight", "show", "3"});
  EXPECT_NE(shown.out.find("ABI record alias/pc"), std::string::npos) << shown.out;
  {
    // The flight page lists the records, the changed ones with their fields.
    int port = test::free_port();
    json cfg = json::parse(test::read_file(dir.path() / "c.json"));
    cfg["daemon"]["listen"] = "127.0.0.1:" + std::to_string(port);
    test::write_file(dir.path() / "c.json", cfg.dump(2));
    test::Background daemon({test::pushgate_binary(), "--config", dir.str("c.json"), "daemon"}, dir.str("daemon.log"));
    ASSERT_TRUE(test::wait_for_port(port, 10000)) << test::read_file(dir.path() / "daemon.log");
    auto page = test::http(port, "GET", "/flights/3");
    EXPECT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("<table id=\"abi\">"), std::string::npos) << page.body;
    EXPECT_NE(page.body.find("alias&#x2F;pc</td><td>"), std::string::npos) << page.body;
    EXPECT_NE(page.body.find("&quot;pc-i440fx-8.0&quot;"), std::string::npos) << page.body;
    auto report = test::http(port, "GET", "/api/v1/flights/3/report");
    EXPECT_EQ(report.status, 200);
    EXPECT_EQ(test::schema_errors("verdict.schema.json", report.body), "");
    daemon.signal(SIGTERM);
    EXPECT_EQ(daemon.wait(30000), 0) << test::read_file(dir.path() / "daemon.log");
  }

  // Bad acceptances are refused and record nothing.
  EXPECT_EQ(pg({"abi", "accept", "xen-unstable", "alias/pc"}).exit_code, 2);  // no --reason
  EXPECT_EQ(pg({"abi", "accept", "xen-unstable", "alias/pc", "--reason", ""}).exit_code, 2);
  EXPECT_EQ(pg({"abi", "accept", "nope", "alias/pc", "--reason", "x"}).exit_code, 2);
  EXPECT_EQ(pg({"abi", "accept", "xen-unstable", "alias/none", "--reason", "x"}).exit_code, 2);
  EXPECT_EQ(pg({"abi", "accept", "xen-unstable", "../x", "--reason", "x"}).exit_code, 2);
  EXPECT_EQ(json::parse(pg({"abi", "history", "xen-unstable", "--json"}).out).size(), 0u);

  // 5: the same revisions again, still blocked (nothing was accepted).
  ASSERT_EQ(flight(v), 3) << v.dump(2);
  ASSERT_EQ(v["flight"], 5);  // retested in 6

  // The release manager accepts both changes.
  auto acc = pg({"--as", "release-manager", "abi", "accept", "xen-unstable", "alias/pc", "--reason",
                 "QEMU 8.0's pc is pc-i440fx-8.0 on purpose"});
  ASSERT_EQ(acc.exit_code, 0) << acc.err;
  EXPECT_NE(acc.out.find("as recorded in flight 6"), std::string::npos) << acc.out;
  ASSERT_EQ(pg({"abi", "accept", "xen-unstable", "machine/pc-i440fx-7.2", "--flight", "3", "--reason", "smbus moved"})
                .exit_code,
            0);
  auto hist = pg({"abi", "history", "xen-unstable", "--json"});
  EXPECT_EQ(test::schema_errors("cli/abi-history.schema.json", hist.out), "");
  json h = json::parse(hist.out);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0]["who"], "release-manager");
  EXPECT_EQ(h[0]["key"], "alias/pc");
  EXPECT_EQ(h[0]["old_flight"], 2);
  EXPECT_EQ(h[1]["flight"], 3);

  // 7: the next flight pushes; the records are "accepted".
  ASSERT_EQ(flight(v), 0) << v.dump(2);
  ASSERT_EQ(v["flight"], 7);
  EXPECT_TRUE(v["pushed"].get<bool>()) << v.dump(2);
  EXPECT_EQ((*abi_of(v, "alias/pc"))["state"], "accepted");
  EXPECT_EQ(item(v, "abi alias/pc"), nullptr);

  // 8: flight 7 is the baseline now: the new records are simply the same...
  xen->commit_on("staging", "more", {{"README", "again\n"}});
  ASSERT_EQ(flight(v), 0) << v.dump(2);
  EXPECT_EQ((*abi_of(v, "alias/pc"))["state"], "same");
  EXPECT_EQ((*abi_of(v, "alias/pc"))["reference"], 7);
  // ...and going back to the old machine type is a change again.
  xen->commit_on("staging", "qemu: revert", records(pc72(), machine72(), true));
  ASSERT_EQ(flight(v), 3) << v.dump(2);
  ASSERT_NE(item(v, "abi alias/pc"), nullptr);
  EXPECT_EQ((*item(v, "abi alias/pc"))["summary"], "changed vs. 8");
}

TEST_F(Abi, Issue18_ARecordThatIsNotARecordBreaksTheStepNotTheCode) {
  json v;
  ASSERT_EQ(flight(v), 0);
  for (const auto& [name, content] : std::vector<std::pair<std::string, std::string>>{
           {"rec+bad.json", "{not json\n"}, {"rec+notes.txt", "a note\n"}, {"rec+.hidden+x.json", "{}\n"},
           {"rec+number.json", "42\n"}}) {
    SCOPED_TRACE(name);
    xen->set_branch("staging", xen->head_of("master"));
    xen->commit_on("staging", "bad record " + name, {{name, content}});
    ASSERT_EQ(flight(v), 3) << v.dump(2);
    EXPECT_EQ(v["outcome"], "problems") << "harness trouble, never a regression: " << v.dump(2);
    for (const auto& j : v["jobs"]) EXPECT_EQ(j["status"], "broken");
    auto log = pg({"flight", "log", std::to_string(v["flight"].get<int>()), kJob, "2"});
    EXPECT_NE(log.out.find("ABI records:"), std::string::npos) << log.out;
  }
}

// The shipped recorder (config/example/scripts/abi-record) on the real QEMU,
// and on the real libvirtd when it runs: a commit that changes a device
// default of pc-i440fx-7.2 (here: what the tree passes QEMU, standing in for
// a QEMU change) blocks with the property that changed; accepted, it pushes.
TEST_F(Abi, Issue18_RealQemuRecorderFindsTheChangedDevicePropertyOfAMachineType) {
  const std::string recorder = (test::source_dir() / "config/example/scripts/abi-record").string();
  const bool libvirtd = test::run({"virsh", "-c", "qemu:///system", "uri"}).exit_code == 0;
  std::string args = "git --git-dir=$PUSHGATE_MIRROR_XEN show $PUSHGATE_RV_revision_xen:QEMU_ARGS";
  json steps = json::array({{{"testid", "abi-qemu"},
                             {"run", recorder + " qemu --machine pc --cpu qemu64 $(" + args + ")"},
                             {"timeout", 120}}});
  if (libvirtd) steps.push_back({{"testid", "abi-libvirt"}, {"run", recorder + " libvirt --uri qemu:///system"}, {"timeout", 300}});
  json cfg = json::parse(test::read_file(dir.path() / "c.json"));
  cfg["recipes"]["abi"]["steps"] = steps;
  test::write_file(dir.path() / "c.json", cfg.dump(2));
  xen->commit_on("master", "qemu args", {{"QEMU_ARGS", "\n"}});
  xen->set_branch("staging", xen->head_of("master"));

  json v;
  ASSERT_EQ(flight(v), 0) << v.dump(2);
  std::set<std::string> keys;
  for (const auto& a : v["abi"]) keys.insert(a["key"].get<std::string>());
  EXPECT_TRUE(keys.count("alias/pc") && keys.count("alias/q35") && keys.count("machine/pc-i440fx-7.2") &&
              keys.count("cpu/qemu64"))
      << v["abi"].dump(2);
  if (libvirtd) {
    EXPECT_TRUE(keys.count("libvirt/machine-pc") && keys.count("libvirt/cpu-host-model")) << v["abi"].dump(2);
  } else {
    std::cerr << "no libvirtd for qemu:///system: the libvirt recorder was not run\n";
  }
  auto show = pg({"abi", "show", "1", kJob, "alias/pc"});
  EXPECT_EQ(json::parse(show.out)["machine"], "pc-i440fx-7.2") << show.out;

  xen->commit_on("staging", "virtio-net: fewer vectors", {{"QEMU_ARGS", "--qemu-arg=-global --qemu-arg=virtio-net-pci.vectors=3\n"}});
  ASSERT_EQ(flight(v), 3) << v.dump(2);
  const json* m = item(v, "abi machine/pc-i440fx-7.2");
  ASSERT_NE(m, nullptr) << v.dump(2);
  EXPECT_EQ((*m)["category"], "blocking");
  const json* rec = abi_of(v, "machine/pc-i440fx-7.2");
  ASSERT_EQ((*rec)["changes"].size(), 1u) << rec->dump(2);
  const json& change = (*rec)["changes"][0];
  EXPECT_TRUE(change["path"].get<std::string>().ends_with("/dev virtio-net-pci/vectors")) << change.dump();
  EXPECT_EQ(change["old"], "\"4 (0x4)\"");
  EXPECT_EQ(change["new"], "\"3 (0x3)\"");
  EXPECT_EQ(item(v, "abi alias/pc"), nullptr) << "the alias did not change";
  EXPECT_EQ(item(v, "abi cpu/qemu64"), nullptr);

  ASSERT_EQ(pg({"abi", "accept", "xen-unstable", "machine/pc-i440fx-7.2", "--reason", "fewer vectors on purpose"})
                .exit_code,
            0);
  ASSERT_EQ(flight(v), 0) << v.dump(2);
  EXPECT_TRUE(v["pushed"].get<bool>()) << v.dump(2);
}

}  // namespace
}  // namespace pushgate
