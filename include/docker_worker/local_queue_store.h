// The persistent state of `docker-worker local-queue`: tasks, runs, artifacts, upload tokens,
// index entries and settings, in one SQLite database (WAL mode, synchronous=FULL, so a committed
// change survives a crash or restart of the process).
//
// The store is a plain persistence layer: it knows rows, not the queue's rules. Times are epoch
// milliseconds. Every statement is prepared and parameterised; no caller text is ever spliced
// into SQL. Errors come back as values (kInternal with SQLite's message, kNotFound for a missing
// row where a row is required); nothing throws.
//
// Thread-safety: every method may be called from any thread; one connection is shared under an
// internal mutex, so each call is atomic. A caller that needs several calls to be atomic (read,
// decide, write) wraps them in Transaction() and serialises its own decisions (LocalQueueApi
// holds one state mutex for that).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "docker_worker/status.h"

struct sqlite3;

namespace docker_worker {

// A task: its definition (JSON text with every default filled in) and the columns the queue
// searches by.
struct TaskRow {
  std::string task_id;
  std::string definition;  // JSON object text
  std::string task_queue_id;
  int64_t deadline_ms = 0;
  int64_t expires_ms = 0;
  int retries_left = 0;
};

// One run of a task. Optional columns are 0/"" until set (state names as in the API).
struct RunRow {
  std::string task_id;
  int run_id = 0;
  std::string state;            // pending, running, completed, failed, exception
  std::string reason_created;   // scheduled, retry, task-retry, ...
  std::string reason_resolved;  // "" until resolved
  std::string worker_group;     // "" until claimed
  std::string worker_id;
  int64_t taken_until_ms = 0;  // 0 until claimed
  int64_t scheduled_ms = 0;
  int64_t started_ms = 0;   // 0 until claimed
  int64_t resolved_ms = 0;  // 0 until resolved
};

// One artifact of a run. Which columns matter depends on storage_type:
//   s3: blob_id (the file under blobs/), uploaded, content_encoding, content_length
//   reference: url; link: link_target; error: error_reason, error_message.
struct ArtifactRow {
  std::string task_id;
  int run_id = 0;
  std::string name;
  std::string storage_type;
  std::string content_type;
  int64_t expires_ms = 0;
  std::string url;
  std::string link_target;
  std::string error_reason;
  std::string error_message;
  std::string blob_id;
  bool uploaded = false;
  std::string content_encoding;  // as given on the PUT, "" for none
  int64_t content_length = -1;   // bytes stored, -1 unknown
};

// A PUT URL handed out by createArtifact (s3): the token in the URL names the artifact.
struct UploadRow {
  std::string token;
  std::string task_id;
  int run_id = 0;
  std::string name;
  int64_t expires_ms = 0;
};

struct IndexRow {
  std::string index_namespace;
  std::string task_id;
  double rank = 0;
  std::string data;  // JSON object text
  int64_t expires_ms = 0;
};

class LocalQueueStore {
 public:
  // Opens (creating when absent) the database at `path` and its schema.
  static Result<std::unique_ptr<LocalQueueStore>> Open(const std::string& path);
  ~LocalQueueStore();
  LocalQueueStore(const LocalQueueStore&) = delete;
  LocalQueueStore& operator=(const LocalQueueStore&) = delete;

  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT; rolls back when it returns an error (which is
  // then returned). Calls made by `body` on this store join the transaction. Must not nest.
  Status Transaction(const std::function<Status()>& body);

  // Settings: small named values (e.g. the issuer secret). nullopt when unset.
  Result<std::optional<std::string>> GetSetting(const std::string& key);
  Status PutSetting(const std::string& key, const std::string& value);

  Result<std::optional<TaskRow>> GetTask(const std::string& task_id);
  Status InsertTask(const TaskRow& task);
  Status SetRetriesLeft(const std::string& task_id, int retries_left);

  // Runs of a task, ordered by run_id.
  Result<std::vector<RunRow>> GetRuns(const std::string& task_id);
  Status InsertRun(const RunRow& run);
  // Replaces every column of the run (task_id, run_id) with `run`'s.
  Status UpdateRun(const RunRow& run);

  // Pending runs of `task_queue_id` whose task deadline is after `now_ms`, oldest first
  // (scheduled, then insertion order), at most `limit`.
  Result<std::vector<RunRow>> PendingRuns(const std::string& task_queue_id, int64_t now_ms,
                                          int limit);
  // Running runs with taken_until < now_ms.
  Result<std::vector<RunRow>> ExpiredClaims(int64_t now_ms);
  // Pending or running runs of tasks whose deadline is <= now_ms.
  Result<std::vector<RunRow>> RunsPastDeadline(int64_t now_ms);

  Result<std::optional<ArtifactRow>> GetArtifact(const std::string& task_id, int run_id,
                                                 const std::string& name);
  // Inserts or replaces the artifact (task_id, run_id, name).
  Status PutArtifact(const ArtifactRow& artifact);
  // Artifacts of a run ordered by name, names > `after` ("" from the start), at most `limit`.
  Result<std::vector<ArtifactRow>> ListArtifacts(const std::string& task_id, int run_id,
                                                 const std::string& after, int limit);
  // The artifact whose blob_id is `blob_id`.
  Result<std::optional<ArtifactRow>> ArtifactByBlob(const std::string& blob_id);

  Status InsertUpload(const UploadRow& upload);
  Result<std::optional<UploadRow>> GetUpload(const std::string& token);

  Result<std::optional<IndexRow>> GetIndex(const std::string& index_namespace);
  Status PutIndex(const IndexRow& row);

 private:
  explicit LocalQueueStore(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);

  std::recursive_mutex mu_;  // recursive: Transaction() bodies call the other methods
  sqlite3* db_;
};

}  // namespace docker_worker
