#include "docker_worker/http_run_queue.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "docker_worker/backoff.h"
#include "docker_worker/gzip_file.h"
#include "docker_worker/time_format.h"

namespace docker_worker {
namespace {

constexpr int kUploadAttempts = 11;
std::atomic<uint64_t> g_upload_counter{0};

Millis UploadDelay(int attempt) {
  static constexpr Backoff kUpload{
      .base_ms = 1000, .factor = 1.311, .jitter = 0.25, .min_ms = 1000, .max_ms = 30000};
  return kUpload.Delay(attempt - 1);
}

bool RetryablePut(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kDeadlineExceeded;
}

}  // namespace

HttpRunQueue::HttpRunQueue(QueueClient& queue, HttpClient& http, Clock& clock,
                           std::string task_id, int run_id, std::string work_dir,
                           std::vector<std::string> skip_compression)
    : queue_(queue),
      http_(http),
      clock_(clock),
      task_id_(std::move(task_id)),
      run_id_(run_id),
      work_dir_(std::move(work_dir)),
      skip_compression_(std::move(skip_compression)) {}

Status HttpRunQueue::CreateArtifact(const Artifact& artifact) {
  if (Status s = ValidateArtifactName(artifact.name); !s.ok()) return s;
  if (artifact.kind == Artifact::Kind::kFile) return UploadFile(artifact);
  json::Document req(rapidjson::kObjectType);
  auto& a = req.GetAllocator();
  req.AddMember("storageType", json::Str(StorageTypeName(artifact.kind), a), a);
  req.AddMember("expires", json::Str(FormatIso(artifact.expires), a), a);
  switch (artifact.kind) {
    case Artifact::Kind::kReference:
      req.AddMember("url", json::Str(artifact.url, a), a);
      req.AddMember("contentType", json::Str(artifact.content_type, a), a);
      break;
    case Artifact::Kind::kLink:
      req.AddMember("artifact", json::Str(artifact.target, a), a);
      if (!artifact.content_type.empty()) {
        req.AddMember("contentType", json::Str(artifact.content_type, a), a);
      }
      break;
    case Artifact::Kind::kError:
      req.AddMember("reason", json::Str(artifact.reason, a), a);
      req.AddMember("message", json::Str(artifact.message.substr(0, 4096), a), a);
      break;
    case Artifact::Kind::kFile:
      break;
  }
  auto r = queue_.CreateArtifact(task_id_, run_id_, artifact.name, req);
  return r.ok() ? Status::Ok() : r.status();
}

Status HttpRunQueue::UploadFile(const Artifact& artifact) {
  std::string body_path = artifact.file;
  std::string encoding;
  std::unique_ptr<std::string, void (*)(std::string*)> spool(nullptr, [](std::string* p) {
    ::unlink(p->c_str());
    delete p;
  });
  if (!artifact.uncompressed && ShouldGzip(artifact.name, skip_compression_)) {
    std::error_code ec;
    std::filesystem::create_directories(work_dir_, ec);
    spool.reset(new std::string(work_dir_ + "/upload-" + std::to_string(g_upload_counter++) +
                                ".gz"));
    auto size = GzipFile(artifact.file, *spool);
    if (!size.ok()) return size.status();
    body_path = *spool;
    encoding = "gzip";
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(body_path, ec);
  if (ec) return Status(Code::kInternal, "cannot read " + body_path + ": " + ec.message());

  Status last;
  for (int attempt = 1; attempt <= kUploadAttempts; ++attempt) {
    // Not cut short by the run's stop: an aborted run still uploads its logs (worker-shutdown).
    if (attempt > 1) (void)clock_.SleepUntil(clock_.Now() + UploadDelay(attempt - 1), {});
    json::Document req(rapidjson::kObjectType);
    auto& a = req.GetAllocator();
    req.AddMember("storageType", "s3", a);
    req.AddMember("expires", json::Str(FormatIso(artifact.expires), a), a);
    req.AddMember("contentType", json::Str(artifact.content_type, a), a);
    auto created = queue_.CreateArtifact(task_id_, run_id_, artifact.name, req);
    if (!created.ok()) return created.status();  // the client already retried 5xx
    auto put_url = json::GetString(*created, "putUrl");
    if (!put_url) return Status(Code::kInvalidArgument, "createArtifact answered without putUrl");

    std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(body_path.c_str(), "rb"), std::fclose);
    if (!in) return Status(Code::kInternal, "cannot read " + body_path);
    HttpRequest put;
    put.method = "PUT";
    put.url = *put_url;
    put.headers.Set("Content-Type", artifact.content_type);
    if (!encoding.empty()) put.headers.Set("Content-Encoding", encoding);
    put.body_size = static_cast<int64_t>(size);
    put.body_reader = [&](char* buf, size_t max) -> Result<size_t> {
      size_t n = std::fread(buf, 1, max, in.get());
      if (n == 0 && std::ferror(in.get())) return Status(Code::kInternal, "read error");
      return n;
    };
    put.body_rewind = [&] { return std::fseek(in.get(), 0, SEEK_SET) == 0; };
    put.total_timeout = std::chrono::minutes(5);
    auto resp = http_.Send(put);
    if (resp.ok() && resp->ok()) return Status::Ok();
    if (!resp.ok()) {
      last = resp.status();
      if (!RetryablePut(last)) return last.Prefixed("uploading " + artifact.name + ": ");
    } else {
      last = Status(resp->status >= 500 ? Code::kUnavailable : Code::kInvalidArgument,
                    "PUT " + RedactUrl(*put_url) + ": " + std::to_string(resp->status));
      if (resp->status < 500 && resp->status != 400) return last;
    }
  }
  return last.Prefixed("uploading " + artifact.name + " failed after " +
                       std::to_string(kUploadAttempts) + " attempts: ");
}

Status HttpRunQueue::Resolve(const Resolution& resolution) {
  switch (resolution.state) {
    case RunState::kCompleted:
      return queue_.ReportCompleted(task_id_, run_id_);
    case RunState::kFailed:
      return queue_.ReportFailed(task_id_, run_id_);
    case RunState::kException:
      return queue_.ReportException(task_id_, run_id_, resolution.reason);
  }
  return Status(Code::kInternal, "unknown resolution");
}

}  // namespace docker_worker
