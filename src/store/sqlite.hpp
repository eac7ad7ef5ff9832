#pragma once
// Private to src/store: RAII over sqlite3 handles and prepared statements.

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <pushgate/status.hpp>

namespace pushgate::store {

class Db;

/// One prepared statement; bind by 1-based index, step, read columns.
/// Statements come from the connection's cache and go back to it reset, so
/// the SQL of a request is compiled once per connection, not per call.
class Stmt {
 public:
  Stmt(Db& db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, std::int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Stmt& bind(int i, const std::string& v);
  Stmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
  Stmt& bind(int i, std::optional<std::int64_t> v);
  Stmt& bind_null(int i);

  /// true: a row is available; false: done. Errors land in status().
  bool step();
  /// Run to completion; returns the error, if any.
  Status exec();
  const Status& status() const { return status_; }

  std::int64_t col_int(int i) const { return sqlite3_column_int64(s_, i); }
  std::string col_text(int i) const;
  std::optional<std::int64_t> col_opt_int(int i) const;

 private:
  Db& db_;
  std::string sql_;
  sqlite3_stmt* s_ = nullptr;
  Status status_;
};

class Db {
 public:
  Db() = default;
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  Status open(const std::string& path, bool create, int busy_timeout_ms);
  /// Run one or more statements with no parameters.
  Status exec(const std::string& sql);
  sqlite3* handle() { return db_; }
  Status error(const std::string& what);
  std::int64_t last_insert_rowid() { return sqlite3_last_insert_rowid(db_); }
  int changes() { return sqlite3_changes(db_); }
  /// How often this connection waited for another's lock (for tests).
  std::int64_t busy_waits() const { return busy_waits_; }

  /// The prepared-statement cache (used by Stmt): a statement for `sql`,
  /// from the cache or newly prepared (null on error, with `status` set),
  /// and back, reset, once its user is done.
  sqlite3_stmt* take(const std::string& sql, Status& status);
  void give_back(std::string sql, sqlite3_stmt* s);
  /// The SQL of every statement in the cache.
  std::vector<std::string> cached_sql() const;

 private:
  static int on_busy(void* self, int count);
  sqlite3* db_ = nullptr;
  int busy_limit_ms_ = 0;
  std::chrono::steady_clock::time_point busy_since_;
  std::int64_t busy_waits_ = 0;
  mutable std::mutex cache_mutex_;
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> cache_;
  std::size_t cached_ = 0;
};

/// BEGIN IMMEDIATE ... COMMIT, rolled back unless commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  const Status& status() const { return status_; }
  Status commit();

 private:
  Db& db_;
  bool open_ = false;
  Status status_;
};

}  // namespace pushgate::store
