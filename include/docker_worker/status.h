// Errors as values.
//
// A Status is either ok or an error with a code and a human-readable message. An error may also
// carry the task Resolution it implies (failed, or exception with a reason), so the code that
// finally resolves a run never has to guess from a message. Result<T> is a T or an error Status.
// Neither type throws; accessing value() of an error Result is a programming error (asserts).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace docker_worker {

enum class Code {
  kOk,
  kInvalidArgument,   // bad input from a user, payload, file or peer
  kNotFound,          // the thing asked for does not exist
  kUnavailable,       // a peer (engine, queue) could not be reached; may succeed later
  kPermissionDenied,  // missing scope, refused credentials
  kConflict,          // the peer's state forbids it (e.g. 409)
  kCancelled,         // stopped on request (abort, cancel, shutdown)
  kDeadlineExceeded,  // a timeout
  kInternal,          // anything else
};

// How a task run ends, as reported to the queue.
enum class RunState { kCompleted, kFailed, kException };

struct Resolution {
  RunState state = RunState::kCompleted;
  std::string reason;  // for kException: malformed-payload, intermittent-task, worker-shutdown...

  static Resolution Completed() { return {RunState::kCompleted, ""}; }
  static Resolution Failed() { return {RunState::kFailed, ""}; }
  static Resolution Exception(std::string reason) { return {RunState::kException, std::move(reason)}; }
  bool operator==(const Resolution&) const = default;
};

// "completed", "failed", "exception".
const char* RunStateName(RunState state);

class Status {
 public:
  Status() = default;  // ok
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  // An error that resolves the run as failed.
  static Status TaskFailed(std::string message);
  // An error that resolves the run as exception with `reason`.
  static Status TaskException(std::string reason, std::string message);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::optional<Resolution>& resolution() const { return resolution_; }

  // The same error, now implying `resolution`.
  Status WithResolution(Resolution resolution) const;
  // The same error with `prefix` put before the message.
  Status Prefixed(const std::string& prefix) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::optional<Resolution> resolution_;
};

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace docker_worker
