// libvirt hosts through the C API: xen:///system, qemu+ssh://.../system,
// test:///default.
//
// Every libvirt call blocks, and a wedged libvirtd or guest can block it
// forever. So (SPEC section 9, "every blocking call has a deadline"):
//  - an operation runs on a thread of its own, never on a shared pool, and
//    the step's coroutine waits for it only until the step's deadline, or
//    until the run is cut short (drain, cancel). Then the operation is
//    abandoned: its domain job is aborted, its connection is dropped (the
//    next operation opens a new one), it writes nothing more to the log,
//    and the step is broken. The thread itself ends when libvirt returns;
//    it holds only shared state and its own connection references, never
//    the host or the step;
//  - libvirt's event loop runs on a thread of its own, so connections have
//    keepalive: a remote libvirtd that stops answering is noticed after
//    keepalive_interval * (keepalive_count + 1) seconds; its connection is
//    closed and the calls waiting on it return an error.

#include <pushgate/hosts.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

namespace pushgate::hosts {
namespace {

using Clock = std::chrono::steady_clock;

/// libvirt prints every error to stderr by default; we report them ourselves.
void quiet_errors(void*, virErrorPtr) {}

std::string last_error() {
  const char* m = virGetLastErrorMessage();
  return m ? m : "unknown libvirt error";
}

/// Whether the last error is libvirt's own trouble (the connection, the
/// daemon, a timeout), not something the guest or the code under test did.
bool infrastructure_error(virConnectPtr conn) {
  if (conn && virConnectIsAlive(conn) == 0) return true;
  virErrorPtr e = virGetLastError();
  if (!e) return false;
  switch (e->code) {
    case VIR_ERR_RPC:
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_CANCELLED:
    case VIR_ERR_OPERATION_TIMEOUT:
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_OPERATION_ABORTED:
      return true;
    default:
      return e->domain == VIR_FROM_RPC || e->domain == VIR_FROM_REMOTE;
  }
}

/// Once per process, before the first connection: quiet errors, and
/// libvirt's default event loop on a thread of its own (keepalive needs it).
void init_libvirt() {
  static std::once_flag once;
  std::call_once(once, [] {
    virSetErrorFunc(nullptr, quiet_errors);
    if (virEventRegisterDefaultImpl() < 0) return;  // no keepalive then; the deadlines still hold
    std::thread([] {
      for (;;) virEventRunDefaultImpl();
    }).detach();
  });
}

struct DomainDeleter {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using DomainPtr = std::unique_ptr<virDomain, DomainDeleter>;

/// A referenced connection; closing drops our reference only.
struct ConnCloser {
  void operator()(virConnectPtr c) const { virConnectClose(c); }
};
using ConnRef = std::unique_ptr<virConnect, ConnCloser>;

/// One host's libvirt connection, shared with the operations using it
/// (an abandoned one may outlive the host).
class Connection {
 public:
  Connection(std::string uri, int keepalive_interval, int keepalive_count)
      : uri_(std::move(uri)), interval_(keepalive_interval), count_(keepalive_count) {}
  ~Connection() {
    if (conn_) virConnectClose(conn_);
  }
  const std::string& uri() const { return uri_; }

  /// The open connection (opened on first use, again after it died or was
  /// dropped), with a reference for the caller. Blocks.
  ConnRef get(std::string& error) {
    std::lock_guard lock(mutex_);
    if (conn_ && virConnectIsAlive(conn_) == 1) {
      virConnectRef(conn_);
      return ConnRef(conn_);
    }
    if (conn_) virConnectClose(conn_);
    init_libvirt();
    conn_ = virConnectOpen(uri_.c_str());
    if (!conn_) {
      error = "cannot connect to " + uri_ + ": " + last_error();
      return {};
    }
    // Local drivers (test:///, xen:/// in-process) have no keepalive and
    // need none: they say "not supported", a remote peer without it says 1.
    if (interval_ > 0 && virConnectSetKeepAlive(conn_, interval_, count_) < 0 &&
        !(virGetLastError() && virGetLastError()->code == VIR_ERR_NO_SUPPORT)) {
      error = "cannot set keepalive on " + uri_ + ": " + last_error();
      virConnectClose(conn_);
      conn_ = nullptr;
      return {};
    }
    virConnectRef(conn_);
    return ConnRef(conn_);
  }

