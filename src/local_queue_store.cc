#include "docker_worker/local_queue_store.h"

#include <sqlite3.h>

#include <string_view>
#include <utility>

namespace docker_worker {
namespace {

constexpr int kSchemaVersion = 1;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS settings(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks(
  task_id TEXT PRIMARY KEY,
  definition TEXT NOT NULL,
  task_queue_id TEXT NOT NULL,
  deadline_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  retries_left INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_deadline ON tasks(deadline_ms);
CREATE TABLE IF NOT EXISTS runs(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id TEXT NOT NULL,
  run_id INTEGER NOT NULL,
  state TEXT NOT NULL,
  reason_created TEXT NOT NULL,
  reason_resolved TEXT NOT NULL,
  worker_group TEXT NOT NULL,
  worker_id TEXT NOT NULL,
  taken_until_ms INTEGER NOT NULL,
  scheduled_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  resolved_ms INTEGER NOT NULL,
  UNIQUE(task_id, run_id));
CREATE INDEX IF NOT EXISTS runs_state ON runs(state, taken_until_ms);
CREATE TABLE IF NOT EXISTS artifacts(
  task_id TEXT NOT NULL,
  run_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  storage_type TEXT NOT NULL,
  content_type TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  url TEXT NOT NULL,
  link_target TEXT NOT NULL,
  error_reason TEXT NOT NULL,
  error_message TEXT NOT NULL,
  blob_id TEXT NOT NULL,
  uploaded INTEGER NOT NULL,
  content_encoding TEXT NOT NULL,
  content_length INTEGER NOT NULL,
  PRIMARY KEY(task_id, run_id, name));
CREATE INDEX IF NOT EXISTS artifacts_blob ON artifacts(blob_id);
CREATE TABLE IF NOT EXISTS uploads(
  token TEXT PRIMARY KEY,
  task_id TEXT NOT NULL,
  run_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  expires_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS index_entries(
  namespace TEXT PRIMARY KEY,
  task_id TEXT NOT NULL,
  rank REAL NOT NULL,
  data TEXT NOT NULL,
  expires_ms INTEGER NOT NULL);
)sql";

Status SqlError(sqlite3* db, std::string_view what) {
  return Status(Code::kInternal,
                "local-queue database: " + std::string(what) + ": " + sqlite3_errmsg(db));
}

// One prepared statement, finalized on destruction. Bind() indices are 1-based, as in SQLite.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      status_ = SqlError(db, "prepare");
      stmt_ = nullptr;
    }
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  const Status& status() const { return status_; }

  Stmt& Bind(int i, std::string_view text) {
    if (stmt_ && sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()),
                                   SQLITE_TRANSIENT) != SQLITE_OK) {
      status_ = SqlError(db_, "bind");
    }
    return *this;
  }
  Stmt& Bind(int i, int64_t value) {
    if (stmt_ && sqlite3_bind_int64(stmt_, i, value) != SQLITE_OK) status_ = SqlError(db_, "bind");
    return *this;
  }
  Stmt& Bind(int i, int value) { return Bind(i, static_cast<int64_t>(value)); }
  Stmt& Bind(int i, double value) {
    if (stmt_ && sqlite3_bind_double(stmt_, i, value) != SQLITE_OK) {
      status_ = SqlError(db_, "bind");
    }
    return *this;
  }

  // Steps once: true with a row, false when done; errors in status().
  bool Step() {
    if (!status_.ok() || !stmt_) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) status_ = SqlError(db_, "step");
    return false;
  }
  // Runs a statement that returns no rows.
  Status Run() {
    Step();
    return status_;
  }

  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : "";
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Real(int col) const { return sqlite3_column_double(stmt_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  Status status_;
};

const char* const kRunColumns =
    "task_id, run_id, state, reason_created, reason_resolved, worker_group, worker_id, "
    "taken_until_ms, scheduled_ms, started_ms, resolved_ms";

RunRow ReadRun(const Stmt& s) {
  RunRow r;
  r.task_id = s.Text(0);
  r.run_id = static_cast<int>(s.Int(1));
  r.state = s.Text(2);
  r.reason_created = s.Text(3);
  r.reason_resolved = s.Text(4);
  r.worker_group = s.Text(5);
  r.worker_id = s.Text(6);
  r.taken_until_ms = s.Int(7);
  r.scheduled_ms = s.Int(8);
  r.started_ms = s.Int(9);
  r.resolved_ms = s.Int(10);
  return r;
}

Result<std::vector<RunRow>> ReadRuns(Stmt& s) {
  std::vector<RunRow> runs;
  while (s.Step()) runs.push_back(ReadRun(s));
  if (!s.status().ok()) return s.status();
  return runs;
}

const char* const kArtifactColumns =
    "task_id, run_id, name, storage_type, content_type, expires_ms, url, link_target, "
    "error_reason, error_message, blob_id, uploaded, content_encoding, content_length";

ArtifactRow ReadArtifact(const Stmt& s) {
  ArtifactRow a;
  a.task_id = s.Text(0);
  a.run_id = static_cast<int>(s.Int(1));
  a.name = s.Text(2);
  a.storage_type = s.Text(3);
  a.content_type = s.Text(4);
  a.expires_ms = s.Int(5);
  a.url = s.Text(6);
  a.link_target = s.Text(7);
  a.error_reason = s.Text(8);
  a.error_message = s.Text(9);
  a.blob_id = s.Text(10);
  a.uploaded = s.Int(11) != 0;
  a.content_encoding = s.Text(12);
  a.content_length = s.Int(13);
  return a;
}

Result<std::optional<ArtifactRow>> ReadOneArtifact(Stmt& s) {
  if (s.Step()) return std::optional<ArtifactRow>(ReadArtifact(s));
  if (!s.status().ok()) return s.status();
  return std::optional<ArtifactRow>();
}

}  // namespace

