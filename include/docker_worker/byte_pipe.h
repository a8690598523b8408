// A bounded, in-order byte stream from one producer thread to one consumer thread: how a
// download feeds a decompressor and a decompressor feeds an upload without holding the whole
// stream anywhere.
//
// Write() blocks while `capacity` bytes are buffered; Read() blocks until bytes arrive or the
// writer closed. The writer ends the stream with CloseWrite(status): ok is end of stream (Read
// returns 0 once drained), an error is handed to the reader by its next Read (buffered bytes are
// dropped). The reader gives up with CloseRead(): the writer's current and later Write
// calls return kDownstreamClosed status (so a producer can tell "the consumer failed" from its
// own failures). Both Close calls are idempotent; the first status wins. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>

#include "docker_worker/status.h"

namespace docker_worker {

class BytePipe {
 public:
  explicit BytePipe(size_t capacity = size_t{4} << 20) : capacity_(capacity) {}
  BytePipe(const BytePipe&) = delete;
  BytePipe& operator=(const BytePipe&) = delete;

  Status Write(std::string_view bytes);
  void CloseWrite(Status status = Status::Ok());
  Result<size_t> Read(char* buf, size_t max);
  void CloseRead();

  // The status Write returns once the reader closed.
  static bool IsDownstreamClosed(const Status& status);

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;
  size_t front_offset_ = 0;  // bytes of chunks_.front() already read
  size_t buffered_ = 0;
  bool write_closed_ = false;
  Status write_status_;
  bool read_closed_ = false;
};

}  // namespace docker_worker