  /// Forget the connection: a call over it did not come back in time. Does
  /// not wait for the lock when an open is hanging (that open is abandoned).
  void drop(virConnectPtr which) {
    std::unique_lock lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return;
    if (conn_ == which && conn_) {
      virConnectClose(conn_);
      conn_ = nullptr;
    }
  }

 private:
  const std::string uri_;
  const int interval_, count_;
  std::mutex mutex_;
  virConnectPtr conn_ = nullptr;  // GUARDED_BY(mutex_)
};

/// What one operation's thread shares with the step waiting for it.
struct Call {
  std::mutex mutex;
  bool done = false;       // GUARDED_BY(mutex)
  bool abandoned = false;  // GUARDED_BY(mutex)
  StepOutcome outcome;     // GUARDED_BY(mutex)
  /// Aborts the domain job in progress (set around long domain jobs).
  std::function<void()> abort;  // GUARDED_BY(mutex)
  std::vector<std::pair<std::shared_ptr<Connection>, virConnectPtr>> in_use;  // GUARDED_BY(mutex)

  bool is_abandoned() {
    std::lock_guard lock(mutex);
    return abandoned;
  }
};

/// Everything an operation needs, copied: the step and the host may be
/// gone before an abandoned operation returns.
struct OpInput {
  std::string op, host_name, guest, log_path, workdir, guest_xml_file;
  std::shared_ptr<Connection> conn;
  std::shared_ptr<Connection> dst;     ///< the dst_host role's connection, for migrate
  std::string dst_name;
  std::vector<std::pair<std::string, std::shared_ptr<Connection>>> others;  ///< other libvirt roles (destroy)
  Clock::time_point deadline;
  int timeout_seconds = 0;
};

class Operation {
 public:
  Operation(OpInput in, std::shared_ptr<Call> call) : in_(std::move(in)), call_(std::move(call)) {}

  StepOutcome run() {
    std::string err;
    ConnRef conn = open(*in_.conn, err);
    if (!conn) return StepOutcome::broken(err);
    const std::string& op = in_.op;
    if (op == "host:boot-check") {
      log("connected to " + in_.conn->uri());
      return StepOutcome::pass();
    }
    if (op == "libvirt:define" || op == "libvirt:start") return define_start(conn.get(), op == "libvirt:start");
    DomainPtr d = lookup(conn.get());
    if (lookup_failed(d)) return broken("lookup");
    if (op == "libvirt:logs-capture" || op == "host:logs-capture") return capture(d.get());
    if (op == "libvirt:destroy") return destroy_everywhere(std::move(d));
    if (!d) return StepOutcome::fail("no domain " + in_.guest + " on " + in_.conn->uri() + " (start it first)");
    if (op == "libvirt:shutdown") return shutdown(d.get());
    if (op == "libvirt:save-restore") return save_restore(conn.get(), d.get());
    if (op == "libvirt:snapshot") {
      virDomainSnapshotPtr s =
          virDomainSnapshotCreateXML(d.get(), "<domainsnapshot><name>clean</name></domainsnapshot>", 0);
      if (!s) return broken("snapshot");
      virDomainSnapshotFree(s);
      log("snapshot 'clean' of " + in_.guest);
      return StepOutcome::pass();
    }
    if (op == "libvirt:snapshot-revert") {
      virDomainSnapshotPtr s = virDomainSnapshotLookupByName(d.get(), "clean", 0);
      if (!s) return broken("snapshot lookup");
      int rc = virDomainRevertToSnapshot(s, 0);
      virDomainSnapshotFree(s);
      if (rc < 0) return broken("snapshot revert");
      log("reverted " + in_.guest + " to snapshot 'clean'");
      return StepOutcome::pass();
    }
    if (op == "libvirt:migrate") return migrate(d.get());
    return StepOutcome::broken("unknown libvirt operation " + op);
  }

 private:
  /// Open (or reuse) a connection and note it, so an abandonment drops it.
  ConnRef open(Connection& c, std::string& err) {
    ConnRef r = c.get(err);
    if (r) {
      std::lock_guard lock(call_->mutex);
      for (auto& [shared, ptr] : call_->in_use) {
        if (shared.get() == &c) {
          ptr = r.get();
          return r;
        }
      }
    }
    return r;
  }

