// chainOfTrust: certifies what a run produced (upstream's chain of trust, version 1).
//  Start: loads the ed25519 signing key from config ed25519SigningKeyLocation; a missing,
//         unreadable or malformed key fails the task before the container exists.
//  Stop:  unless the run was canceled or aborted (or Start never loaded the key): uploads the
//         task log as public/logs/certified.log, adds its SHA-256 to ctx.artifact_hashes, builds
//         the chain-of-trust document over every artifact hash, signs its exact bytes and
//         uploads public/chain-of-trust.json and public/chain-of-trust.json.sig (raw 64-byte
//         signature), all expiring with the task. Any failure there fails a successful run.
// Stop runs before artifacts' and localLiveLog's Stop (reverse registry order); the hashes it
// certifies are the ones the artifacts feature recorded in Finish.
#include "docker_worker/chain_of_trust.h"

#include <filesystem>
#include <fstream>
#include <optional>

#include "docker_worker/features.h"
#include "docker_worker/sha256.h"

namespace docker_worker {
namespace {

class ChainOfTrust final : public Feature {
 public:
  std::string Name() const override { return "chainOfTrust"; }

  std::vector<std::string> ReservedArtifacts(const TaskContext&) const override {
    return {cot::kCertifiedLogName, cot::kDocumentName, cot::kSignatureName};
  }

  Status Start(TaskContext& ctx) override {
    const std::string& path = ctx.config.ed25519_signing_key_location;
    if (path.empty()) {
      return Status(Code::kInvalidArgument,
                    "no signing key configured (config ed25519SigningKeyLocation is empty)");
    }
    auto key = cot::SigningKey::ReadFile(path);
    if (!key.ok()) {
      return key.status().Prefixed(
          "cannot load the ed25519 signing key (config ed25519SigningKeyLocation): ");
    }
    key_.emplace(std::move(*key));
    return Status::Ok();
  }

  Status Stop(TaskContext& ctx, const RunOutcome& outcome) override {
    if (!key_ || outcome.canceled || outcome.aborted) return Status::Ok();
    Status s = Certify(ctx);
    return s.ok() ? s : s.Prefixed("chainOfTrust: ");
  }

 private:
  Status Certify(TaskContext& ctx) {
    // The certified log is the backing log's bytes; they must be the whole task log, whose
    // hash the log computed as it streamed (it is closed before any Stop). A backing file that
    // missed writes is shorter.
    const std::string log_sha = ctx.log.sha256_hex();
    std::error_code ec;
    const auto size = std::filesystem::file_size(ctx.backing_log_path, ec);
    if (log_sha.empty() || ec || size != ctx.log.bytes_written()) {
      return Status(Code::kInternal, "the task log on disk (" + ctx.backing_log_path +
                                         ") is not the whole task log; not certifying it");
    }
    Artifact log;
    log.kind = Artifact::Kind::kFile;
    log.name = cot::kCertifiedLogName;
    log.expires = ctx.task.expires;
    log.content_type = "text/plain";
    log.file = ctx.backing_log_path;
    log.sha256 = log_sha;
    if (Status s = ctx.queue.CreateArtifact(log); !s.ok()) {
      return s.Prefixed(std::string("cannot upload ") + cot::kCertifiedLogName + ": ");
    }

    cot::DocumentInputs in;
    {
      std::lock_guard lock(ctx.mu);
      ctx.artifact_hashes[cot::kCertifiedLogName] = log_sha;
      in.artifacts = ctx.artifact_hashes;
    }
    in.task = ctx.task.raw.get();
    in.task_id = ctx.task_id;
    in.run_id = ctx.run_id;
    in.worker_group = ctx.config.worker_group;
    in.worker_id = ctx.config.worker_id;
    in.public_ip = ctx.config.public_ip;
    in.private_ip = ctx.config.private_ip;
    in.image_hash = ctx.image_id;
    in.image_artifact_hash = ctx.image_artifact_hash;
    in.instance_id = ctx.config.instance_id;
    in.instance_type = ctx.config.instance_type;
    in.region = ctx.config.region;
    std::string document = cot::BuildDocument(in);
    std::string signature = key_->Sign(document);

    if (Status s = Upload(ctx, cot::kDocumentName, "chain-of-trust.json", document, "text/plain");
        !s.ok()) {
      return s;
    }
    return Upload(ctx, cot::kSignatureName, "chain-of-trust.json.sig", signature,
                  "application/octet-stream");
  }

  // Writes `bytes` to <work_dir>/<file> and uploads it as `name`.
  static Status Upload(TaskContext& ctx, const std::string& name, const std::string& file,
                       const std::string& bytes, const std::string& content_type) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(ctx.work_dir, ec);
    std::string path = (fs::path(ctx.work_dir) / file).string();
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!out) return Status(Code::kInternal, "cannot write " + path);
    }
    Artifact a;
    a.kind = Artifact::Kind::kFile;
    a.name = name;
    a.expires = ctx.task.expires;
    a.content_type = content_type;
    a.file = path;
    a.uncompressed = true;  // the signed bytes, exactly, for any client
    Sha256 sha;
    sha.Update(bytes);
    a.sha256 = sha.HexDigest();
    Status s = ctx.queue.CreateArtifact(a);
    if (!s.ok()) return s.Prefixed("cannot upload " + name + ": ");
    return Status::Ok();
  }

  std::optional<cot::SigningKey> key_;
};

}  // namespace

std::unique_ptr<Feature> MakeChainOfTrustFeature() { return std::make_unique<ChainOfTrust>(); }

}  // namespace docker_worker
