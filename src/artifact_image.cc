#include "docker_worker/artifact_image.h"

#include <openssl/evp.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "docker_worker/byte_pipe.h"
#include "docker_worker/image_archive.h"
#include "docker_worker/json.h"
#include "docker_worker/queue_client.h"
#include "docker_worker/read_file.h"
#include "docker_worker/sha256.h"
#include "docker_worker/slugid.h"

namespace docker_worker {
namespace {

constexpr auto kProgressInterval = std::chrono::seconds(5);
constexpr char kLoadError[] = "Error loading docker image. ";

std::string Fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

bool Transient(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kDeadlineExceeded;
}

// The error for a non-2xx answer of the artifact's storage.
Status DownloadHttpError(const HttpResponse& r) {
  std::string what = "artifact download answered HTTP " + std::to_string(r.status);
  if (r.status == 401 || r.status == 403) return Status(Code::kPermissionDenied, what);
  if (r.status == 404 || r.status == 410) return Status(Code::kNotFound, what);
  if (r.status >= 500) return Status(Code::kUnavailable, what);
  return Status(Code::kInvalidArgument, what);
}

}  // namespace

ArtifactImageOptions ArtifactImageOptions::FromConfig(const WorkerConfig& config,
                                                      std::string state_dir) {
  ArtifactImageOptions o;
  o.state_dir = std::move(state_dir);
  o.idle_timeout = Millis(config.image_download_idle_timeout_ms);
  o.max_attempts = std::max(1, config.pull_max_attempts);
  o.backoff = config.PullBackoff();
  return o;
}

ArtifactImages::ArtifactImages(DockerEngine& docker, Clock& clock, ArtifactImageOptions options)
    : docker_(docker),
      clock_(clock),
      options_(std::move(options)),
      http_(HttpClientOptions{.unix_socket_path = "",
                              .peer_name = "the artifact storage",
                              .user_agent = "docker-worker/" DOCKER_WORKER_VERSION,
                              .max_idle_handles = 2}) {}

std::string ArtifactImages::LocalName(const std::string& task_id, const std::string& path) {
  const std::string input = task_id + path;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest, &length, EVP_md5(), nullptr);
  return ToHex(std::string_view(reinterpret_cast<const char*>(digest), length));
}

Result<ArtifactImage> ArtifactImages::Ensure(TaskclusterClient& tc, const std::string& task_id,
                                             const std::string& path, TaskLog& log,
                                             std::stop_token stop) {
  const std::string name = LocalName(task_id, path);
  {
    std::unique_lock lock(mu_);
    if (!cv_.wait(lock, stop, [&] { return busy_.count(name) == 0; })) {
      return Status(Code::kCancelled, "image preparation cancelled");
    }
    busy_.insert(name);
  }
  struct Release {
    ArtifactImages* self;
    const std::string& name;
    ~Release() {
      std::lock_guard lock(self->mu_);
      self->busy_.erase(name);
      self->cv_.notify_all();
    }
  } release{this, name};

  auto present = docker_.InspectImage(name + ":latest");
  if (present.ok()) {
    auto record = FindRecord(name);
    if (record && record->image_id == present->id) {
      log.Info("Image '" + path + "' from task '" + task_id + "' loaded.  Using image ID " +
               present->id + ".");
      return ArtifactImage{present->id, record->artifact_hash, true};
    }
    // Present without our record (e.g. the work dir was wiped): the artifact hash is unknown,
    // so download again rather than report an image we cannot vouch for.
  } else if (present.status().code() != Code::kNotFound) {
    return present.status().Prefixed(kLoadError);
  }
  return DownloadAndLoad(tc, task_id, path, name, log, stop);
}