Result<std::unique_ptr<LocalQueueStore>> LocalQueueStore::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status(Code::kInternal, "cannot open database " + path + ": " + message);
  }
  std::unique_ptr<LocalQueueStore> store(new LocalQueueStore(db));
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"}) {
    // journal_mode returns a row; Stmt steps through it.
    Stmt s(db, pragma);
    while (s.Step()) {
    }
    if (!s.status().ok()) return s.status();
  }
  Status st = store->Exec(kSchema);
  if (!st.ok()) return st;
  int64_t version = 0;
  {
    Stmt s(db, "PRAGMA user_version");
    if (s.Step()) version = s.Int(0);
    if (!s.status().ok()) return s.status();
  }
  if (version > kSchemaVersion) {
    return Status(Code::kInvalidArgument,
                  "database " + path + " was written by a newer local-queue (schema version " +
                      std::to_string(version) + ")");
  }
  if (version < kSchemaVersion) {
    st = store->Exec("PRAGMA user_version = 1");
    if (!st.ok()) return st;
  }
  return store;
}

LocalQueueStore::~LocalQueueStore() { sqlite3_close(db_); }

Status LocalQueueStore::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errmsg(db_);
    sqlite3_free(error);
    return Status(Code::kInternal, "local-queue database: " + message);
  }
  return Status::Ok();
}

Status LocalQueueStore::Transaction(const std::function<Status()>& body) {
  std::lock_guard lock(mu_);
  Status st = Exec("BEGIN IMMEDIATE");
  if (!st.ok()) return st;
  st = body();
  if (!st.ok()) {
    Exec("ROLLBACK");
    return st;
  }
  st = Exec("COMMIT");
  if (!st.ok()) Exec("ROLLBACK");
  return st;
}

Result<std::optional<std::string>> LocalQueueStore::GetSetting(const std::string& key) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT value FROM settings WHERE key = ?");
  s.Bind(1, key);
  if (s.Step()) return std::optional<std::string>(s.Text(0));
  if (!s.status().ok()) return s.status();
  return std::optional<std::string>();
}

Status LocalQueueStore::PutSetting(const std::string& key, const std::string& value) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "INSERT OR REPLACE INTO settings(key, value) VALUES(?, ?)");
  return s.Bind(1, key).Bind(2, value).Run();
}

Result<std::optional<TaskRow>> LocalQueueStore::GetTask(const std::string& task_id) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "SELECT task_id, definition, task_queue_id, deadline_ms, expires_ms, retries_left "
         "FROM tasks WHERE task_id = ?");
  s.Bind(1, task_id);
  if (s.Step()) {
    TaskRow t;
    t.task_id = s.Text(0);
    t.definition = s.Text(1);
    t.task_queue_id = s.Text(2);
    t.deadline_ms = s.Int(3);
    t.expires_ms = s.Int(4);
    t.retries_left = static_cast<int>(s.Int(5));
    return std::optional<TaskRow>(std::move(t));
  }
  if (!s.status().ok()) return s.status();
  return std::optional<TaskRow>();
}

Status LocalQueueStore::InsertTask(const TaskRow& t) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "INSERT INTO tasks(task_id, definition, task_queue_id, deadline_ms, expires_ms, "
         "retries_left) VALUES(?, ?, ?, ?, ?, ?)");
  return s.Bind(1, t.task_id)
      .Bind(2, t.definition)
      .Bind(3, t.task_queue_id)
      .Bind(4, t.deadline_ms)
      .Bind(5, t.expires_ms)
      .Bind(6, t.retries_left)
      .Run();
}

