// Store on SQLite: WAL, foreign keys, numbered migrations applied at open.

#include <pushgate/store.hpp>

#include <functional>

#include <chrono>
#include <filesystem>
#include <set>
#include <tuple>
#include <string_view>
#include <vector>

#include "bisection_ledger.hpp"
#include "sqlite.hpp"

namespace pushgate::store {

/// Generated from src/store/migrations/NNNN_*.sql, in order.
extern const std::vector<std::string_view> kMigrations;

std::int64_t now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Result<std::optional<Flight>> retest_flight_of(const Store& store, const std::string& branch, FlightId original) {
  auto made = store.flights_with_runvar(branch, "retest_of", original.str());
  if (!made) return made.error();
  std::optional<Flight> out;
  for (FlightId f : *made) {
    auto fl = store.get_flight(f);
    if (fl && fl->blessing == "real-retest") out = *fl;
  }
  return out;
}

int Store::latest_schema_version() { return static_cast<int>(kMigrations.size()); }

namespace {

Status migrate(Db& db, const std::string& path, int& version) {
  {
    Stmt q(db, "PRAGMA user_version");
    if (!q.step()) return q.status().ok() ? Status::corruption("cannot read schema version of " + path) : q.status();
    version = static_cast<int>(q.col_int(0));
  }
  const int latest = Store::latest_schema_version();
  if (version > latest) {
    return Status::invalid_argument(
        "database " + path + " has schema version " + std::to_string(version) + ", newer than this pushgate (" +
            std::to_string(latest) + ")",
        "upgrade pushgate, or use another --db");
  }
  if (version == latest) return {};
  Transaction tx(db);
  if (!tx.status().ok()) return tx.status();
  for (int v = version; v < latest; ++v) {
    if (Status s = db.exec(std::string(kMigrations[v])); !s.ok()) {
      return s.with_context("migration " + std::to_string(v + 1));
    }
  }
  if (Status s = db.exec("PRAGMA user_version = " + std::to_string(latest)); !s.ok()) return s;
  if (Status s = tx.commit(); !s.ok()) return s;
  version = latest;
  return {};
}

class SqliteStore final : public Store {
 public:
  Status open(const StoreOptions& o) {
    path_ = o.path;
    namespace fs = std::filesystem;
    fs::path p(o.path);
    fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      return Status::not_found("database directory " + dir.string() + " does not exist",
                               "create it, or choose another path with --db or daemon.database");
    }
    if (!o.create_if_missing && !fs::exists(p, ec)) {
      return Status::not_found("database " + o.path + " does not exist");
    }
    if (Status s = db_.open(o.path, o.create_if_missing, o.busy_timeout_ms); !s.ok()) return s;
    if (Status s = db_.exec("PRAGMA foreign_keys = ON"); !s.ok()) return s;
    {
      Stmt wal(db_, "PRAGMA journal_mode = WAL");
      if (!wal.step()) {
        return wal.status().ok() ? Status::unavailable("cannot enable WAL on " + o.path)
                                 : wal.status().with_context(o.path);
      }
    }
    full_ = o.synchronous_full;
    if (Status s = db_.exec(full_ ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL"); !s.ok()) {
      return s;
    }
    return migrate(db_, o.path, version_);
  }

  /// Commits made while one lives are on disk when they return (synchronous
  /// FULL), whatever the connection's setting: push intents and outcomes,
  /// verdicts and frozen-ref audit rows must survive a power loss.
  class Durable {
   public:
    explicit Durable(SqliteStore& s) : s_(s) {
      if (!s_.full_) (void)s_.db_.exec("PRAGMA synchronous = FULL");
    }
    ~Durable() {
      if (!s_.full_) (void)s_.db_.exec("PRAGMA synchronous = NORMAL");
    }
    Durable(const Durable&) = delete;
    Durable& operator=(const Durable&) = delete;

   private:
    SqliteStore& s_;
  };

  int schema_version() const override { return version_; }
  std::vector<std::string> prepared_statements() const override { return db_.cached_sql(); }
  const std::string& path() const override { return path_; }

  Result<FlightId> create_flight(const NewFlight& f) override {
    std::set<std::string> names;
    for (const Job& j : f.jobs) {
      if (!names.insert(j.job).second) return Status::invalid_argument("job " + j.job + " listed twice");
    }
    for (const Runvar& r : f.runvars) {
      if (!names.count(r.job)) return Status::invalid_argument("runvar " + r.name + " for unknown job " + r.job);
    }
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    auto id = insert_flight(f);
    if (!id) return id;
    if (Status s = tx.commit(); !s.ok()) return s;
    return id;
  }

