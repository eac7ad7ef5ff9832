// libvirt hosts through the C API: xen:///system, qemu+ssh://.../system,
// test:///default. Every libvirt call blocks, so each operation runs on the
// worker pool and its result comes back to the caller's coroutine.

#include <pushgate/hosts.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace pushgate::hosts {
namespace {

/// libvirt prints every error to stderr by default; we report them ourselves.
void quiet_errors(void*, virErrorPtr) {}

std::string last_error() {
  const char* m = virGetLastErrorMessage();
  return m ? m : "unknown libvirt error";
}

struct DomainDeleter {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using DomainPtr = std::unique_ptr<virDomain, DomainDeleter>;

class LibvirtHost final : public Host {
 public:
  using Host::Host;
  ~LibvirtHost() override {
    if (conn_) virConnectClose(conn_);
  }
  std::string address() const override { return cfg_.uri; }

  /// The open connection (made on first use). Runs on the pool.
  virConnectPtr connection(std::string& error) {
    std::lock_guard lock(mutex_);
    if (conn_ && virConnectIsAlive(conn_) == 1) return conn_;
    if (conn_) virConnectClose(conn_);
    static std::once_flag once;
    std::call_once(once, [] { virSetErrorFunc(nullptr, quiet_errors); });
    conn_ = virConnectOpen(cfg_.uri.c_str());
    if (!conn_) error = "cannot connect to " + cfg_.uri + ": " + last_error();
    return conn_;
  }

  asio::awaitable<StepOutcome> run_command(const std::string& command, const std::string& fail_status,
                                           StepContext& ctx) override {
    // Commands for a libvirt host run on the controller with the URI in
    // their environment (PUSHGATE_HOST_ADDRESS), like virsh -c would use.
    co_return co_await run_on_controller(command, fail_status, ctx);
  }

  asio::awaitable<StepOutcome> run_op(const std::string& op, StepContext& ctx) override {
    if (!op.starts_with("libvirt:") && op != "host:boot-check" && op != "host:logs-capture") {
      co_return StepOutcome::broken("operation " + op + " is not supported on libvirt host " + name());
    }
    // Named before the co_await (GCC 12 miscompiles a temporary lambda there).
    auto body = [this, op, &ctx]() -> asio::awaitable<StepOutcome> { co_return blocking_op(op, ctx); };
    co_return co_await asio::co_spawn(*ctx.pool, body, asio::use_awaitable);
  }

 private:
  /// pgFLIGHT-JOB-XXXXXX: the suffix comes from the work directory, so two
  /// pushgate installations sharing one libvirtd never pick the same name.
  static std::string guest_name(const StepContext& ctx) {
    char suffix[8];
    std::snprintf(suffix, sizeof suffix, "%06zx", std::hash<std::string>{}(ctx.workdir) & 0xffffff);
    std::string n = "pg" + ctx.flight.str() + "-" + ctx.job + "-" + suffix;
    for (char& c : n) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '-';
    }
    return n;
  }

  std::string domain_xml(virConnectPtr conn, const StepContext& ctx) {
    auto it = ctx.env.find("PUSHGATE_RV_guest_xml");
    if (it != ctx.env.end()) {
      std::ifstream in(it->second);
      std::stringstream ss;
      ss << in.rdbuf();
      std::string xml = ss.str();
      for (auto pos = xml.find("{name}"); pos != std::string::npos; pos = xml.find("{name}")) {
        xml.replace(pos, 6, guest_name(ctx));
      }
      return xml;
    }
    const char* type = virConnectGetType(conn);
    std::string t = type ? type : "";
    std::string domtype = t == "Test" ? "test" : t == "Xen" ? "xen" : "qemu";
    // A tiny diskless guest: enough to define, start, save, restore, destroy.
    return "<domain type='" + domtype + "'><name>" + guest_name(ctx) +
           "</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>"
           "<devices/></domain>";
  }