Status LocalQueueStore::SetRetriesLeft(const std::string& task_id, int retries_left) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "UPDATE tasks SET retries_left = ? WHERE task_id = ?");
  return s.Bind(1, retries_left).Bind(2, task_id).Run();
}

Result<std::vector<RunRow>> LocalQueueStore::GetRuns(const std::string& task_id) {
  std::lock_guard lock(mu_);
  std::string sql =
      std::string("SELECT ") + kRunColumns + " FROM runs WHERE task_id = ? ORDER BY run_id";
  Stmt s(db_, sql.c_str());
  s.Bind(1, task_id);
  return ReadRuns(s);
}

Status LocalQueueStore::InsertRun(const RunRow& r) {
  std::lock_guard lock(mu_);
  std::string sql =
      std::string("INSERT INTO runs(") + kRunColumns + ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  Stmt s(db_, sql.c_str());
  return s.Bind(1, r.task_id)
      .Bind(2, r.run_id)
      .Bind(3, r.state)
      .Bind(4, r.reason_created)
      .Bind(5, r.reason_resolved)
      .Bind(6, r.worker_group)
      .Bind(7, r.worker_id)
      .Bind(8, r.taken_until_ms)
      .Bind(9, r.scheduled_ms)
      .Bind(10, r.started_ms)
      .Bind(11, r.resolved_ms)
      .Run();
}

Status LocalQueueStore::UpdateRun(const RunRow& r) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "UPDATE runs SET state = ?, reason_created = ?, reason_resolved = ?, worker_group = ?, "
         "worker_id = ?, taken_until_ms = ?, scheduled_ms = ?, started_ms = ?, resolved_ms = ? "
         "WHERE task_id = ? AND run_id = ?");
  Status st = s.Bind(1, r.state)
                  .Bind(2, r.reason_created)
                  .Bind(3, r.reason_resolved)
                  .Bind(4, r.worker_group)
                  .Bind(5, r.worker_id)
                  .Bind(6, r.taken_until_ms)
                  .Bind(7, r.scheduled_ms)
                  .Bind(8, r.started_ms)
                  .Bind(9, r.resolved_ms)
                  .Bind(10, r.task_id)
                  .Bind(11, r.run_id)
                  .Run();
  if (st.ok() && sqlite3_changes(db_) != 1) {
    return Status(Code::kNotFound, "no run " + r.task_id + "/" + std::to_string(r.run_id));
  }
  return st;
}

Result<std::vector<RunRow>> LocalQueueStore::PendingRuns(const std::string& task_queue_id,
                                                         int64_t now_ms, int limit) {
  std::lock_guard lock(mu_);
  std::string sql = std::string("SELECT ") +
                    "r.task_id, r.run_id, r.state, r.reason_created, r.reason_resolved, "
                    "r.worker_group, r.worker_id, r.taken_until_ms, r.scheduled_ms, "
                    "r.started_ms, r.resolved_ms "
                    "FROM runs r JOIN tasks t ON t.task_id = r.task_id "
                    "WHERE r.state = 'pending' AND t.task_queue_id = ? AND t.deadline_ms > ? "
                    "ORDER BY r.scheduled_ms, r.seq LIMIT ?";
  Stmt s(db_, sql.c_str());
  s.Bind(1, task_queue_id).Bind(2, now_ms).Bind(3, limit);
  return ReadRuns(s);
}

Result<std::vector<RunRow>> LocalQueueStore::ExpiredClaims(int64_t now_ms) {
  std::lock_guard lock(mu_);
  std::string sql = std::string("SELECT ") + kRunColumns +
                    " FROM runs WHERE state = 'running' AND taken_until_ms < ? ORDER BY seq";
  Stmt s(db_, sql.c_str());
  s.Bind(1, now_ms);
  return ReadRuns(s);
}

Result<std::vector<RunRow>> LocalQueueStore::RunsPastDeadline(int64_t now_ms) {
  std::lock_guard lock(mu_);
  std::string sql = std::string("SELECT ") +
                    "r.task_id, r.run_id, r.state, r.reason_created, r.reason_resolved, "
                    "r.worker_group, r.worker_id, r.taken_until_ms, r.scheduled_ms, "
                    "r.started_ms, r.resolved_ms "
                    "FROM runs r JOIN tasks t ON t.task_id = r.task_id "
                    "WHERE r.state IN ('pending', 'running') AND t.deadline_ms <= ? "
                    "ORDER BY r.seq";
  Stmt s(db_, sql.c_str());
  s.Bind(1, now_ms);
  return ReadRuns(s);
}