Result<ArtifactImage> ArtifactImages::DownloadAndLoad(TaskclusterClient& tc,
                                                      const std::string& task_id,
                                                      const std::string& path,
                                                      const std::string& name, TaskLog& log,
                                                      std::stop_token stop) {
  log.Info("Downloading artifact \"" + path + "\" from task ID: " + task_id + ".");
  log.Info("Loading docker image from downloaded archive.");
  Result<std::string> hash = Status(Code::kInternal, "no attempt made");
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    bool retryable = false;
    hash = Attempt(tc, task_id, path, name, log, stop, &retryable);
    if (hash.ok()) break;
    if (stop.stop_requested()) return Status(Code::kCancelled, "image download cancelled");
    if (!retryable || attempt == options_.max_attempts) break;
    Millis delay = options_.backoff.Delay(attempt - 1);
    log.Info("Download of artifact \"" + path + "\" failed (" + hash.status().message() +
             "); retrying in " + Fixed(static_cast<double>(delay.count()) / 1000.0, 1) + " s");
    if (!clock_.SleepUntil(clock_.Now() + delay, stop)) {
      return Status(Code::kCancelled, "image download cancelled");
    }
  }
  if (!hash.ok()) return hash.status().Prefixed(kLoadError);
  auto loaded = docker_.InspectImage(name + ":latest");
  if (!loaded.ok()) {
    return Status(Code::kInternal, std::string(kLoadError) + "Image did not load properly: " +
                                       loaded.status().message());
  }
  Record record{loaded->id, "sha256:" + *hash};
  SaveRecord(name, task_id, path, record);
  log.Info("Image '" + path + "' from task '" + task_id + "' loaded.  Using image ID " +
           loaded->id + ".");
  return ArtifactImage{record.image_id, record.artifact_hash, false};
}

Result<std::string> ArtifactImages::Attempt(TaskclusterClient& tc, const std::string& task_id,
                                            const std::string& path, const std::string& name,
                                            TaskLog& log, std::stop_token stop,
                                            bool* retryable) {
  QueueClient queue(tc);
  auto url = queue.ArtifactUrl(task_id, -1, path, stop);
  if (!url.ok()) {
    *retryable = false;  // the queue client already retried 5xx and network errors
    return url.status();
  }

  BytePipe downloaded;
  BytePipe retagged;
  Status transform_status;
  Status load_status;
  std::stop_source load_stop;
  std::stop_callback forward_stop(stop, [&] { load_stop.request_stop(); });
  std::thread transform([&] {
    transform_status = RetagImageArchive(
        [&](char* buf, size_t max) { return downloaded.Read(buf, max); },
        [&](std::string_view bytes) { return retagged.Write(bytes); }, name + ":latest");
    retagged.CloseWrite(transform_status);
    if (transform_status.ok()) {
      // libarchive stops at the end-of-archive marker; the rest (tar record padding, a
      // compressor's trailer) is still the artifact: read it to the end so the hash covers every
      // byte and the size check runs. A download failure here is the download's own status.
      std::string rest(256 * 1024, '\0');
      while (true) {
        auto n = downloaded.Read(rest.data(), rest.size());
        if (!n.ok() || *n == 0) break;
      }
    }
    downloaded.CloseRead();
  });
  std::thread load([&] {
    load_status = docker_.LoadImage([&](char* buf, size_t max) { return retagged.Read(buf, max); },
                                    load_stop.get_token());
    retagged.CloseRead();
  });

  Sha256 sha;
  int64_t received = 0;
  int64_t total = -1;
  bool encoded = false;
  TimePoint last_progress = clock_.Now();
  HttpRequest request;
  request.url = *url;
  request.follow_redirects = true;
  request.decode_content = true;  // a .tar uploaded gzip-encoded arrives as the tar itself
  request.idle_timeout = options_.idle_timeout;
  request.stop = stop;
  request.on_headers = [&](const HttpResponse& head) {
    if (!head.ok()) return Status::Ok();
    encoded = head.headers.Has("Content-Encoding") &&
              head.headers.Get("Content-Encoding") != "identity";
    if (auto length = head.headers.Get("Content-Length")) {
      char* end = nullptr;
      long long n = std::strtoll(length->c_str(), &end, 10);
      if (end && *end == '\0' && n >= 0) total = n;
    }
    return Status::Ok();
  };
  request.body_sink = [&](std::string_view chunk) {
    sha.Update(chunk);
    received += static_cast<int64_t>(chunk.size());
    if (total > 0 && !encoded && clock_.Now() - last_progress >= kProgressInterval) {
      last_progress = clock_.Now();
      log.Info("Download Progress: " +
               Fixed(100.0 * static_cast<double>(received) / static_cast<double>(total), 2) +
               "%");
    }
    return downloaded.Write(chunk);
  };
  auto response = http_.Send(request);
  Status download_status;
  bool storage_forbidden = false;
  if (!response.ok()) {
    download_status = response.status();
    if (download_status.code() == Code::kDeadlineExceeded) {
      download_status = download_status.Prefixed("the download stalled: ");
    }
  } else if (!response->ok()) {
    download_status = DownloadHttpError(*response);
    // Upstream fails at once on 401 and 404 only; a 403 may be an expired signature, and each
    // attempt fetches a fresh URL.
    storage_forbidden = response->status == 403;
  } else if (total >= 0 && !encoded && received != total) {
    download_status = Status(Code::kUnavailable, "received " + std::to_string(received) +
                                                     " of " + std::to_string(total) + " bytes");
  }
  downloaded.CloseWrite(download_status);
  transform.join();
  load.join();

  auto own = [](const Status& s) { return !s.ok() && !BytePipe::IsDownstreamClosed(s); };
  if (own(download_status)) {
    *retryable = Transient(download_status) || storage_forbidden;
    return download_status;
  }
  if (own(transform_status)) return transform_status;
  if (!load_status.ok()) {
    // An engine that was unreachable, reset or timed out may load it next time; an engine that
    // refused the archive will refuse it again.
    *retryable = Transient(load_status);
    return load_status.Prefixed("the engine could not load the image: ");
  }
  log.Info("Downloaded artifact successfully.");
  log.Info("Downloaded " + Fixed(static_cast<double>(received) / 1048576.0, 3) +
           " mb over the wire");
  return sha.HexDigest();
}

