#include "docker_worker/artifact_reader.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "docker_worker/content_type.h"
#include "docker_worker/run_queue.h"
#include "docker_worker/sha256.h"

namespace docker_worker {
namespace {

std::atomic<uint64_t> g_spool_counter{0};

// An fd that closes itself and unlinks its path.
class TempFile {
 public:
  static Result<TempFile> Create(const std::string& dir, const std::string& stem) {
    std::string path = dir + "/" + stem + "-" + std::to_string(g_spool_counter++);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Status(Code::kInternal, "cannot create " + path + ": " + std::strerror(errno));
    }
    return TempFile(fd, path);
  }
  TempFile(TempFile&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  ~TempFile() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(path_.c_str());
    }
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  Status Write(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status(Code::kInternal, "cannot write " + path_ + ": " + std::strerror(errno));
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }

 private:
  TempFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

const char* EntryTypeName(const archive_entry* e) {
  if (archive_entry_hardlink(const_cast<archive_entry*>(e))) return "link";
  switch (archive_entry_filetype(const_cast<archive_entry*>(e))) {
    case AE_IFREG:
      return "file";
    case AE_IFDIR:
      return "directory";
    case AE_IFLNK:
      return "symlink";
    case AE_IFCHR:
      return "character-device";
    case AE_IFBLK:
      return "block-device";
    case AE_IFIFO:
      return "fifo";
    default:
      return "unknown";
  }
}

// Entry name safety: relative, no "..".
bool SafeEntryName(std::string_view name) {
  if (name.empty() || name.front() == '/') return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    if (name.substr(start, end - start) == "..") return false;
    start = end + 1;
  }
  return true;
}

std::string StripTrailingSlashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

}  // namespace

Result<std::optional<ArtifactProblem>> ReadArtifact(
    DockerEngine& docker, const std::string& container_id, const ArtifactSpec& spec,
    const std::string& work_dir, TaskLog& log,
    const std::function<Status(const ArtifactFile&)>& on_file) {
  auto spool = TempFile::Create(work_dir, "artifact.tar");
  if (!spool.ok()) return spool.status();
  auto stat = docker.GetArchive(container_id, spec.path,
                                [&](std::string_view bytes) { return spool->Write(bytes); });
  if (!stat.ok()) {
    if (stat.status().code() == Code::kNotFound) {
      std::string message = "Artifact \"" + spec.name + "\" not found at \"" + spec.path +
                            "\": " + stat.status().message();
      log.Info(message);
      return std::optional<ArtifactProblem>(ArtifactProblem{"file-missing-on-worker", message});
    }
    return stat.status();
  }
  if (::lseek(spool->fd(), 0, SEEK_SET) < 0) {
    return Status(Code::kInternal, "cannot rewind " + spool->path());
  }

  std::unique_ptr<archive, ArchiveCloser> ar(archive_read_new());
  archive_read_support_format_tar(ar.get());
  archive_read_support_format_gnutar(ar.get());
  if (archive_read_open_fd(ar.get(), spool->fd(), 64 * 1024) != ARCHIVE_OK) {
    return Status(Code::kInternal, std::string("cannot read the archive of \"") + spec.path +
                                       "\": " + archive_error_string(ar.get()));
  }
  const std::string expected = spec.type == "file" ? "file" : "directory";
  const std::string base_name = StripTrailingSlashes(spec.name);
  bool first = true;
  std::string buffer(64 * 1024, '\0');
  archive_entry* entry = nullptr;
  while (true) {
    int r = archive_read_next_header(ar.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return Status(Code::kInternal, std::string("corrupt archive for artifact \"") + spec.name +
                                         "\": " + archive_error_string(ar.get()));
    }
    const char* raw_name = archive_entry_pathname(entry);
    std::string entry_name = raw_name ? raw_name : "";
    std::string type = EntryTypeName(entry);
    if (first) {
      first = false;
      if (type != expected) {
        std::string message = "Error uploading \"" + spec.name +
                              "\". Expected artifact to be a \"" + expected + "\" but was \"" +
                              type + "\"";
        log.Error(message);
        return std::optional<ArtifactProblem>(
            ArtifactProblem{"invalid-resource-on-worker", message});
      }
    }
    if (type != "file") continue;  // directories, links, devices: never followed or uploaded
    if (!SafeEntryName(entry_name)) {
      log.Error("Skipping unsafe entry \"" + entry_name + "\" in artifact \"" + spec.name + "\"");
      continue;
    }
    std::string name = base_name;
    if (expected == "directory") {
      size_t slash = entry_name.find('/');
      std::string rel = slash == std::string::npos ? "" : entry_name.substr(slash + 1);
      while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
      if (rel.empty()) continue;
      name += "/" + rel;
    }
    if (Status valid = ValidateArtifactName(name); !valid.ok()) {
      log.Error("Skipping entry \"" + entry_name + "\" of artifact \"" + spec.name + "\": " +
                valid.message());
      continue;
    }
    auto out = TempFile::Create(work_dir, "artifact-file");
    if (!out.ok()) return out.status();
    Sha256 sha;
    int64_t size = 0;
    while (true) {
      la_ssize_t n = archive_read_data(ar.get(), buffer.data(), buffer.size());
      if (n < 0) {
        return Status(Code::kInternal, std::string("cannot read \"") + entry_name +
                                           "\" from the archive: " + archive_error_string(ar.get()));
      }
      if (n == 0) break;
      std::string_view chunk(buffer.data(), static_cast<size_t>(n));
      sha.Update(chunk);
      if (Status w = out->Write(chunk); !w.ok()) return w;
      size += n;
    }
    ArtifactFile file{name, out->path(), sha.HexDigest(), ContentTypeFor(name), size};
    if (Status s = on_file(file); !s.ok()) return s;
  }
  return std::optional<ArtifactProblem>();
}

}  // namespace docker_worker