Result<std::optional<ArtifactRow>> LocalQueueStore::GetArtifact(const std::string& task_id,
                                                                int run_id,
                                                                const std::string& name) {
  std::lock_guard lock(mu_);
  std::string sql = std::string("SELECT ") + kArtifactColumns +
                    " FROM artifacts WHERE task_id = ? AND run_id = ? AND name = ?";
  Stmt s(db_, sql.c_str());
  s.Bind(1, task_id).Bind(2, run_id).Bind(3, name);
  return ReadOneArtifact(s);
}

Status LocalQueueStore::PutArtifact(const ArtifactRow& a) {
  std::lock_guard lock(mu_);
  std::string sql = std::string("INSERT OR REPLACE INTO artifacts(") + kArtifactColumns +
                    ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  Stmt s(db_, sql.c_str());
  return s.Bind(1, a.task_id)
      .Bind(2, a.run_id)
      .Bind(3, a.name)
      .Bind(4, a.storage_type)
      .Bind(5, a.content_type)
      .Bind(6, a.expires_ms)
      .Bind(7, a.url)
      .Bind(8, a.link_target)
      .Bind(9, a.error_reason)
      .Bind(10, a.error_message)
      .Bind(11, a.blob_id)
      .Bind(12, a.uploaded ? 1 : 0)
      .Bind(13, a.content_encoding)
      .Bind(14, a.content_length)
      .Run();
}

Result<std::vector<ArtifactRow>> LocalQueueStore::ListArtifacts(const std::string& task_id,
                                                                int run_id,
                                                                const std::string& after,
                                                                int limit) {
  std::lock_guard lock(mu_);
  std::string sql = std::string("SELECT ") + kArtifactColumns +
                    " FROM artifacts WHERE task_id = ? AND run_id = ? AND name > ? "
                    "ORDER BY name LIMIT ?";
  Stmt s(db_, sql.c_str());
  s.Bind(1, task_id).Bind(2, run_id).Bind(3, after).Bind(4, limit);
  std::vector<ArtifactRow> rows;
  while (s.Step()) rows.push_back(ReadArtifact(s));
  if (!s.status().ok()) return s.status();
  return rows;
}

Result<std::optional<ArtifactRow>> LocalQueueStore::ArtifactByBlob(const std::string& blob_id) {
  std::lock_guard lock(mu_);
  std::string sql =
      std::string("SELECT ") + kArtifactColumns + " FROM artifacts WHERE blob_id = ? LIMIT 1";
  Stmt s(db_, sql.c_str());
  s.Bind(1, blob_id);
  return ReadOneArtifact(s);
}

Status LocalQueueStore::InsertUpload(const UploadRow& u) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "INSERT INTO uploads(token, task_id, run_id, name, expires_ms) VALUES(?, ?, ?, ?, ?)");
  return s.Bind(1, u.token)
      .Bind(2, u.task_id)
      .Bind(3, u.run_id)
      .Bind(4, u.name)
      .Bind(5, u.expires_ms)
      .Run();
}

Result<std::optional<UploadRow>> LocalQueueStore::GetUpload(const std::string& token) {
  std::lock_guard lock(mu_);
  Stmt s(db_, "SELECT token, task_id, run_id, name, expires_ms FROM uploads WHERE token = ?");
  s.Bind(1, token);
  if (s.Step()) {
    UploadRow u;
    u.token = s.Text(0);
    u.task_id = s.Text(1);
    u.run_id = static_cast<int>(s.Int(2));
    u.name = s.Text(3);
    u.expires_ms = s.Int(4);
    return std::optional<UploadRow>(std::move(u));
  }
  if (!s.status().ok()) return s.status();
  return std::optional<UploadRow>();
}

Result<std::optional<IndexRow>> LocalQueueStore::GetIndex(const std::string& index_namespace) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "SELECT namespace, task_id, rank, data, expires_ms FROM index_entries "
         "WHERE namespace = ?");
  s.Bind(1, index_namespace);
  if (s.Step()) {
    IndexRow r;
    r.index_namespace = s.Text(0);
    r.task_id = s.Text(1);
    r.rank = s.Real(2);
    r.data = s.Text(3);
    r.expires_ms = s.Int(4);
    return std::optional<IndexRow>(std::move(r));
  }
  if (!s.status().ok()) return s.status();
  return std::optional<IndexRow>();
}

Status LocalQueueStore::PutIndex(const IndexRow& r) {
  std::lock_guard lock(mu_);
  Stmt s(db_,
         "INSERT OR REPLACE INTO index_entries(namespace, task_id, rank, data, expires_ms) "
         "VALUES(?, ?, ?, ?, ?)");
  return s.Bind(1, r.index_namespace)
      .Bind(2, r.task_id)
      .Bind(3, r.rank)
      .Bind(4, r.data)
      .Bind(5, r.expires_ms)
      .Run();
}

}  // namespace docker_worker