std::optional<ArtifactImages::Record> ArtifactImages::FindRecord(const std::string& name) {
  {
    std::lock_guard lock(mu_);
    if (auto it = records_.find(name); it != records_.end()) return it->second;
  }
  if (options_.state_dir.empty()) return std::nullopt;
  auto text = ReadWholeFile(options_.state_dir + "/" + name + ".json", {.max_bytes = 65536});
  if (!text.ok()) return std::nullopt;
  auto doc = json::Parse(*text);
  if (!doc.ok() || !doc->IsObject()) return std::nullopt;
  auto image_id = json::GetString(*doc, "imageId");
  auto hash = json::GetString(*doc, "artifactHash");
  if (!image_id || !hash) return std::nullopt;
  Record record{*image_id, *hash};
  std::lock_guard lock(mu_);
  records_[name] = record;
  return record;
}

void ArtifactImages::SaveRecord(const std::string& name, const std::string& task_id,
                                const std::string& path, const Record& record) {
  {
    std::lock_guard lock(mu_);
    records_[name] = record;
  }
  if (options_.state_dir.empty()) return;
  json::Document doc;
  doc.SetObject();
  auto& a = doc.GetAllocator();
  doc.AddMember("taskId", json::Str(task_id, a), a);
  doc.AddMember("path", json::Str(path, a), a);
  doc.AddMember("imageId", json::Str(record.image_id, a), a);
  doc.AddMember("artifactHash", json::Str(record.artifact_hash, a), a);
  // Best effort: without the file the image is downloaded again after a restart.
  std::error_code ec;
  std::filesystem::create_directories(options_.state_dir, ec);
  const std::string final_path = options_.state_dir + "/" + name + ".json";
  const std::string tmp = final_path + ".tmp-" + NewSlugId();
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    const std::string text = json::Serialize(doc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();  // flushes: a full disk shows here
    if (!out) {
      std::filesystem::remove(tmp, ec);
      return;
    }
  }
  std::filesystem::rename(tmp, final_path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

Result<std::string> FindIndexedTask(TaskclusterClient& tc, const std::string& ns,
                                    std::stop_token stop) {
  const std::string prefix = "Could not find a task associated with \"" + ns + "\" namespace. ";
  TcCallOptions options;
  options.stop = std::move(stop);
  auto r = tc.Call("GET", "index", "task/" + UrlEscape(ns), nullptr, options);
  if (!r.ok()) return r.status().Prefixed(prefix);
  auto task_id = json::GetString(r->body, "taskId");
  if (!task_id || !LooksLikeSlugId(*task_id)) {
    return Status(Code::kInvalidArgument, prefix + "The index answered without a valid taskId.");
  }
  return *task_id;
}

}  // namespace docker_worker