  /// The rows of a new flight, inside the caller's transaction.
  Result<FlightId> insert_flight(const NewFlight& f) {
    Stmt fl(db_, "INSERT INTO flights (branch, blessing, intended, created, trigger_kind, trigger_detail)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    fl.bind(1, f.branch).bind(2, f.blessing).bind(3, f.intended).bind(4, now()).bind(5, f.trigger_kind).bind(6, f.trigger_detail);
    if (Status s = fl.exec(); !s.ok()) return s;
    FlightId id{db_.last_insert_rowid()};
    for (const Job& j : f.jobs) {
      Stmt one(db_, "INSERT INTO jobs (flight, job, recipe, status, status_reason) VALUES (?1, ?2, ?3, ?4, ?5)");
      one.bind(1, id.value).bind(2, j.job).bind(3, j.recipe).bind(4, j.status).bind(5, j.status_reason);
      if (Status s = one.exec(); !s.ok()) return s.with_context("job " + j.job);
    }
    for (const Runvar& r : f.runvars) {
      Stmt one(db_, "INSERT INTO runvars (flight, job, name, value, synth) VALUES (?1, ?2, ?3, ?4, ?5)");
      one.bind(1, id.value).bind(2, r.job).bind(3, r.name).bind(4, r.value).bind(5, r.synth ? 1 : 0);
      if (Status s = one.exec(); !s.ok()) return s.with_context("runvar " + r.job + " " + r.name);
    }
    return id;
  }

  // Bisections: the SQL lives in bisection_ledger.cpp.
  Result<std::int64_t> create_bisection(const BisectionRow& row) override { return bisection_ledger::create(db_, row); }
  Result<BisectionRow> get_bisection(std::int64_t id) const override { return bisection_ledger::get(db_, id); }
  Result<std::vector<BisectionRow>> list_bisections(const BisectionFilter& filter) const override {
    return bisection_ledger::list(db_, filter);
  }
  Result<std::vector<BisectionRow>> bisections_of_flight(FlightId flight) const override {
    return bisection_ledger::of_flight(db_, flight);
  }
  Result<void> update_bisection(std::int64_t id, const std::string& status, const std::string& reason,
                                const std::string& state, const std::vector<BisectionNode>& nodes) override {
    return bisection_ledger::update(db_, id, status, reason, state, nodes);
  }
  Result<std::vector<BisectionNode>> bisection_nodes(std::int64_t id) const override {
    return bisection_ledger::nodes(db_, id);
  }
  Result<FlightId> create_probe_flight(std::int64_t bisection, const NewFlight& f, const std::string& node,
                                       const std::string& why) override {
    std::set<std::string> names;
    for (const Job& j : f.jobs) {
      if (!names.insert(j.job).second) return Status::invalid_argument("job " + j.job + " listed twice");
    }
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    auto id = insert_flight(f);
    if (!id) return id;
    if (Status s = bisection_ledger::add_probe(db_, bisection, *id, node, why); !s.ok()) return s;
    if (Status s = tx.commit(); !s.ok()) return s;
    return id;
  }
  Result<std::vector<BisectionProbe>> bisection_probes(std::int64_t id) const override {
    return bisection_ledger::probes(db_, id);
  }
  Result<std::vector<FlightId>> finished_flights_with_job_runvar(const std::string& job, const std::string& name,
                                                                const std::string& value) const override {
    Stmt q(db_, "SELECT DISTINCT r.flight FROM runvars r JOIN flights f ON f.flight = r.flight"
                " WHERE r.job = ?1 AND r.name = ?2 AND r.value = ?3 AND f.finished IS NOT NULL"
                " AND f.blessing IN ('real', 'real-retest', 'real-bisect') ORDER BY r.flight DESC");
    q.bind(1, job).bind(2, name).bind(3, value);
    std::vector<FlightId> out;
    while (q.step()) out.push_back(FlightId{q.col_int(0)});
    if (!q.status().ok()) return q.status();
    return out;
  }

  static Flight read_flight(const Stmt& q) {
    Flight f;
    f.id = FlightId{q.col_int(0)};
    f.branch = q.col_text(1);
    f.blessing = q.col_text(2);
    f.intended = q.col_text(3);
    f.created = q.col_int(4);
    f.started = q.col_opt_int(5);
    f.finished = q.col_opt_int(6);
    f.outcome = q.col_text(7);
    f.trigger_kind = q.col_text(8);
    f.trigger_detail = q.col_text(9);
    return f;
  }

  static constexpr const char* kFlightCols =
      "SELECT flight, branch, blessing, intended, created, started, finished, IFNULL(outcome, ''), trigger_kind,"
      " trigger_detail FROM flights ";

  Result<Flight> get_flight(FlightId id) const override {
    Stmt q(db_, std::string(kFlightCols) + "WHERE flight = ?1");
    q.bind(1, id.value);
    if (!q.step()) {
      if (!q.status().ok()) return q.status();
      return Status::not_found("flight " + id.str() + " does not exist", "see `pushgate flight list`");
    }
    return read_flight(q);
  }

  Result<std::vector<Flight>> list_flights(const FlightFilter& f) const override {
    // Only the filters given, so the planner can use flights_branch (an
    // "(?1 = '' OR branch = ?1)" term keeps it from using any index).
    std::string sql = std::string(kFlightCols) + "WHERE 1";
    if (!f.branch.empty()) sql += " AND branch = ?1";
    if (!f.outcome.empty()) sql += " AND outcome = ?2";
    if (f.before) sql += " AND flight < ?3";
    for (std::size_t i = 0; i < f.blessings.size(); ++i) {
      sql += (i == 0 ? " AND blessing IN (?" : ", ?") + std::to_string(10 + i);
      if (i + 1 == f.blessings.size()) sql += ")";
    }
    sql += " ORDER BY flight DESC LIMIT ?4";
    Stmt q(db_, sql);
    q.bind(1, f.branch).bind(2, f.outcome).bind(3, f.before).bind(4, f.limit);
    for (std::size_t i = 0; i < f.blessings.size(); ++i) q.bind(static_cast<int>(10 + i), f.blessings[i]);
    std::vector<Flight> out;
    while (q.step()) out.push_back(read_flight(q));
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<void> set_flight_times(FlightId id, std::optional<std::int64_t> started,
                                std::optional<std::int64_t> finished) override {
    Stmt q(db_, "UPDATE flights SET started = IFNULL(?2, started), finished = IFNULL(?3, finished) WHERE flight = ?1");
    q.bind(1, id.value).bind(2, started).bind(3, finished);
    return changed_one(q, "flight " + id.str());
  }

  Result<void> set_flight_outcome(FlightId id, const std::string& outcome) override {
    // No outcome is NULL, never '': the unfinished-flights index holds NULLs.
    Stmt q(db_, "UPDATE flights SET outcome = NULLIF(?2, '') WHERE flight = ?1");
    q.bind(1, id.value).bind(2, outcome);
    return changed_one(q, "flight " + id.str());
  }

  Result<std::vector<Job>> list_jobs(FlightId id) const override {
    Stmt q(db_, "SELECT job, recipe, status, status_reason FROM jobs WHERE flight = ?1 ORDER BY job");
    q.bind(1, id.value);
    std::vector<Job> out;
    while (q.step()) out.push_back({id, q.col_text(0), q.col_text(1), q.col_text(2), q.col_text(3)});
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<void> set_job_status(FlightId id, const std::string& job, const std::string& status,
                              const std::string& reason) override {
    Stmt q(db_, "UPDATE jobs SET status = ?3, status_reason = ?4 WHERE flight = ?1 AND job = ?2");
    q.bind(1, id.value).bind(2, job).bind(3, status).bind(4, reason);
    return changed_one(q, "job " + id.str() + "." + job);
  }

  /// A step from columns 0-6: job, stepno, testid, status, started, finished, log_path.
  static Step read_step(const Stmt& q, FlightId id) {
    return {id, q.col_text(0), static_cast<int>(q.col_int(1)), q.col_text(2), q.col_text(3),
            q.col_opt_int(4), q.col_opt_int(5), q.col_text(6)};
  }

  Result<std::vector<Step>> list_steps(FlightId id) const override {
    Stmt q(db_, "SELECT job, stepno, testid, status, started, finished, log_path FROM steps WHERE flight = ?1"
                " ORDER BY job, stepno");
    q.bind(1, id.value);
    std::vector<Step> out;
    while (q.step()) out.push_back(read_step(q, id));
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<void> put_step(const Step& s) override {
    Stmt q(db_, "INSERT OR REPLACE INTO steps (flight, job, stepno, testid, status, started, finished, log_path)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    q.bind(1, s.flight.value).bind(2, s.job).bind(3, s.stepno).bind(4, s.testid).bind(5, s.status);
    q.bind(6, s.started).bind(7, s.finished).bind(8, s.log_path);
    if (Status st = q.exec(); !st.ok()) return st;
    return {};
  }

  Result<std::vector<StepAttempt>> list_step_attempts(FlightId id) const override {
    Stmt q(db_, "SELECT job, stepno, testid, status, started, finished, log_path, attempt FROM step_attempts"
                " WHERE flight = ?1 ORDER BY job, attempt, stepno");
    q.bind(1, id.value);
    std::vector<StepAttempt> out;
    while (q.step()) out.push_back({static_cast<int>(q.col_int(7)), read_step(q, id)});
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<std::vector<RunvarAttempt>> list_runvar_attempts(FlightId id) const override {
    Stmt q(db_, "SELECT job, name, value, attempt FROM runvar_attempts WHERE flight = ?1 ORDER BY job, attempt, name");
    q.bind(1, id.value);
    std::vector<RunvarAttempt> out;
    while (q.step()) out.push_back({static_cast<int>(q.col_int(3)), {q.col_text(0), q.col_text(1), q.col_text(2), true}});
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<std::vector<Runvar>> list_runvars(FlightId id, const std::string& job) const override {
    Stmt q(db_, "SELECT job, name, value, synth FROM runvars WHERE flight = ?1 AND (?2 = '' OR job = ?2)"
                " ORDER BY job, name");
    q.bind(1, id.value).bind(2, job);
    std::vector<Runvar> out;
    while (q.step()) out.push_back({q.col_text(0), q.col_text(1), q.col_text(2), q.col_int(3) != 0});
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<void> set_runvar(FlightId id, const Runvar& r) override {
    Stmt q(db_, "INSERT INTO runvars (flight, job, name, value, synth) VALUES (?1, ?2, ?3, ?4, ?5)"
                " ON CONFLICT (flight, job, name) DO UPDATE SET value = excluded.value, synth = excluded.synth");
    q.bind(1, id.value).bind(2, r.job).bind(3, r.name).bind(4, r.value).bind(5, r.synth ? 1 : 0);
    if (Status s = q.exec(); !s.ok()) return s;
    return {};
  }

  Result<bool> revision_tested(const std::string& branch, const std::string& tree,
                               const std::string& revision) const override {
    // runvars_name_value finds the candidate flights; flights' primary key filters them.
    Stmt q(db_, "SELECT 1 FROM runvars r JOIN flights f ON f.flight = r.flight"
                " WHERE r.name = ?1 AND r.value = ?2 AND f.branch = ?3 AND f.finished IS NOT NULL"
                " AND f.blessing IN ('real', 'real-retest', 'real-bisect') LIMIT 1");
    q.bind(1, "revision_" + tree).bind(2, revision).bind(3, branch);
    bool found = q.step();
    if (!q.status().ok()) return q.status();
    return found;
  }

  Result<std::optional<std::pair<FlightId, std::string>>> last_tolerable_revision(
      const std::string& branch, const std::string& tree) const override {
    Stmt q(db_, "SELECT f.flight, r.value FROM flights f JOIN runvars r ON r.flight = f.flight"
                " WHERE f.branch = ?1 AND f.blessing = 'real' AND f.outcome IN ('perfect', 'tolerable')"
                " AND r.name = ?2 ORDER BY f.flight DESC LIMIT 1");
    q.bind(1, branch).bind(2, "revision_" + tree);
    std::optional<std::pair<FlightId, std::string>> out;
    if (q.step()) out = std::make_pair(FlightId{q.col_int(0)}, q.col_text(1));
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<std::vector<RevisionHit>> flights_with_revision(const std::vector<std::string>& names, const std::string& prefix,
                                                         int limit) const override {
    std::string end = prefix;
    if (end.empty()) return std::vector<RevisionHit>{};
    end.back() = static_cast<char>(end.back() + 1);
    std::vector<RevisionHit> out;
    for (const auto& name : names) {
      Stmt q(db_, "SELECT flight, job, value FROM runvars WHERE name = ?1 AND value >= ?2 AND value < ?3"
                  " ORDER BY flight DESC LIMIT ?4");
      q.bind(1, name).bind(2, prefix).bind(3, end).bind(4, limit);
      while (q.step()) out.push_back({FlightId{q.col_int(0)}, q.col_text(1), name, q.col_text(2)});
      if (!q.status().ok()) return q.status();
    }
    std::sort(out.begin(), out.end(), [](const RevisionHit& a, const RevisionHit& b) {
      return b.flight < a.flight || (!(a.flight < b.flight) && a.job < b.job);
    });
    return out;
  }

  Result<std::vector<FlightId>> flights_with_runvar(const std::string& branch, const std::string& name,
                                                    const std::string& value) const override {
    Stmt q(db_, "SELECT DISTINCT r.flight FROM runvars r JOIN flights f ON f.flight = r.flight"
                " WHERE r.name = ?1 AND r.value = ?2 AND f.branch = ?3"
                " AND f.blessing IN ('real', 'real-retest', 'real-bisect') ORDER BY r.flight DESC");
    q.bind(1, name).bind(2, value).bind(3, branch);
    std::vector<FlightId> out;
    while (q.step()) out.push_back(FlightId{q.col_int(0)});
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<std::optional<FlightId>> first_pass(const std::string& branch, const std::string& job,
                                             const std::string& testid) const override {
    // steps_testid walks this step's rows in flight order; the first that qualifies wins.
    Stmt q(db_, "SELECT s.flight FROM steps s JOIN flights f ON f.flight = s.flight"
                " WHERE s.job = ?1 AND s.testid = ?2 AND s.status = 'pass' AND f.branch = ?3"
                " AND f.finished IS NOT NULL AND f.blessing IN ('real', 'real-retest', 'real-bisect')"
                " ORDER BY s.flight LIMIT 1");
    q.bind(1, job).bind(2, testid).bind(3, branch);
    std::optional<FlightId> out;
    if (q.step()) out = FlightId{q.col_int(0)};
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<std::int64_t> record_verdict(const StoredVerdict& v) override {
    Durable durable(*this);
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    Stmt q(db_, "INSERT INTO verdicts (flight, judged, who, reason, outcome, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    q.bind(1, v.flight.value).bind(2, v.judged ? v.judged : now()).bind(3, v.who).bind(4, v.reason);
    q.bind(5, v.outcome).bind(6, v.body);
    if (Status s = q.exec(); !s.ok()) return s.with_context("verdict of flight " + v.flight.str());
    std::int64_t id = db_.last_insert_rowid();
    Stmt o(db_, "UPDATE flights SET outcome = ?2 WHERE flight = ?1");
    o.bind(1, v.flight.value).bind(2, v.outcome);
    if (auto r = changed_one(o, "flight " + v.flight.str()); !r) return r.error();
    if (auto n = insert_notifications(v.notifications); !n) return n.error().with_context("notifications of flight " + v.flight.str());
    if (Status s = tx.commit(); !s.ok()) return s;
    return id;
  }

  Result<std::vector<StoredVerdict>> verdicts(FlightId flight) const override {
    Stmt q(db_, "SELECT id, judged, who, reason, outcome, body FROM verdicts WHERE flight = ?1 ORDER BY id");
    q.bind(1, flight.value);
    std::vector<StoredVerdict> out;
    while (q.step()) {
      out.push_back({q.col_int(0), flight, q.col_int(1), q.col_text(2), q.col_text(3), q.col_text(4), q.col_text(5)});
    }
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<std::int64_t> record_push_intent(const Push& p) override {
    Durable durable(*this);
    Stmt q(db_, "INSERT INTO pushes (flight, branch, url, ref, old_rev, new_rev, state, message, who, created)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'intent', ?7, ?8, ?9)");
    q.bind(1, p.flight ? std::optional<std::int64_t>(p.flight->value) : std::nullopt);
    q.bind(2, p.branch).bind(3, p.url).bind(4, p.ref).bind(5, p.old_rev).bind(6, p.new_rev).bind(7, p.message);
    q.bind(8, p.who.empty() ? std::string("daemon") : p.who).bind(9, now());
    if (Status s = q.exec(); !s.ok()) return s;
    return db_.last_insert_rowid();
  }

  Result<void> finish_push(std::int64_t id, const std::string& state, const std::string& message) override {
    Durable durable(*this);
    Stmt q(db_, "UPDATE pushes SET state = ?2, message = ?3, finished = ?4 WHERE id = ?1 AND state = 'intent'");
    q.bind(1, id).bind(2, state).bind(3, message).bind(4, now());
    return changed_one(q, "pending push " + std::to_string(id));
  }

  static Push read_push(const Stmt& q) {
    Push p;
    p.id = q.col_int(0);
    if (auto f = q.col_opt_int(1)) p.flight = FlightId{*f};
    p.branch = q.col_text(2);
    p.url = q.col_text(3);
    p.ref = q.col_text(4);
    p.old_rev = q.col_text(5);
    p.new_rev = q.col_text(6);
    p.state = q.col_text(7);
    p.message = q.col_text(8);
    p.who = q.col_text(9);
    p.created = q.col_int(10);
    p.finished = q.col_opt_int(11);
    return p;
  }
  static constexpr const char* kPushCols =
      "SELECT id, flight, branch, url, ref, old_rev, new_rev, state, message, who, created, finished FROM pushes ";

  Result<std::vector<Push>> pending_pushes() const override {
    Stmt q(db_, std::string(kPushCols) + "WHERE state = 'intent' ORDER BY id");
    std::vector<Push> out;
    while (q.step()) out.push_back(read_push(q));
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<std::vector<Push>> pushes(const std::string& branch, int limit) const override {
    Stmt q(db_, std::string(kPushCols) + (branch.empty() ? "WHERE 1" : "WHERE branch = ?1") + " ORDER BY id DESC LIMIT ?2");
    q.bind(1, branch).bind(2, limit);
    std::vector<Push> out;
    while (q.step()) out.push_back(read_push(q));
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<std::map<std::string, int>> consecutive_push_failures() const override {
    Stmt q(db_, "SELECT p.branch, COUNT(*) FROM pushes p WHERE p.state IN ('failed', 'refused') AND p.id >"
                " IFNULL((SELECT MAX(d.id) FROM pushes d WHERE d.branch = p.branch AND d.state = 'done'), 0)"
                " GROUP BY p.branch");
    std::map<std::string, int> out;
    while (q.step()) out[q.col_text(0)] = static_cast<int>(q.col_int(1));
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<std::optional<Push>> push_of_flight(FlightId id) const override {
    Stmt q(db_, std::string(kPushCols) + "WHERE flight = ?1 ORDER BY id DESC LIMIT 1");
    q.bind(1, id.value);
    std::optional<Push> out;
    if (q.step()) out = read_push(q);
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<void> set_branch_blocked(const std::string& branch, bool blocked, const std::string& who,
                                  const std::string& reason) override {
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    Stmt q(db_, "INSERT INTO branch_controls (branch, blocked, reason, who, at) VALUES (?1, ?2, ?3, ?4, ?5)"
                " ON CONFLICT (branch) DO UPDATE SET blocked = excluded.blocked, reason = excluded.reason,"
                " who = excluded.who, at = excluded.at");
    q.bind(1, branch).bind(2, blocked ? 1 : 0).bind(3, reason).bind(4, who).bind(5, now());
    if (Status s = q.exec(); !s.ok()) return s;
    Stmt a(db_, "INSERT INTO branch_audit (branch, action, who, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)");
    a.bind(1, branch).bind(2, blocked ? "block" : "unblock").bind(3, who).bind(4, reason).bind(5, now());
    if (Status s = a.exec(); !s.ok()) return s;
    if (Status s = tx.commit(); !s.ok()) return s;
    return {};
  }

  Result<std::optional<std::string>> branch_blocked(const std::string& branch) const override {
    Stmt q(db_, "SELECT reason, who FROM branch_controls WHERE branch = ?1 AND blocked = 1");
    q.bind(1, branch);
    std::optional<std::string> out;
    if (q.step()) out = q.col_text(0) + " (" + q.col_text(1) + ")";
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<void> record_branch_audit(const BranchAudit& e) override {
    Stmt a(db_, "INSERT INTO branch_audit (branch, action, detail, who, reason, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    a.bind(1, e.branch).bind(2, e.action).bind(3, e.detail).bind(4, e.who).bind(5, e.reason).bind(6, e.at ? e.at : now());
    if (Status s = a.exec(); !s.ok()) return s;
    return {};
  }

  Result<std::vector<BranchAudit>> branch_audit(const std::string& branch, int limit) const override {
    Stmt q(db_, std::string("SELECT id, branch, action, detail, who, reason, at FROM branch_audit") +
                    (branch.empty() ? " WHERE 1" : " WHERE branch = ?1") + " ORDER BY id DESC LIMIT ?2");
    q.bind(1, branch).bind(2, limit);
    std::vector<BranchAudit> out;
    while (q.step()) {
      out.push_back({q.col_int(0), q.col_text(1), q.col_text(2), q.col_text(3), q.col_text(4), q.col_text(5),
                     q.col_int(6)});
    }
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<void> sync_hosts(const std::vector<Host>& configured) override {
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    std::set<std::string> names;
    for (const Host& h : configured) {
      names.insert(h.host);
      Stmt up(db_, "INSERT INTO hosts (host, kind) VALUES (?1, ?2) ON CONFLICT (host) DO UPDATE SET kind = excluded.kind,"
                   " state = CASE WHEN state_reason = 'no longer configured' THEN 'enabled' ELSE state END,"
                   " state_reason = CASE WHEN state_reason = 'no longer configured' THEN '' ELSE state_reason END");
      up.bind(1, h.host).bind(2, h.kind);
      if (Status s = up.exec(); !s.ok()) return s;
      Stmt del(db_, "DELETE FROM host_flags WHERE host = ?1");
      del.bind(1, h.host);
      if (Status s = del.exec(); !s.ok()) return s;
      for (const std::string& flag : h.flags) {
        Stmt ins(db_, "INSERT OR IGNORE INTO host_flags (host, flag) VALUES (?1, ?2)");
        ins.bind(1, h.host).bind(2, flag);
        if (Status s = ins.exec(); !s.ok()) return s;
      }
    }
    Stmt all(db_, "SELECT host FROM hosts WHERE state = 'enabled'");
    std::vector<std::string> gone;
    while (all.step()) {
      if (!names.count(all.col_text(0))) gone.push_back(all.col_text(0));
    }
    if (!all.status().ok()) return all.status();
    for (const std::string& h : gone) {
      Stmt d(db_, "UPDATE hosts SET state = 'disabled', state_reason = 'no longer configured' WHERE host = ?1");
      d.bind(1, h);
      if (Status s = d.exec(); !s.ok()) return s;
    }
    if (Status s = tx.commit(); !s.ok()) return s;
    return {};
  }

  Result<std::vector<Host>> list_hosts() const override {
    Stmt q(db_, "SELECT host, kind, state, state_reason, consecutive_broken, held_flight, IFNULL(held_job, '')"
                " FROM hosts ORDER BY host");
    std::vector<Host> out;
    while (q.step()) {
      Host h;
      h.host = q.col_text(0);
      h.kind = q.col_text(1);
      h.state = q.col_text(2);
      h.state_reason = q.col_text(3);
      h.consecutive_broken = static_cast<int>(q.col_int(4));
      if (auto f = q.col_opt_int(5)) h.held_flight = FlightId{*f};
      h.held_job = q.col_text(6);
      out.push_back(std::move(h));
    }
    if (!q.status().ok()) return q.status();
    for (Host& h : out) {
      Stmt f(db_, "SELECT flag FROM host_flags WHERE host = ?1 ORDER BY flag");
      f.bind(1, h.host);
      while (f.step()) h.flags.push_back(f.col_text(0));
      if (!f.status().ok()) return f.status();
    }
    return out;
  }

  Result<void> set_host_state(const std::string& host, const std::string& state, const std::string& reason) override {
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    Stmt q(db_, "UPDATE hosts SET state = ?2, state_reason = ?3,"
                " consecutive_broken = CASE WHEN ?2 = 'enabled' THEN 0 ELSE consecutive_broken END WHERE host = ?1");
    q.bind(1, host).bind(2, state).bind(3, reason);
    if (auto r = changed_one(q, "host " + host); !r) return r;
    Stmt ev(db_, "INSERT INTO host_events (host, event, detail, at) VALUES (?1, ?2, ?3, ?4)");
    ev.bind(1, host).bind(2, state == "enabled" ? "enable" : state == "disabled" ? "disable" : "quarantine");
    ev.bind(3, reason).bind(4, now());
    if (Status s = ev.exec(); !s.ok()) return s;
    if (Status s = tx.commit(); !s.ok()) return s;
    return {};
  }

  Result<bool> try_allocate_host(const std::string& host, FlightId flight, const std::string& job,
                                 const std::string& role) override {
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    Stmt q(db_, "UPDATE hosts SET held_flight = ?2, held_job = ?3"
                " WHERE host = ?1 AND state = 'enabled' AND held_flight IS NULL");
    q.bind(1, host).bind(2, flight.value).bind(3, job);
    if (Status s = q.exec(); !s.ok()) return s;
    if (db_.changes() == 0) return false;
    Stmt ev(db_, "INSERT INTO host_events (host, flight, job, role, event, at) VALUES (?1, ?2, ?3, ?4, 'allocate', ?5)");
    ev.bind(1, host).bind(2, flight.value).bind(3, job).bind(4, role).bind(5, now());
    if (Status s = ev.exec(); !s.ok()) return s;
    if (Status s = tx.commit(); !s.ok()) return s;
    return true;
  }

  Result<void> set_waiting(const Waiter& w) override {
    Stmt q(db_, "INSERT OR IGNORE INTO host_waits (flight, job, priority, build, roles, since, remaining)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    q.bind(1, w.flight.value).bind(2, w.job).bind(3, w.priority).bind(4, w.build ? 1 : 0).bind(5, w.roles).bind(6, now());
    q.bind(7, w.remaining);
    if (Status s = q.exec(); !s.ok()) return s;
    return {};
  }

  Result<void> clear_waiting(FlightId flight, const std::string& job) override {
    Stmt q(db_, "DELETE FROM host_waits WHERE flight = ?1 AND job = ?2");
    q.bind(1, flight.value).bind(2, job);
    if (Status s = q.exec(); !s.ok()) return s;
    return {};
  }

  Result<std::vector<Waiter>> waiters() const override {
    Stmt q(db_, "SELECT flight, job, priority, build, roles, remaining, since FROM host_waits");
    std::vector<Waiter> out;
    while (q.step()) {
      out.push_back({FlightId{q.col_int(0)}, q.col_text(1), static_cast<int>(q.col_int(2)), q.col_int(3) != 0,
                     q.col_text(4), q.col_int(5), q.col_int(6)});
    }
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<void> release_hosts(FlightId flight, const std::string& job) override {
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    Stmt ev(db_, "INSERT INTO host_events (host, flight, job, event, at)"
                 " SELECT host, held_flight, held_job, 'release', ?3 FROM hosts WHERE held_flight = ?1 AND held_job = ?2");
    ev.bind(1, flight.value).bind(2, job).bind(3, now());
    if (Status s = ev.exec(); !s.ok()) return s;
    Stmt q(db_, "UPDATE hosts SET held_flight = NULL, held_job = NULL WHERE held_flight = ?1 AND held_job = ?2");
    q.bind(1, flight.value).bind(2, job);
    if (Status s = q.exec(); !s.ok()) return s;
    if (Status s = tx.commit(); !s.ok()) return s;
    return {};
  }

  Result<bool> record_host_result(const std::string& host, const std::string& job_status,
                                  int quarantine_after) override {
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    bool quarantined = false;
    if (job_status == "broken") {
      Stmt q(db_, "UPDATE hosts SET consecutive_broken = consecutive_broken + 1 WHERE host = ?1");
      q.bind(1, host);
      if (Status s = q.exec(); !s.ok()) return s;
      Stmt c(db_, "SELECT consecutive_broken, state FROM hosts WHERE host = ?1");
      c.bind(1, host);
      if (c.step() && c.col_int(0) >= quarantine_after && c.col_text(1) == "enabled") {
        std::string reason = "broke " + std::to_string(c.col_int(0)) + " consecutive jobs";
        Stmt u(db_, "UPDATE hosts SET state = 'quarantined', state_reason = ?2 WHERE host = ?1");
        u.bind(1, host).bind(2, reason);
        if (Status s = u.exec(); !s.ok()) return s;
        Stmt ev(db_, "INSERT INTO host_events (host, event, detail, at) VALUES (?1, 'quarantine', ?2, ?3)");
        ev.bind(1, host).bind(2, reason).bind(3, now());
        if (Status s = ev.exec(); !s.ok()) return s;
        quarantined = true;
      }
      if (!c.status().ok()) return c.status();
    } else if (job_status == "pass" || job_status == "fail") {
      Stmt q(db_, "UPDATE hosts SET consecutive_broken = 0 WHERE host = ?1");
      q.bind(1, host);
      if (Status s = q.exec(); !s.ok()) return s;
    }
    if (Status s = tx.commit(); !s.ok()) return s;
    return quarantined;
  }

  Result<std::vector<HostEvent>> host_history(const std::string& host, int limit) const override {
    Stmt q(db_, "SELECT id, host, flight, IFNULL(job, ''), role, event, detail, at FROM host_events"
                " WHERE host = ?1 ORDER BY id DESC LIMIT ?2");
    q.bind(1, host).bind(2, limit);
    std::vector<HostEvent> out;
    while (q.step()) {
      HostEvent e;
      e.id = q.col_int(0);
      e.host = q.col_text(1);
      if (auto f = q.col_opt_int(2)) e.flight = FlightId{*f};
      e.job = q.col_text(3);
      e.role = q.col_text(4);
      e.event = q.col_text(5);
      e.detail = q.col_text(6);
      e.at = q.col_int(7);
      out.push_back(std::move(e));
    }
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<std::vector<std::pair<FlightId, std::vector<Runvar>>>> find_builds(const std::string& job,
                                                                            const std::string& inputs,
                                                                            FlightId before) const override {
    Stmt q(db_, "SELECT r.flight FROM runvars r JOIN jobs j ON j.flight = r.flight AND j.job = r.job"
                " WHERE r.name = 'build_inputs' AND r.value = ?2 AND r.job = ?1 AND j.status = 'pass'"
                " AND r.flight < ?3 ORDER BY r.flight DESC LIMIT 20");
    q.bind(1, job).bind(2, inputs).bind(3, before.value);
    std::vector<std::pair<FlightId, std::vector<Runvar>>> out;
    while (q.step()) out.push_back({FlightId{q.col_int(0)}, {}});
    if (!q.status().ok()) return q.status();
    for (auto& [flight, vars] : out) {
      auto all = list_runvars(flight, job);
      if (!all) return all.error();
      for (auto& v : *all) {
        if (v.synth) vars.push_back(v);
      }
    }
    return out;
  }

  Result<void> requeue_job(FlightId flight, const std::string& job, const std::string& reason) override {
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    if (Status s = requeue(flight, job, reason, /*count_restart=*/false); !s.ok()) return s;
    if (db_.changes() == 0) return Status::not_found("job " + job + " of flight " + flight.str() + " does not exist");
    return tx.commit();
  }

  Result<Recovery> recover_after_restart(const std::string& reason,
                                         const std::function<bool(FlightId)>& in_use) override {
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    Recovery r;
    // Flights another live process is running (a `pushgate flight run`) are left alone.
    std::string skip = "(-1";
    {
      Stmt q(db_, "SELECT flight FROM flights WHERE outcome IS NULL ORDER BY flight");  // flights_unfinished
      while (q.step()) {
        FlightId f{q.col_int(0)};
        if (in_use && in_use(f)) {
          r.in_use.push_back(f);
          skip += "," + std::to_string(f.value);
        }
      }
      if (!q.status().ok()) return q.status();
    }
    skip += ")";
    {
      Stmt q(db_, "SELECT flight, job, stepno, testid, status, started, finished, log_path FROM steps"
                  " WHERE status = 'running' AND flight NOT IN " + skip);
      while (q.step()) {
        r.interrupted_steps.push_back({FlightId{q.col_int(0)}, q.col_text(1), static_cast<int>(q.col_int(2)),
                                       q.col_text(3), "broken", q.col_opt_int(5), now(), q.col_text(7)});
      }
      if (!q.status().ok()) return q.status();
    }
    Stmt steps(db_, "UPDATE steps SET status = 'broken', finished = ?1 WHERE status = 'running' AND flight NOT IN " + skip);
    steps.bind(1, now());
    if (Status s = steps.exec(); !s.ok()) return s;
    std::vector<std::tuple<std::int64_t, std::string, bool>> jobs;
    {
      Stmt q(db_, "SELECT j.flight, j.job, EXISTS (SELECT 1 FROM runvars v WHERE v.flight = j.flight"
                  " AND v.job = j.job AND v.name = 'restarts') FROM jobs j WHERE j.status IN ('running', 'preparing')"
                  " AND j.flight NOT IN " + skip);
      while (q.step()) jobs.emplace_back(q.col_int(0), q.col_text(1), q.col_int(2) != 0);
      if (!q.status().ok()) return q.status();
    }
    for (const auto& [flight, job, again] : jobs) {
      if (!again) {
        if (Status s = requeue(FlightId{flight}, job, "re-queued after " + reason, /*count_restart=*/true); !s.ok()) {
          return s;
        }
        r.requeued.emplace_back(FlightId{flight}, job);
      } else {
        Stmt u(db_, "UPDATE jobs SET status = 'broken', status_reason = ?3 WHERE flight = ?1 AND job = ?2");
        u.bind(1, flight).bind(2, job).bind(3, "interrupted twice (" + reason + ")");
        if (Status s = u.exec(); !s.ok()) return s;
        r.given_up.emplace_back(FlightId{flight}, job);
      }
    }
    Stmt ev(db_, "INSERT INTO host_events (host, flight, job, event, detail, at)"
                 " SELECT host, held_flight, held_job, 'release', ?1, ?2 FROM hosts"
                 " WHERE held_flight IS NOT NULL AND held_flight NOT IN " + skip);
    ev.bind(1, reason).bind(2, now());
    if (Status s = ev.exec(); !s.ok()) return s;
    if (Status s = db_.exec("UPDATE hosts SET held_flight = NULL, held_job = NULL"
                            " WHERE held_flight IS NOT NULL AND held_flight NOT IN " + skip); !s.ok()) {
      return s;
    }
    if (Status s = db_.exec("DELETE FROM host_waits WHERE flight NOT IN " + skip); !s.ok()) return s;
    {
      Stmt q(db_, "SELECT flight FROM flights f WHERE IFNULL(outcome, '') = ''"
                  " AND EXISTS (SELECT 1 FROM jobs j WHERE j.flight = f.flight)"
                  " AND flight NOT IN " + skip + " ORDER BY flight");
      while (q.step()) r.unfinished.push_back(FlightId{q.col_int(0)});
      if (!q.status().ok()) return q.status();
    }
    if (Status s = tx.commit(); !s.ok()) return s;
    return r;
  }

  Result<std::vector<JobRun>> job_history(const std::string& branch, const std::string& job, const std::string& testid,
                                          int limit) const override {
    // flights_branch backwards, each flight's job and step by primary key.
    std::string sql = testid.empty()
        ? "SELECT f.flight, f.created, j.status, '' FROM flights f JOIN jobs j ON j.flight = f.flight AND j.job = ?2"
          " WHERE f.branch = ?1 ORDER BY f.flight DESC LIMIT ?3"
        // The step's last run in the job when a recipe has it twice.
        : "SELECT f.flight, f.created, j.status, (SELECT s.status FROM steps s WHERE s.flight = f.flight AND s.job = ?2"
          " AND s.testid = ?4 ORDER BY s.stepno DESC LIMIT 1) AS step_status"
          " FROM flights f JOIN jobs j ON j.flight = f.flight AND j.job = ?2"
          " WHERE f.branch = ?1 AND step_status IS NOT NULL ORDER BY f.flight DESC LIMIT ?3";
    Stmt q(db_, sql);
    q.bind(1, branch).bind(2, job).bind(3, limit);
    if (!testid.empty()) q.bind(4, testid);
    std::vector<JobRun> out;
    while (q.step()) out.push_back({FlightId{q.col_int(0)}, q.col_int(1), q.col_text(2), q.col_text(3), {}});
    if (!q.status().ok()) return q.status();
    for (auto& run : out) {
      Stmt v(db_, "SELECT name, value FROM runvars WHERE flight = ?1 AND job = ?2 AND (name = 'host'"
                  " OR name BETWEEN 'revision_' AND 'revision_~' OR name BETWEEN 'built_revision_' AND 'built_revision_~')");
      v.bind(1, run.flight.value).bind(2, job);
      while (v.step()) run.runvars[v.col_text(0)] = v.col_text(1);
      if (!v.status().ok()) return v.status();
    }
    return out;
  }

  Result<std::vector<std::int64_t>> job_durations(const std::string& job, int limit) const override {
    // jobs_job backwards; each run's steps by primary key. A reused build
    // (no steps) has no duration and is skipped.
    Stmt q(db_, "SELECT d FROM (SELECT j.flight, (SELECT MAX(s.finished) - MIN(s.started) FROM steps s"
                " WHERE s.flight = j.flight AND s.job = j.job) AS d FROM jobs j"
                " WHERE j.job = ?1 AND j.status IN ('pass', 'fail') ORDER BY j.flight DESC)"
                " WHERE d IS NOT NULL LIMIT ?2");
    q.bind(1, job).bind(2, limit);
    std::vector<std::int64_t> out;
    while (q.step()) out.push_back(q.col_int(0));
    if (!q.status().ok()) return q.status();
    return out;
  }

  Result<Counts> counts() const override {
    Counts c;
    auto group = [&](const char* sql, std::map<std::string, std::int64_t>& out) -> Status {
      Stmt q(db_, sql);
      while (q.step()) out[q.col_text(0)] = q.col_int(1);
      return q.status();
    };
    // Counters kept by triggers (schema 7), gauges through partial indexes:
    // nothing here reads the history, whatever its size.
    std::map<std::string, std::int64_t> step;
    Stmt k(db_, "SELECT name, label, value FROM metric_counters");
    while (k.step()) {
      std::string name = k.col_text(0);
      if (name == "flights_total") c.flights_by_outcome[k.col_text(1)] = k.col_int(2);
      else if (name == "jobs_total") c.jobs_ended_by_status[k.col_text(1)] = k.col_int(2);
      else if (name == "pushes_total") c.pushes_by_state[k.col_text(1)] = k.col_int(2);
      else if (name == "step_seconds_bucket") step[k.col_text(1)] = k.col_int(2);
      else if (name == "step_seconds_count") c.step_seconds_count = k.col_int(2);
      else if (name == "step_seconds_sum") c.step_seconds_sum = k.col_int(2);
    }
    if (!k.status().ok()) return k.status();
    for (const char* s : {"queued", "preparing", "running"}) c.jobs_by_status[s] = 0;
    if (Status s = group("SELECT status, COUNT(*) FROM jobs WHERE status IN ('queued', 'preparing', 'running') GROUP BY 1",
                         c.jobs_by_status); !s.ok()) return s;
    {
      Stmt u(db_, "SELECT COUNT(*) FROM flights WHERE outcome IS NULL");
      if (u.step()) c.flights_unfinished = u.col_int(0);
      if (!u.status().ok()) return u.status();
    }
    for (const char* s : {"enabled", "disabled", "quarantined", "busy"}) c.hosts_by_state[s] = 0;
    if (Status s = group("SELECT CASE WHEN held_flight IS NOT NULL THEN 'busy' ELSE state END, COUNT(*) FROM hosts GROUP BY 1",
                         c.hosts_by_state); !s.ok()) return s;
    for (double le : {1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0}) {
      c.step_seconds_buckets.emplace_back(le, step[std::to_string(static_cast<int>(le))]);
    }
    return c;
  }

  Result<std::int64_t> record_frozen_change(const FrozenChange& c) override {
    Durable durable(*this);
    Stmt q(db_, "INSERT INTO frozen_audit (tree, branch, ref, action, old_rev, new_rev, describe, who, reason, at,"
                " state, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    q.bind(1, c.tree).bind(2, c.branch).bind(3, c.ref).bind(4, c.action).bind(5, c.old_rev).bind(6, c.new_rev);
    q.bind(7, c.describe).bind(8, c.who).bind(9, c.reason).bind(10, c.at ? c.at : now());
    q.bind(11, c.state).bind(12, c.note);
    if (Status s = q.exec(); !s.ok()) return s;
    return db_.last_insert_rowid();
  }

  Result<void> finish_frozen_change(std::int64_t id, const std::string& state, const std::string& note) override {
    if (state != "done" && state != "failed" && state != "refused") {
      return Status::invalid_argument("a frozen-ref change ends done, failed or refused, not \"" + state + "\"");
    }
    Durable durable(*this);
    Stmt q(db_, "UPDATE frozen_audit SET state = ?2, note = ?3 WHERE id = ?1 AND state = 'intent'");
    q.bind(1, id).bind(2, state).bind(3, note);
    return changed_one(q, "pending frozen-ref change " + std::to_string(id));
  }

  Result<std::vector<FrozenChange>> pending_frozen_changes() const override {
    Stmt q(db_, std::string(kFrozenColumns) + " WHERE state = 'intent' ORDER BY id");
    return frozen_rows(q);
  }

  Result<std::vector<FrozenChange>> frozen_history(const std::string& tree, const std::string& branch,
                                                   int limit) const override {
    Stmt q(db_, std::string(kFrozenColumns) + " WHERE 1" + (tree.empty() ? "" : " AND tree = ?1") +
                    (branch.empty() ? "" : " AND branch = ?2") + " ORDER BY id DESC LIMIT ?3");
    q.bind(1, tree).bind(2, branch).bind(3, limit);
    return frozen_rows(q);
  }

  Result<int> enqueue_notifications(const std::vector<Notification>& list) override {
    Durable durable(*this);
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    auto added = insert_notifications(list);
    if (!added) return added.error();
    if (Status s = tx.commit(); !s.ok()) return s;
    return added;
  }

  /// Inside the caller's transaction.
  Result<int> insert_notifications(const std::vector<Notification>& list) {
    int added = 0;
    for (const auto& n : list) {
      Stmt q(db_, "INSERT OR IGNORE INTO notifications (event, subject_id, channel, target, title, headers, body,"
                  " next_at, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
      std::int64_t t = now();
      q.bind(1, n.event).bind(2, n.subject_id).bind(3, n.channel).bind(4, n.target).bind(5, n.title)
          .bind(6, n.headers).bind(7, n.body).bind(8, n.next_at ? n.next_at : t).bind(9, t);
      if (Status s = q.exec(); !s.ok()) return s;
      added += db_.changes() > 0 ? 1 : 0;
    }
    return added;
  }

  Result<std::vector<Notification>> due_notifications(std::int64_t at, int limit) const override {
    Stmt q(db_, std::string(kNotificationColumns) + " WHERE state = 'pending' AND next_at <= ?1"
                " ORDER BY next_at, notification LIMIT ?2");
    q.bind(1, at).bind(2, limit);
    return notification_rows(q);
  }

  Result<bool> claim_notification(const Notification& n, std::int64_t until) override {
    Stmt q(db_, "UPDATE notifications SET next_at = ?4 WHERE notification = ?1 AND state = 'pending'"
                " AND next_at = ?2 AND attempts = ?3");
    q.bind(1, n.id).bind(2, n.next_at).bind(3, n.attempts).bind(4, until);
    if (Status s = q.exec(); !s.ok()) return s;
    return db_.changes() == 1;
  }

  Result<void> finish_notification(std::int64_t id, const std::string& state, const std::string& error,
                                   std::int64_t next_at) override {
    Durable durable(*this);  // a "sent" lost to a power cut would send it again
    Stmt q(db_, "UPDATE notifications SET state = ?2, last_error = ?3, next_at = ?4, attempts = attempts + 1,"
                " sent_at = CASE WHEN ?2 = 'sent' THEN ?5 ELSE sent_at END WHERE notification = ?1");
    q.bind(1, id).bind(2, state).bind(3, error).bind(4, next_at).bind(5, now());
    return q.exec();
  }

  Result<std::vector<Notification>> notifications_of(const std::string& event, std::int64_t subject) const override {
    Stmt q(db_, std::string(kNotificationColumns) + " WHERE event = ?1 AND subject_id = ?2 ORDER BY notification");
    q.bind(1, event).bind(2, subject);
    return notification_rows(q);
  }

  Result<void> put_artifact(const Artifact& a) override {
    Stmt q(db_, "INSERT INTO artifacts (flight, job, stepno, key, content, created, digest, path)"
                " VALUES (?1, ?2, ?3, ?4, '', ?5, ?6, ?7) ON CONFLICT (flight, job, key) DO UPDATE SET"
                " stepno = excluded.stepno, created = excluded.created, digest = excluded.digest, path = excluded.path");
    q.bind(1, a.flight.value).bind(2, a.job).bind(3, a.stepno).bind(4, a.key).bind(5, a.created ? a.created : now());
    q.bind(6, a.digest).bind(7, a.path);
    return q.exec();
  }

  Result<std::vector<Artifact>> list_artifacts(FlightId flight, const std::string& job) const override {
    Stmt q(db_, std::string(kArtifactColumns) + " WHERE flight = ?1 AND (?2 = '' OR job = ?2) ORDER BY job, key");
    q.bind(1, flight.value).bind(2, job);
    return artifact_rows(q);
  }

  Result<std::vector<Artifact>> artifact_history(const std::string& branch, const std::string& job,
                                                 const std::string& key, int limit) const override {
    // artifacts_key gives the key's rows newest flight first; the flights' primary key filters them.
    Stmt q(db_, "SELECT a.flight, a.job, a.stepno, a.key, a.digest, a.path, a.created FROM artifacts a"
                " JOIN flights f ON f.flight = a.flight WHERE a.key = ?1 AND a.job = ?2 AND f.branch = ?3"
                " AND f.finished IS NOT NULL ORDER BY a.flight DESC LIMIT ?4");
    q.bind(1, key).bind(2, job).bind(3, branch).bind(4, limit);
    return artifact_rows(q);
  }

  Result<void> accept_abi(const std::vector<AbiAcceptance>& acceptances) override {
    Durable durable(*this);
    Transaction tx(db_);
    if (!tx.status().ok()) return tx.status();
    for (const AbiAcceptance& a : acceptances) {
      Stmt q(db_, "INSERT INTO abi_acceptances (branch, key, job, flight, digest, old_flight, old_digest, who, reason, at)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
      q.bind(1, a.branch).bind(2, a.key).bind(3, a.job).bind(4, a.flight.value).bind(5, a.digest);
      q.bind(6, a.old_flight ? std::optional<std::int64_t>(a.old_flight->value) : std::nullopt);
      q.bind(7, a.old_digest).bind(8, a.who).bind(9, a.reason).bind(10, a.at ? a.at : now());
      if (Status s = q.exec(); !s.ok()) return s;
    }
    return tx.commit();
  }

  Result<std::vector<AbiAcceptance>> abi_acceptances(const std::string& branch, const std::string& key) const override {
    Stmt q(db_, "SELECT id, branch, key, job, flight, digest, old_flight, old_digest, who, reason, at"
                " FROM abi_acceptances WHERE branch = ?1 AND (?2 = '' OR key = ?2) ORDER BY id");
    q.bind(1, branch).bind(2, key);
    std::vector<AbiAcceptance> out;
    while (q.step()) {
      AbiAcceptance a;
      a.id = q.col_int(0);
      a.branch = q.col_text(1);
      a.key = q.col_text(2);
      a.job = q.col_text(3);
      a.flight = FlightId{q.col_int(4)};
      a.digest = q.col_text(5);
      if (auto old = q.col_opt_int(6)) a.old_flight = FlightId{*old};
      a.old_digest = q.col_text(7);
      a.who = q.col_text(8);
      a.reason = q.col_text(9);
      a.at = q.col_int(10);
      out.push_back(std::move(a));
    }
    if (!q.status().ok()) return q.status();
    return out;
  }

 private:
  static constexpr const char* kNotificationColumns =
      "SELECT notification, event, subject_id, channel, target, title, headers, body, state, attempts, next_at,"
      " created, sent_at, last_error FROM notifications";

  static constexpr const char* kArtifactColumns =
      "SELECT flight, job, stepno, key, digest, path, created FROM artifacts";

  static Result<std::vector<Artifact>> artifact_rows(Stmt& q) {
    std::vector<Artifact> out;
    while (q.step()) {
      out.push_back({FlightId{q.col_int(0)}, q.col_text(1), static_cast<int>(q.col_int(2)), q.col_text(3),
                     q.col_text(4), q.col_text(5), q.col_int(6)});
    }
    if (!q.status().ok()) return q.status();
    return out;
  }

  static Result<std::vector<Notification>> notification_rows(Stmt& q) {
    std::vector<Notification> out;
    while (q.step()) {
      Notification n;
      n.id = q.col_int(0);
      n.event = q.col_text(1);
      n.subject_id = q.col_int(2);
      n.channel = q.col_text(3);
      n.target = q.col_text(4);
      n.title = q.col_text(5);
      n.headers = q.col_text(6);
      n.body = q.col_text(7);
      n.state = q.col_text(8);
      n.attempts = static_cast<int>(q.col_int(9));
      n.next_at = q.col_int(10);
      n.created = q.col_int(11);
      n.sent_at = q.col_opt_int(12);
      n.last_error = q.col_text(13);
      out.push_back(std::move(n));
    }
    if (!q.status().ok()) return q.status();
    return out;
  }

  static constexpr const char* kFrozenColumns =
      "SELECT id, tree, branch, ref, action, old_rev, new_rev, describe, who, reason, at, state, note FROM frozen_audit";

  static Result<std::vector<FrozenChange>> frozen_rows(Stmt& q) {
    std::vector<FrozenChange> out;
    while (q.step()) {
      out.push_back({q.col_int(0), q.col_text(1), q.col_text(2), q.col_text(3), q.col_text(4), q.col_text(5),
                     q.col_text(6), q.col_text(7), q.col_text(8), q.col_text(9), q.col_int(10), q.col_text(11),
                     q.col_text(12)});
    }
    if (!q.status().ok()) return q.status();
    return out;
  }

  /// Put a job back in the queue inside the caller's transaction. What this
  /// attempt recorded (steps, output runvars) moves to step_attempts and
  /// runvar_attempts, so the re-run starts from the inputs alone and nothing
  /// the attempt found is lost.
  Status requeue(FlightId flight, const std::string& job, const std::string& why, bool count_restart) {
    std::int64_t attempt = 1;
    {
      Stmt q(db_, "SELECT MAX(IFNULL((SELECT MAX(attempt) FROM step_attempts WHERE flight = ?1 AND job = ?2), 0),"
                  " IFNULL((SELECT MAX(attempt) FROM runvar_attempts WHERE flight = ?1 AND job = ?2), 0)) + 1");
      q.bind(1, flight.value).bind(2, job);
      if (q.step()) attempt = q.col_int(0);
      if (!q.status().ok()) return q.status();
    }
    Stmt keep(db_, "INSERT INTO step_attempts (flight, job, attempt, stepno, testid, status, started, finished, log_path)"
                   " SELECT flight, job, ?3, stepno, testid, status, started, finished, log_path"
                   " FROM steps WHERE flight = ?1 AND job = ?2");
    keep.bind(1, flight.value).bind(2, job).bind(3, attempt);
    if (Status s = keep.exec(); !s.ok()) return s;
    Stmt drop(db_, "DELETE FROM steps WHERE flight = ?1 AND job = ?2");
    drop.bind(1, flight.value).bind(2, job);
    if (Status s = drop.exec(); !s.ok()) return s;
    // The attempt's outputs; its restart and retry counts stay with the job.
    const std::string outputs = " WHERE flight = ?1 AND job = ?2 AND synth = 1 AND name NOT IN ('restarts', 'broken_retries')";
    Stmt keep_vars(db_, "INSERT INTO runvar_attempts (flight, job, attempt, name, value)"
                        " SELECT flight, job, ?3, name, value FROM runvars" + outputs);
    keep_vars.bind(1, flight.value).bind(2, job).bind(3, attempt);
    if (Status s = keep_vars.exec(); !s.ok()) return s;
    Stmt drop_vars(db_, "DELETE FROM runvars" + outputs);
    drop_vars.bind(1, flight.value).bind(2, job);
    if (Status s = drop_vars.exec(); !s.ok()) return s;
    // The attempt's ABI records go with it: only a finished attempt's count.
    Stmt drop_records(db_, "DELETE FROM artifacts WHERE flight = ?1 AND job = ?2");
    drop_records.bind(1, flight.value).bind(2, job);
    if (Status s = drop_records.exec(); !s.ok()) return s;
    if (count_restart) {
      Stmt v(db_, "INSERT INTO runvars (flight, job, name, value, synth) VALUES (?1, ?2, 'restarts', '1', 1)"
                  " ON CONFLICT (flight, job, name) DO NOTHING");
      v.bind(1, flight.value).bind(2, job);
      if (Status s = v.exec(); !s.ok()) return s;
    }
    Stmt u(db_, "UPDATE jobs SET status = 'queued', status_reason = ?3 WHERE flight = ?1 AND job = ?2");
    u.bind(1, flight.value).bind(2, job).bind(3, why);
    return u.exec();
  }

  Result<void> changed_one(Stmt& q, const std::string& what) {
    if (Status s = q.exec(); !s.ok()) return s;
    if (db_.changes() == 0) return Status::not_found(what + " does not exist");
    return {};
  }

  mutable Db db_;
  std::string path_;
  int version_ = 0;
  bool full_ = false;  // synchronous = FULL for every commit, not only Durable ones
};

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& options) {
  auto s = std::make_unique<SqliteStore>();
  if (Status st = s->open(options); !st.ok()) return st;
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace pushgate::store