  StepOutcome blocking_op(const std::string& op, StepContext& ctx) {
    std::string err;
    virConnectPtr conn = connection(err);
    if (!conn) return StepOutcome::broken(err);
    auto log = [&](const std::string& line) { append_log(ctx.log_path, "[" + name() + "] " + line); };
    std::string gname = guest_name(ctx);
    auto lookup = [&]() { return DomainPtr(virDomainLookupByName(conn, gname.c_str())); };
    auto broken = [&](const std::string& what) {
      std::string m = what + " of " + gname + " on " + cfg_.uri + " failed: " + last_error();
      log(m);
      return StepOutcome::broken(m);
    };

    if (op == "host:boot-check") {
      log("connected to " + cfg_.uri);
      return StepOutcome::pass();
    }
    if (op == "libvirt:define" || op == "libvirt:start") {
      DomainPtr d = lookup();
      if (!d) {
        std::string xml = domain_xml(conn, ctx);
        d.reset(virDomainDefineXML(conn, xml.c_str()));
        if (!d) return broken("define");
        log("defined " + gname);
      }
      if (op == "libvirt:define") return StepOutcome::pass();
      if (virDomainIsActive(d.get()) != 1 && virDomainCreate(d.get()) < 0) {
        return StepOutcome::fail("start of " + gname + " failed: " + last_error());
      }
      log("started " + gname);
      return StepOutcome::pass();
    }
    DomainPtr d = lookup();
    if (op == "libvirt:logs-capture" || op == "host:logs-capture") {
      if (d) {
        char* xml = virDomainGetXMLDesc(d.get(), 0);
        if (xml) {
          log(std::string("domain XML:\n") + xml);
          free(xml);
        }
        log(std::string("active: ") + (virDomainIsActive(d.get()) == 1 ? "yes" : "no"));
      } else {
        log("no domain " + gname);
      }
      return StepOutcome::pass();
    }
    if (op == "libvirt:destroy") {
      if (!d) return StepOutcome::pass("no domain to destroy");
      if (virDomainIsActive(d.get()) == 1 && virDomainDestroy(d.get()) < 0) return broken("destroy");
      if (virDomainUndefineFlags(d.get(), VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE) < 0) {
        return broken("undefine");
      }
      log("destroyed and undefined " + gname);
      return StepOutcome::pass();
    }
    if (!d) return StepOutcome::fail("no domain " + gname + " on " + cfg_.uri + " (start it first)");
    if (op == "libvirt:shutdown") {
      if (virDomainShutdown(d.get()) < 0) return StepOutcome::fail("shutdown of " + gname + " failed: " + last_error());
      return StepOutcome::pass();
    }
    if (op == "libvirt:save-restore") {
      std::filesystem::create_directories(ctx.workdir);
      std::string path = ctx.workdir + "/" + gname + ".save";
      if (virDomainSave(d.get(), path.c_str()) < 0) return StepOutcome::fail("save of " + gname + " failed: " + last_error());
      log("saved " + gname + " to " + path);
      if (virDomainRestore(conn, path.c_str()) < 0) {
        return StepOutcome::fail("restore of " + gname + " failed: " + last_error());
      }
      std::filesystem::remove(path);
      DomainPtr again = lookup();
      if (!again || virDomainIsActive(again.get()) != 1) return StepOutcome::fail(gname + " not running after restore");
      log("restored " + gname);
      return StepOutcome::pass();
    }
    if (op == "libvirt:snapshot") {
      virDomainSnapshotPtr s =
          virDomainSnapshotCreateXML(d.get(), "<domainsnapshot><name>clean</name></domainsnapshot>", 0);
      if (!s) return broken("snapshot");
      virDomainSnapshotFree(s);
      log("snapshot 'clean' of " + gname);
      return StepOutcome::pass();
    }
    if (op == "libvirt:snapshot-revert") {
      virDomainSnapshotPtr s = virDomainSnapshotLookupByName(d.get(), "clean", 0);
      if (!s) return broken("snapshot lookup");
      int rc = virDomainRevertToSnapshot(s, 0);
      virDomainSnapshotFree(s);
      if (rc < 0) return broken("snapshot revert");
      log("reverted " + gname + " to snapshot 'clean'");
      return StepOutcome::pass();
    }
    if (op == "libvirt:migrate") {
      auto dst_it = ctx.roles.find("dst_host");
      auto* dst = dst_it == ctx.roles.end() ? nullptr : dynamic_cast<LibvirtHost*>(dst_it->second);
      if (!dst) return StepOutcome::broken("libvirt:migrate needs a libvirt host in role dst_host");
      std::string derr;
      virConnectPtr dconn = dst->connection(derr);
      if (!dconn) return StepOutcome::broken(derr);
      DomainPtr moved(virDomainMigrate(d.get(), dconn, VIR_MIGRATE_LIVE, nullptr, nullptr, 0));
      if (!moved) {
        std::string m = "migration of " + gname + " from " + cfg_.uri + " to " + dst->cfg_.uri + " failed: " + last_error();
        log(m);
        return StepOutcome::broken(m);  // unsupported by the driver is infrastructure, not the code under test
      }
      log("migrated " + gname + " to " + dst->cfg_.uri);
      return StepOutcome::pass();
    }
    return StepOutcome::broken("unknown libvirt operation " + op);
  }

  std::mutex mutex_;
  virConnectPtr conn_ = nullptr;  // GUARDED_BY(mutex_)
};

}  // namespace

std::unique_ptr<Host> make_libvirt(const config::Host& cfg) { return std::make_unique<LibvirtHost>(cfg); }

}  // namespace pushgate::hosts
