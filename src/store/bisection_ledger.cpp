// The bisections ledger (schema 9).

#include "bisection_ledger.hpp"

namespace pushgate::store::bisection_ledger {

namespace {

constexpr const char* kCols =
    "SELECT bisection, branch, flight, basis_flight, who, targets, pins, status, reason, state, created, finished"
    " FROM bisections ";

Store::BisectionRow read(const Stmt& q) {
  Store::BisectionRow r;
  r.id = q.col_int(0);
  r.branch = q.col_text(1);
  r.flight = FlightId{q.col_int(2)};
  r.basis_flight = FlightId{q.col_int(3)};
  r.who = q.col_text(4);
  r.targets = q.col_text(5);
  r.pins = q.col_text(6);
  r.status = q.col_text(7);
  r.reason = q.col_text(8);
  r.state = q.col_text(9);
  r.created = q.col_int(10);
  r.finished = q.col_opt_int(11);
  return r;
}

Result<std::vector<Store::BisectionRow>> all(Stmt& q) {
  std::vector<Store::BisectionRow> out;
  while (q.step()) out.push_back(read(q));
  if (!q.status().ok()) return q.status();
  return out;
}

}  // namespace

Result<std::int64_t> create(Db& db, const Store::BisectionRow& row) {
  Stmt q(db, "INSERT INTO bisections (branch, flight, basis_flight, who, targets, pins, status, reason, state, created)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  q.bind(1, row.branch).bind(2, row.flight.value).bind(3, row.basis_flight.value).bind(4, row.who);
  q.bind(5, row.targets).bind(6, row.pins.empty() ? std::string("{}") : row.pins).bind(7, row.status);
  q.bind(8, row.reason).bind(9, row.state.empty() ? std::string("{}") : row.state).bind(10, now());
  if (Status s = q.exec(); !s.ok()) return s;
  return db.last_insert_rowid();
}

Result<Store::BisectionRow> get(Db& db, std::int64_t id) {
  Stmt q(db, std::string(kCols) + "WHERE bisection = ?1");
  q.bind(1, id);
  if (q.step()) return read(q);
  if (!q.status().ok()) return q.status();
  return Status::not_found("no bisection " + std::to_string(id), "`pushgate bisect list` shows them");
}

Result<std::vector<Store::BisectionRow>> list(Db& db, const Store::BisectionFilter& f) {
  // One statement per filter shape, so each is served by its index.
  int limit = f.limit > 0 ? f.limit : 100;
  if (!f.status.empty() && !f.branch.empty()) {
    Stmt q(db, std::string(kCols) + "WHERE branch = ?1 AND status = ?2 ORDER BY bisection DESC LIMIT ?3");
    q.bind(1, f.branch).bind(2, f.status).bind(3, limit);
    return all(q);
  }
  if (!f.status.empty()) {
    Stmt q(db, std::string(kCols) + "WHERE status = ?1 ORDER BY bisection DESC LIMIT ?2");
    q.bind(1, f.status).bind(2, limit);
    return all(q);
  }
  if (!f.branch.empty()) {
    Stmt q(db, std::string(kCols) + "WHERE branch = ?1 ORDER BY bisection DESC LIMIT ?2");
    q.bind(1, f.branch).bind(2, limit);
    return all(q);
  }
  Stmt q(db, std::string(kCols) + "ORDER BY bisection DESC LIMIT ?1");
  q.bind(1, limit);
  return all(q);
}

Result<std::vector<Store::BisectionRow>> of_flight(Db& db, FlightId flight) {
  Stmt q(db, std::string(kCols) + "WHERE flight = ?1 ORDER BY bisection");
  q.bind(1, flight.value);
  return all(q);
}

Result<void> update(Db& db, std::int64_t id, const std::string& status, const std::string& reason,
                    const std::string& state, const std::vector<Store::BisectionNode>& nodes) {
  Transaction tx(db);
  if (!tx.status().ok()) return tx.status();
  Stmt q(db, "UPDATE bisections SET status = ?2, reason = ?3, state = ?4,"
             " finished = CASE WHEN ?2 = 'running' THEN NULL ELSE IFNULL(finished, ?5) END WHERE bisection = ?1");
  q.bind(1, id).bind(2, status).bind(3, reason).bind(4, state).bind(5, now());
  if (Status s = q.exec(); !s.ok()) return s;
  if (db.changes() == 0) return Status::not_found("no bisection " + std::to_string(id));
  Stmt del(db, "DELETE FROM bisection_nodes WHERE bisection = ?1");
  del.bind(1, id);
  if (Status s = del.exec(); !s.ok()) return s;
  for (const auto& n : nodes) {
    Stmt ins(db, "INSERT INTO bisection_nodes (bisection, node, revisions, changed_tree, revision, parents, boundary,"
                 " results, flights) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    ins.bind(1, id).bind(2, n.node).bind(3, n.revisions).bind(4, n.changed_tree).bind(5, n.commit);
    ins.bind(6, n.parents).bind(7, n.boundary ? 1 : 0).bind(8, n.results).bind(9, n.flights);
    if (Status s = ins.exec(); !s.ok()) return s;
  }
  if (Status s = tx.commit(); !s.ok()) return s;
  return {};
}

Result<std::vector<Store::BisectionNode>> nodes(Db& db, std::int64_t id) {
  Stmt q(db, "SELECT node, revisions, changed_tree, revision, parents, boundary, results, flights"
             " FROM bisection_nodes WHERE bisection = ?1 ORDER BY node");
  q.bind(1, id);
  std::vector<Store::BisectionNode> out;
  while (q.step()) {
    out.push_back({static_cast<int>(q.col_int(0)), q.col_text(1), q.col_text(2), q.col_text(3), q.col_text(4),
                   q.col_int(5) != 0, q.col_text(6), q.col_text(7)});
  }
  if (!q.status().ok()) return q.status();
  return out;
}

Status add_probe(Db& db, std::int64_t bisection, FlightId flight, const std::string& node, const std::string& why) {
  Stmt q(db, "INSERT INTO bisection_probes (bisection, seq, flight, node, why) VALUES (?1,"
             " (SELECT IFNULL(MAX(seq), 0) + 1 FROM bisection_probes WHERE bisection = ?1), ?2, ?3, ?4)");
  q.bind(1, bisection).bind(2, flight.value).bind(3, node).bind(4, why);
  return q.exec();
}

Result<std::vector<Store::BisectionProbe>> probes(Db& db, std::int64_t id) {
  Stmt q(db, "SELECT seq, flight, node, why FROM bisection_probes WHERE bisection = ?1 ORDER BY seq");
  q.bind(1, id);
  std::vector<Store::BisectionProbe> out;
  while (q.step()) out.push_back({static_cast<int>(q.col_int(0)), FlightId{q.col_int(1)}, q.col_text(2), q.col_text(3)});
  if (!q.status().ok()) return q.status();
  return out;
}

}  // namespace pushgate::store::bisection_ledger