  /// Log lines stop the moment the step gave up on this operation.
  void log(const std::string& line) {
    std::lock_guard lock(call_->mutex);
    if (!call_->abandoned) append_log(in_.log_path, "[" + in_.host_name + "] " + line);
  }
  StepOutcome broken(const std::string& what, const std::string& uri = {}) {
    std::string m = what + " of " + in_.guest + " on " + (uri.empty() ? in_.conn->uri() : uri) + " failed: " + last_error();
    log(m);
    return StepOutcome::broken(m);
  }
  /// A call that failed: broken when libvirt itself is the trouble, else
  /// the step's failure (the guest did not do it).
  StepOutcome failed(const std::string& what, virConnectPtr conn) {
    std::string m = what + " of " + in_.guest + " failed: " + last_error();
    if (infrastructure_error(conn)) {
      log(m);
      return StepOutcome::broken(m);
    }
    return StepOutcome::fail(m);
  }
  /// Checked between calls: an abandoned operation does nothing more.
  std::optional<StepOutcome> gone() {
    if (!call_->is_abandoned()) return std::nullopt;
    return StepOutcome::broken("abandoned");
  }
  DomainPtr lookup(virConnectPtr conn) { return DomainPtr(virDomainLookupByName(conn, in_.guest.c_str())); }
  /// No domain and an error other than "no such domain": the lookup itself failed.
  static bool lookup_failed(const DomainPtr& d) {
    if (d) return false;
    virErrorPtr e = virGetLastError();
    return e && e->code != VIR_ERR_NO_DOMAIN;
  }
  double left() const { return std::chrono::duration<double>(in_.deadline - Clock::now()).count(); }

  /// While a long domain job runs, an abandonment aborts it. The abort
  /// holds its own reference to the domain (it may run after we return).
  class AbortOnAbandon {
   public:
    AbortOnAbandon(Call& c, virDomainPtr d) : call_(c), d_(d) {
      virDomainRef(d_);
      std::lock_guard lock(call_.mutex);
      call_.abort = [d] {
        virDomainAbortJob(d);
        virDomainFree(d);
      };
    }
    ~AbortOnAbandon() {
      std::function<void()> unused;
      {
        std::lock_guard lock(call_.mutex);
        unused = std::exchange(call_.abort, nullptr);
      }
      if (unused) virDomainFree(d_);  // not abandoned: the abort never ran
    }
    AbortOnAbandon(const AbortOnAbandon&) = delete;
    AbortOnAbandon& operator=(const AbortOnAbandon&) = delete;

   private:
    Call& call_;
    virDomainPtr d_;
  };

  std::string domain_xml(virConnectPtr conn) {
    if (!in_.guest_xml_file.empty()) {
      std::ifstream in(in_.guest_xml_file);
      std::stringstream ss;
      ss << in.rdbuf();
      std::string xml = ss.str();
      for (auto pos = xml.find("{name}"); pos != std::string::npos; pos = xml.find("{name}")) {
        xml.replace(pos, 6, in_.guest);
      }
      return xml;
    }
    const char* type = virConnectGetType(conn);
    std::string t = type ? type : "";
    std::string domtype = t == "Test" ? "test" : t == "Xen" ? "xen" : "qemu";
    // A tiny diskless guest: enough to define, start, save, restore, migrate, destroy.
    return "<domain type='" + domtype + "'><name>" + in_.guest +
           "</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>"
           "<devices/></domain>";
  }

  StepOutcome define_start(virConnectPtr conn, bool start) {
    DomainPtr d = lookup(conn);
    if (lookup_failed(d)) return broken("lookup");
    if (!d) {
      std::string xml = domain_xml(conn);
      d.reset(virDomainDefineXML(conn, xml.c_str()));
      if (!d) return broken("define");
      log("defined " + in_.guest);
    }
    if (!start) return StepOutcome::pass();
    if (auto g = gone()) return *g;
    if (virDomainIsActive(d.get()) != 1 && virDomainCreate(d.get()) < 0) return failed("start", conn);
    log("started " + in_.guest);
    return StepOutcome::pass();
  }

