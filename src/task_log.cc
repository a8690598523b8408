#include "docker_worker/task_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "docker_worker/time_format.h"

namespace docker_worker {
namespace {

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

bool FdLogSink::Write(std::string_view bytes) { return WriteAll(fd_, bytes); }

Result<std::unique_ptr<FileLogSink>> FileLogSink::Create(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status(Code::kInternal, "cannot create " + path + ": " + std::strerror(errno));
  }
  return std::unique_ptr<FileLogSink>(new FileLogSink(fd));
}

FileLogSink::~FileLogSink() { Close(); }

bool FileLogSink::Write(std::string_view bytes) { return fd_ >= 0 && WriteAll(fd_, bytes); }

void FileLogSink::Close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void TaskLog::AddSink(std::shared_ptr<LogSink> sink) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  sink->Attached(bytes_);
  sinks_.push_back(std::move(sink));
}

void TaskLog::Write(std::string_view bytes) {
  std::lock_guard lock(mu_);
  WriteLocked(bytes);
}

void TaskLog::Info(std::string_view text) {
  std::string line = "[taskcluster " + FormatLogTime(clock_.Now()) + "] ";
  line.append(text);
  line.push_back('\n');
  Write(line);
}

void TaskLog::Error(std::string_view text) {
  std::string line = "\n[taskcluster:error] ";
  line.append(text);
  line.push_back('\n');
  Write(line);
}

void TaskLog::WriteLocked(std::string_view bytes) {
  if (closed_ || bytes.empty()) return;
  bytes_ += bytes.size();
  sha_.Update(bytes);
  for (auto it = sinks_.begin(); it != sinks_.end();) {
    if ((*it)->Write(bytes)) {
      ++it;
    } else {
      it = sinks_.erase(it);
    }
  }
}

void TaskLog::Close() {
  std::lock_guard lock(mu_);
  if (closed_) return;
  closed_ = true;
  for (auto& s : sinks_) s->Close();
  sinks_.clear();
  digest_hex_ = sha_.HexDigest();
}

uint64_t TaskLog::bytes_written() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

std::string TaskLog::sha256_hex() const {
  std::lock_guard lock(mu_);
  return digest_hex_;
}

}  // namespace docker_worker
