// The task log: one ordered byte stream fanned out to every consumer.
//
// Container output (raw bytes) and the worker's own lines (Info/Error, upstream's format) go
// through Write under one lock, so every sink sees the same bytes in the same order: the
// terminal, the backing file, the SHA-256 kept for chain of trust, and (later) live readers.
// Sinks are called on the writer's thread and must not block for long; a sink that fails is
// dropped (the others go on). Memory is bounded: nothing is buffered here. Thread-safe.
// After Close() further writes are ignored.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/sha256.h"
#include "docker_worker/status.h"

namespace docker_worker {

class LogSink {
 public:
  virtual ~LogSink() = default;
  // Returns false when the sink can take no more (it is then dropped).
  virtual bool Write(std::string_view bytes) = 0;
  virtual void Close() {}
  // Called once by TaskLog::AddSink, before any Write, with the number of bytes the log had
  // written before this sink was added (the sink does not receive them). A sink serving the log
  // from the backing file, like the live log, counts them as already there.
  virtual void Attached(uint64_t /*bytes_before*/) {}
};

// Writes to a file descriptor it does not own (e.g. stdout).
class FdLogSink final : public LogSink {
 public:
  explicit FdLogSink(int fd) : fd_(fd) {}
  bool Write(std::string_view bytes) override;

 private:
  int fd_;
};

// Appends to a file it creates (truncating), flushed on Close.
class FileLogSink final : public LogSink {
 public:
  static Result<std::unique_ptr<FileLogSink>> Create(const std::string& path);
  ~FileLogSink() override;
  bool Write(std::string_view bytes) override;
  void Close() override;

 private:
  explicit FileLogSink(int fd) : fd_(fd) {}
  int fd_;
};

class TaskLog {
 public:
  explicit TaskLog(const Clock& clock) : clock_(clock) {}

  void AddSink(std::shared_ptr<LogSink> sink);

  // Raw bytes (container output, pull progress).
  void Write(std::string_view bytes);
  // "[taskcluster 2026-01-01 00:00:00.000Z] <text>\n"
  void Info(std::string_view text);
  // "\n[taskcluster:error] <text>\n" (leading newline so it starts a line)
  void Error(std::string_view text);
  // Closes every sink; later writes are ignored.
  void Close();

  uint64_t bytes_written() const;
  // Lower-case hex SHA-256 of every byte written; valid after Close().
  std::string sha256_hex() const;

 private:
  void WriteLocked(std::string_view bytes);

  const Clock& clock_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<LogSink>> sinks_;
  Sha256 sha_;
  std::string digest_hex_;
  uint64_t bytes_ = 0;
  bool closed_ = false;
};

}  // namespace docker_worker
