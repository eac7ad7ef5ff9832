#include "sqlite.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

namespace pushgate::store {

Stmt::Stmt(Db& db, std::string_view sql) : db_(db), sql_(sql) { s_ = db.take(sql_, status_); }

Stmt::~Stmt() {
  if (s_) db_.give_back(std::move(sql_), s_);
}

namespace {
// Enough for every distinct statement the store runs (filters give a few
// variants each); past it, statements are finalized instead of kept.
constexpr std::size_t kMaxCached = 512;
constexpr std::size_t kMaxPerSql = 4;  // one statement in use several times at once (nested reads)
}  // namespace

sqlite3_stmt* Db::take(const std::string& sql, Status& status) {
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(sql); it != cache_.end() && !it->second.empty()) {
      sqlite3_stmt* s = it->second.back();
      it->second.pop_back();
      --cached_;
      return s;
    }
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
      SQLITE_OK) {
    status = error("prepare");
    sqlite3_finalize(s);
    return nullptr;
  }
  return s;
}

void Db::give_back(std::string sql, sqlite3_stmt* s) {
  sqlite3_reset(s);  // its error, if any, was reported by step()
  sqlite3_clear_bindings(s);
  std::lock_guard lock(cache_mutex_);
  auto& free = cache_[std::move(sql)];
  if (free.size() >= kMaxPerSql || cached_ >= kMaxCached) {
    sqlite3_finalize(s);
    return;
  }
  free.push_back(s);
  ++cached_;
}

std::vector<std::string> Db::cached_sql() const {
  std::lock_guard lock(cache_mutex_);
  std::vector<std::string> out;
  for (const auto& [sql, free] : cache_) {
    if (!free.empty()) out.push_back(sql);
  }
  return out;
}

Stmt& Stmt::bind(int i, std::int64_t v) {
  if (s_) sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::bind(int i, const std::string& v) {
  if (s_) sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::bind(int i, std::optional<std::int64_t> v) { return v ? bind(i, *v) : bind_null(i); }
Stmt& Stmt::bind_null(int i) {
  if (s_) sqlite3_bind_null(s_, i);
  return *this;
}

bool Stmt::step() {
  if (!s_ || !status_.ok()) return false;
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) status_ = db_.error("step");
  return false;
}

Status Stmt::exec() {
  while (step()) {
  }
  return status_;
}

std::string Stmt::col_text(int i) const {
  const unsigned char* t = sqlite3_column_text(s_, i);
  return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(s_, i)) : std::string();
}

std::optional<std::int64_t> Stmt::col_opt_int(int i) const {
  if (sqlite3_column_type(s_, i) == SQLITE_NULL) return std::nullopt;
  return col_int(i);
}

Db::~Db() {
  for (auto& [sql, free] : cache_) {
    for (sqlite3_stmt* s : free) sqlite3_finalize(s);
  }
  sqlite3_close_v2(db_);
}

Status Db::open(const std::string& path, bool create, int busy_timeout_ms) {
  int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    return Status::unavailable("cannot open database " + path + ": " + msg,
                               "check that the directory exists and is writable, or pass --db");
  }
  sqlite3_extended_result_codes(db_, 1);
  busy_limit_ms_ = busy_timeout_ms;
  sqlite3_busy_handler(db_, &Db::on_busy, this);
  return {};
}

// SPEC section 9: a busy database is waited for, with backoff, never a
// reason to give up quickly. Called by SQLite while another connection holds
// the lock: for BEGIN IMMEDIATE and single statements, where retrying is
// always safe (every write transaction here is BEGIN IMMEDIATE).
int Db::on_busy(void* self, int count) {
  auto* db = static_cast<Db*>(self);
  auto now = std::chrono::steady_clock::now();
  if (count == 0) db->busy_since_ = now;
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - db->busy_since_).count();
  if (waited >= db->busy_limit_ms_) return 0;  // SQLITE_BUSY to the caller
  // 1, 2, 4 ... ms up to 250 ms between tries.
  int pause = count < 8 ? 1 << count : 250;
  pause = static_cast<int>(std::min<std::int64_t>(pause, db->busy_limit_ms_ - waited));
  std::this_thread::sleep_for(std::chrono::milliseconds(std::max(pause, 1)));
  ++db->busy_waits_;
  return 1;
}

Status Db::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    int code = sqlite3_errcode(db_) & 0xff;
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
      return Status::unavailable("database: " + msg + " (waited " + std::to_string(busy_limit_ms_ / 1000) + "s)",
                                 "another process holds the database's write lock; try again");
    }
    return Status::unavailable("database: " + msg);
  }
  return {};
}

Status Db::error(const std::string& what) {
  int code = sqlite3_errcode(db_);
  std::string msg = "database " + what + ": " + sqlite3_errmsg(db_);
  if ((code & 0xff) == SQLITE_CONSTRAINT) return Status::conflict(msg);
  if ((code & 0xff) == SQLITE_CORRUPT || (code & 0xff) == SQLITE_NOTADB) return Status::corruption(msg);
  if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED) {
    return Status::unavailable(msg + " (waited " + std::to_string(busy_limit_ms_ / 1000) + "s)",
                               "another process holds the database's write lock; try again");
  }
  if ((code & 0xff) == SQLITE_READONLY) {
    return Status::unavailable(msg, "the database file or its directory is read-only");
  }
  return Status::unavailable(msg);
}

Transaction::Transaction(Db& db) : db_(db) {
  status_ = db_.exec("BEGIN IMMEDIATE");
  open_ = status_.ok();
}

Transaction::~Transaction() {
  if (open_) db_.exec("ROLLBACK");
}

Status Transaction::commit() {
  if (!open_) return status_;
  status_ = db_.exec("COMMIT");
  open_ = !status_.ok();
  return status_;
}

}  // namespace pushgate::store
