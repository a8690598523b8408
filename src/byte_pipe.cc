#include "docker_worker/byte_pipe.h"

#include <algorithm>
#include <cstring>

namespace docker_worker {
namespace {
constexpr char kDownstreamClosed[] = "the consumer of the stream stopped";
}  // namespace

bool BytePipe::IsDownstreamClosed(const Status& status) {
  return status.code() == Code::kCancelled && status.message() == kDownstreamClosed;
}

Status BytePipe::Write(std::string_view bytes) {
  while (!bytes.empty()) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return read_closed_ || write_closed_ || buffered_ < capacity_; });
    if (read_closed_) return Status(Code::kCancelled, kDownstreamClosed);
    if (write_closed_) return Status(Code::kInternal, "write to a closed pipe");
    size_t take = std::min(bytes.size(), capacity_ - buffered_);
    chunks_.emplace_back(bytes.substr(0, take));
    buffered_ += take;
    bytes.remove_prefix(take);
    cv_.notify_all();
  }
  return Status::Ok();
}

void BytePipe::CloseWrite(Status status) {
  std::lock_guard lock(mu_);
  if (write_closed_) return;
  write_closed_ = true;
  write_status_ = std::move(status);
  cv_.notify_all();
}

Result<size_t> BytePipe::Read(char* buf, size_t max) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return buffered_ > 0 || write_closed_ || read_closed_; });
  if (read_closed_) return Status(Code::kInternal, "read from a closed pipe");
  if (write_closed_ && !write_status_.ok()) return write_status_;
  size_t n = 0;
  while (n < max && !chunks_.empty()) {
    const std::string& front = chunks_.front();
    size_t take = std::min(max - n, front.size() - front_offset_);
    std::memcpy(buf + n, front.data() + front_offset_, take);
    n += take;
    front_offset_ += take;
    if (front_offset_ == front.size()) {
      chunks_.pop_front();
      front_offset_ = 0;
    }
  }
  buffered_ -= n;
  cv_.notify_all();
  return n;
}

void BytePipe::CloseRead() {
  std::lock_guard lock(mu_);
  read_closed_ = true;
  chunks_.clear();
  buffered_ = 0;
  front_offset_ = 0;
  cv_.notify_all();
}

}  // namespace docker_worker