  StepOutcome capture(virDomainPtr d) {
    if (!d) {
      log("no domain " + in_.guest);
      return StepOutcome::pass();
    }
    if (char* xml = virDomainGetXMLDesc(d, 0)) {
      log(std::string("domain XML:\n") + xml);
      free(xml);
    }
    log(std::string("active: ") + (virDomainIsActive(d) == 1 ? "yes" : "no"));
    return StepOutcome::pass();
  }

  /// Destroy and undefine the guest on this host and on every other libvirt
  /// host the job holds: after a migration it lives on the destination.
  StepOutcome destroy_everywhere(DomainPtr here) {
    bool any = false;
    if (here) {
      if (auto bad = destroy(here.get(), in_.conn->uri())) return *bad;
      any = true;
    }
    for (const auto& [name, other] : in_.others) {
      std::string err;
      ConnRef c = open(*other, err);
      if (!c) {
        log(err);
        return StepOutcome::broken(err);
      }
      if (auto g = gone()) return *g;
      DomainPtr d = lookup(c.get());
      if (lookup_failed(d)) return broken("lookup", other->uri());
      if (!d) continue;
      if (auto bad = destroy(d.get(), other->uri())) return *bad;
      any = true;
    }
    return any ? StepOutcome::pass() : StepOutcome::pass("no domain to destroy");
  }
  std::optional<StepOutcome> destroy(virDomainPtr d, const std::string& uri) {
    if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0) return broken("destroy", uri);
    // A transient guest (a migration without a persistent destination) is
    // gone once destroyed; a persistent one is undefined too.
    if (virDomainIsPersistent(d) == 1 &&
        virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE) < 0) {
      return broken("undefine", uri);
    }
    log("destroyed and undefined " + in_.guest + " on " + uri);
    return std::nullopt;
  }

