#pragma once
// The bisections ledger: rows of bisections, bisection_nodes and
// bisection_probes (schema 9). Used by SqliteStore only.

#include <pushgate/store.hpp>

#include "sqlite.hpp"

namespace pushgate::store::bisection_ledger {

Result<std::int64_t> create(Db& db, const Store::BisectionRow& row);
Result<Store::BisectionRow> get(Db& db, std::int64_t id);
Result<std::vector<Store::BisectionRow>> list(Db& db, const Store::BisectionFilter& filter);
Result<std::vector<Store::BisectionRow>> of_flight(Db& db, FlightId flight);
Result<void> update(Db& db, std::int64_t id, const std::string& status, const std::string& reason,
                    const std::string& state, const std::vector<Store::BisectionNode>& nodes);
Result<std::vector<Store::BisectionNode>> nodes(Db& db, std::int64_t id);
/// Inside the caller's transaction.
Status add_probe(Db& db, std::int64_t bisection, FlightId flight, const std::string& node, const std::string& why);
Result<std::vector<Store::BisectionProbe>> probes(Db& db, std::int64_t id);

}  // namespace pushgate::store::bisection_ledger