  /// A graceful shutdown, waited for: a guest still running at the step's
  /// deadline failed to shut down (the code under test, not pushgate).
  StepOutcome shutdown(virDomainPtr d) {
    if (virDomainIsActive(d) != 1) return StepOutcome::pass("already shut off");
    if (virDomainShutdown(d) < 0) return failed("shutdown", virDomainGetConnect(d));
    log("asked " + in_.guest + " to shut down");
    for (;;) {
      int state = 0, reason = 0;
      if (virDomainGetState(d, &state, &reason, 0) < 0) return broken("state query");
      if (state == VIR_DOMAIN_SHUTOFF) {
        log(in_.guest + " shut down");
        return StepOutcome::pass();
      }
      // Stop just before the step's deadline, to say it ourselves.
      if (left() < 0.3 || call_->is_abandoned()) {
        return StepOutcome::fail(in_.guest + " did not shut down within " + std::to_string(in_.timeout_seconds) + " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  StepOutcome save_restore(virConnectPtr conn, virDomainPtr d) {
    std::error_code ec;
    std::filesystem::create_directories(in_.workdir, ec);
    std::string path = in_.workdir + "/" + in_.guest + ".save";
    {
      AbortOnAbandon guard(*call_, d);
      if (virDomainSave(d, path.c_str()) < 0) return failed("save", conn);
    }
    log("saved " + in_.guest + " to " + path);
    if (auto g = gone()) return *g;
    if (virDomainRestore(conn, path.c_str()) < 0) return failed("restore", conn);
    std::filesystem::remove(path, ec);
    DomainPtr again = lookup(conn);
    if (!again || virDomainIsActive(again.get()) != 1) return StepOutcome::fail(in_.guest + " not running after restore");
    log("restored " + in_.guest);
    return StepOutcome::pass();
  }

  /// Live migration to the dst_host role: the destination keeps the guest
  /// defined (persistent), the source forgets it (undefined), so cleanup
  /// and later jobs find it in one place only.
  StepOutcome migrate(virDomainPtr d) {
    if (!in_.dst) return StepOutcome::broken("libvirt:migrate needs a libvirt host in role dst_host");
    std::string derr;
    ConnRef dconn = open(*in_.dst, derr);
    if (!dconn) return StepOutcome::broken(derr);
    if (auto g = gone()) return *g;
    const unsigned long flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE;
    DomainPtr moved;
    {
      AbortOnAbandon guard(*call_, d);
      moved.reset(virDomainMigrate(d, dconn.get(), flags, nullptr, nullptr, 0));
    }
    if (!moved) {
      std::string m = "migration of " + in_.guest + " from " + in_.conn->uri() + " to " + in_.dst->uri() +
                      " failed: " + last_error();
      log(m);
      return StepOutcome::broken(m);  // unsupported by the driver is infrastructure, not the code under test
    }
    log("migrated " + in_.guest + " to " + in_.dst_name + " (" + in_.dst->uri() + ")");
    return StepOutcome::pass();
  }

  OpInput in_;
  std::shared_ptr<Call> call_;
};

class LibvirtHost final : public Host {
 public:
  explicit LibvirtHost(const config::Host& cfg)
      : Host(cfg), conn_(std::make_shared<Connection>(cfg.uri, cfg.keepalive_interval, cfg.keepalive_count)) {}
  std::string address() const override { return cfg_.uri; }

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
    OpInput in;
    in.op = op;
    in.host_name = name();
    in.guest = guest_name(ctx);
    in.log_path = ctx.log_path;
    in.workdir = ctx.workdir;
    if (auto it = ctx.env.find("PUSHGATE_RV_guest_xml"); it != ctx.env.end()) in.guest_xml_file = it->second;
    in.conn = conn_;
    for (const auto& [role, host] : ctx.roles) {
      auto* lv = dynamic_cast<LibvirtHost*>(host);
      if (!lv || lv == this) continue;
      if (role == "dst_host") {
        in.dst = lv->conn_;
        in.dst_name = lv->name();
      }
      in.others.emplace_back(lv->name(), lv->conn_);
    }
    in.timeout_seconds = ctx.timeout_seconds;
    in.deadline = Clock::now() + std::chrono::seconds(ctx.timeout_seconds);
    co_return co_await run_with_deadline(std::move(in), ctx);
  }

 private:
  /// Runs the operation on a thread of its own and waits for it until the
  /// step's deadline (plus a moment for the operation to say why itself),
  /// or until the run is cut short.
  static asio::awaitable<StepOutcome> run_with_deadline(OpInput in, StepContext& ctx) {
    auto call = std::make_shared<Call>();
    {
      std::lock_guard lock(call->mutex);
      call->in_use.emplace_back(in.conn, nullptr);
      for (const auto& [name, other] : in.others) call->in_use.emplace_back(other, nullptr);
    }
    const std::string op = in.op, uri = in.conn->uri();
    const int timeout = in.timeout_seconds;
    const auto give_up = in.deadline + std::chrono::seconds(1);
    std::thread([in = std::move(in), call]() mutable {
      StepOutcome out = Operation(std::move(in), call).run();
      std::lock_guard lock(call->mutex);
      call->outcome = std::move(out);
      call->done = true;
    }).detach();

    asio::steady_timer timer(co_await asio::this_coro::executor);
    auto pause = std::chrono::milliseconds(5);
    std::string why;
    for (;;) {
      {
        std::lock_guard lock(call->mutex);
        if (call->done) co_return call->outcome;
      }
      if (Clock::now() >= give_up) {
        why = op + " on " + uri + " did not finish within " + std::to_string(timeout) + " s (libvirtd or the guest is not answering)";
        break;
      }
      if (ctx.cancel && ctx.cancel->killed_running()) {
        why = op + " on " + uri + " abandoned: the run was stopped";
        break;
      }
      timer.expires_after(pause);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      pause = std::min(pause * 2, std::chrono::milliseconds(100));
    }
    // Abandon: no more log lines from it, abort its domain job, drop the
    // connections it used. The thread ends whenever libvirt returns.
    std::function<void()> abort;
    std::vector<std::pair<std::shared_ptr<Connection>, virConnectPtr>> used;
    {
      std::lock_guard lock(call->mutex);
      call->abandoned = true;
      abort = std::exchange(call->abort, nullptr);
      used = call->in_use;
    }
    if (abort) std::thread(std::move(abort)).detach();  // may block too: never waited for
    for (auto& [c, ptr] : used) {
      if (ptr) c->drop(ptr);
    }
    co_return StepOutcome::broken(why);  // the runner writes the message to the step log
  }

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

  std::shared_ptr<Connection> conn_;
};

}  // namespace

std::unique_ptr<Host> make_libvirt(const config::Host& cfg) { return std::make_unique<LibvirtHost>(cfg); }

}  // namespace pushgate::hosts
