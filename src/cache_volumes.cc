#include "docker_worker/cache_volumes.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "docker_worker/slugid.h"

namespace docker_worker {
namespace {

namespace fs = std::filesystem;

constexpr const char* kLockSuffix = ".lock";
constexpr const char* kTrashPrefix = ".trash-";

Status FsError(const std::string& what, const std::string& path, int err) {
  return Status(Code::kInternal, what + " " + path + ": " + std::strerror(err));
}

TimePoint MtimeOf(const struct stat& st) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
      std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
}

// An exclusive, non-blocking flock on `path` (created if missing): the fd, or -1 when another
// holder has it. A lock on a file that was unlinked meanwhile (a concurrent removal) is refused.
int TryLock(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  struct stat held {}, named {};
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || ::fstat(fd, &held) != 0 ||
      ::stat(path.c_str(), &named) != 0 || held.st_ino != named.st_ino ||
      held.st_dev != named.st_dev) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void Stamp(int fd, TimePoint t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(ns / 1000000000);
  times[0].tv_nsec = times[1].tv_nsec = static_cast<long>(ns % 1000000000);
  (void)::futimens(fd, times);
}

// Deletes instance `dir` whose lock file `lock` is held through `fd`, then drops the lock. The
// directory is first renamed out of the way, so a half-deleted instance is never reused.
void RemoveInstance(const std::string& dir, const std::string& lock, int fd) {
  fs::path p(dir);
  fs::path trash = p.parent_path() / (kTrashPrefix + p.filename().string() + "-" + NewSlugId());
  std::error_code ec;
  fs::rename(p, trash, ec);
  fs::remove_all(ec ? p : trash, ec);
  ::unlink(lock.c_str());
  ::close(fd);
}

bool IsInstanceDirName(const std::string& n) {
  return !n.empty() && n[0] != '.' && n.find('.') == std::string::npos;
}

}  // namespace

// ------------------------------------------------------------------------------- CacheLease

CacheLease::CacheLease(CacheLease&& other) noexcept { *this = std::move(other); }

CacheLease& CacheLease::operator=(CacheLease&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    fd_ = std::exchange(other.fd_, -1);
    name_ = std::move(other.name_);
    id_ = std::move(other.id_);
    path_ = std::move(other.path_);
    hit_ = other.hit_;
    purge_ = other.purge_;
  }
  return *this;
}

CacheLease::~CacheLease() { Release(); }

void CacheLease::Release() {
  if (fd_ >= 0 && owner_) owner_->Release(*this);
  fd_ = -1;
}

// ----------------------------------------------------------------------------- CacheVolumes

CacheVolumes::CacheVolumes(std::string root, Clock& clock, WorkerLog& log)
    : root_(std::move(root)), clock_(clock), log_(log) {}

Status CacheVolumes::CheckName(const std::string& name) {
  if (name.find("::") != std::string::npos) {
    return Status::TaskFailed(
        "Invalid key name was provided.  Ensure that the cache name does not contain \"::\".");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return Status::TaskFailed("Invalid cache name: it must not contain control characters.");
    }
  }
  auto bad = [&](const std::string& why) {
    return Status::TaskFailed("Invalid cache name \"" + name + "\": " + why + ".");
  };
  if (name.empty() || name.size() > 200) return bad("it must be 1 to 200 bytes long");
  if (name.find('/') != std::string::npos) return bad("it must not contain \"/\"");
  if (name == "." || name == "..") return bad("it must not be \".\" or \"..\"");
  return Status::Ok();
}

Status CacheVolumes::CheckMountPoint(const std::string& name, const std::string& mount_point) {
  bool ok = mount_point.size() > 1 && mount_point[0] == '/' &&
            mount_point.find(':') == std::string::npos &&
            std::none_of(mount_point.begin(), mount_point.end(),
                         [](unsigned char c) { return c < 0x20 || c == 0x7f; });
  if (ok) return Status::Ok();
  return Status::TaskFailed("Invalid mount point for cache \"" + name +
                            "\": it must be an absolute path other than \"/\", without \":\" "
                            "or control characters.");
}

Result<CacheLease> CacheVolumes::Acquire(const std::string& name) {
  if (Status s = CheckName(name); !s.ok()) return s;
  std::lock_guard lock_table(mu_);
  std::error_code ec;
  if (!fs::exists(root_, ec)) {
    fs::create_directories(root_, ec);
    if (ec) return FsError("cannot create the cache root", root_, ec.value());
    fs::permissions(root_, fs::perms::owner_all, ec);
  }
  const std::string dir = root_ + "/" + name;
  fs::create_directories(dir, ec);
  if (ec) return FsError("cannot create the cache directory", dir, ec.value());

  CacheLease lease;
  lease.owner_ = this;
  lease.name_ = name;
  for (const Instance& i : ListLocked()) {  // most recently used first
    if (i.name != name || i.mounted) continue;
    const std::string lock = dir + "/" + i.id + kLockSuffix;
    int fd = TryLock(lock);
    if (fd < 0) continue;
    if (!fs::is_directory(i.path, ec)) {  // removed meanwhile: the lock file is a stray
      ::unlink(lock.c_str());
      ::close(fd);
      continue;
    }
    lease.fd_ = fd;
    lease.id_ = i.id;
    lease.path_ = i.path;
    lease.hit_ = true;
    log_.Event("cache volume hit", {{"cache", name}, {"instance", i.id}});
    return lease;
  }

  lease.id_ = NewUuidV4();
  lease.path_ = dir + "/" + lease.id_;
  const std::string lock = dir + "/" + lease.id_ + kLockSuffix;
  lease.fd_ = TryLock(lock);
  if (lease.fd_ < 0) return FsError("cannot lock", lock, errno);
  if (::mkdir(lease.path_.c_str(), 0777) != 0 || ::chmod(lease.path_.c_str(), 0777) != 0) {
    Status s = FsError("cannot create the cache instance", lease.path_, errno);
    ::unlink(lock.c_str());
    return s;  // the lease closes its fd
  }
  Stamp(lease.fd_, clock_.Now());
  log_.Event("cache volume miss", {{"cache", name}, {"instance", lease.id_}});
  return lease;
}

void CacheVolumes::Release(CacheLease& lease) {
  const std::string lock = root_ + "/" + lease.name_ + "/" + lease.id_ + kLockSuffix;
  if (lease.purge_) {
    RemoveInstance(lease.path_, lock, lease.fd_);
    log_.Event("cache volume purged", {{"cache", lease.name_}, {"instance", lease.id_}});
  } else {
    Stamp(lease.fd_, clock_.Now());
    ::close(lease.fd_);
  }
  lease.fd_ = -1;
}

std::vector<CacheVolumes::Instance> CacheVolumes::List() const {
  std::lock_guard lock(mu_);
  return ListLocked();
}

std::vector<CacheVolumes::Instance> CacheVolumes::ListLocked() const {
  std::vector<Instance> out;
  std::error_code ec;
  for (const auto& name_dir : fs::directory_iterator(root_, ec)) {
    if (!name_dir.is_directory(ec)) continue;
    const std::string name = name_dir.path().filename().string();
    std::vector<Instance> of_name;
    for (const auto& entry : fs::directory_iterator(name_dir.path(), ec)) {
      const std::string id = entry.path().filename().string();
      if (!entry.is_directory(ec) || !IsInstanceDirName(id)) continue;
      Instance i{name, id, entry.path().string(), {}, false};
      const std::string lock = i.path + kLockSuffix;
      struct stat st {};
      if (::stat(lock.c_str(), &st) == 0 || ::stat(i.path.c_str(), &st) == 0) {
        i.last_used = MtimeOf(st);
      }
      int fd = TryLock(lock);
      i.mounted = fd < 0;
      if (fd >= 0) ::close(fd);
      of_name.push_back(std::move(i));
    }
    std::sort(of_name.begin(), of_name.end(),
              [](const Instance& a, const Instance& b) { return a.last_used > b.last_used; });
    out.insert(out.end(), of_name.begin(), of_name.end());
  }
  return out;
}

int CacheVolumes::RemoveUnmounted() {
  std::lock_guard lock_table(mu_);
  int removed = 0;
  std::error_code ec;
  for (const auto& name_dir : fs::directory_iterator(root_, ec)) {
    if (!name_dir.is_directory(ec)) continue;
    std::vector<fs::path> entries;
    for (const auto& entry : fs::directory_iterator(name_dir.path(), ec)) {
      entries.push_back(entry.path());
    }
    for (const fs::path& p : entries) {
      const std::string file = p.filename().string();
      if (file.rfind(kTrashPrefix, 0) == 0) {  // an earlier removal that did not finish
        fs::remove_all(p, ec);
        continue;
      }
      if (!IsInstanceDirName(file) || !fs::is_directory(p, ec)) continue;
      const std::string lock = p.string() + kLockSuffix;
      int fd = TryLock(lock);
      if (fd < 0) continue;
      RemoveInstance(p.string(), lock, fd);
      log_.Event("cache volume removed",
                 {{"cache", name_dir.path().filename().string()}, {"instance", file}});
      ++removed;
    }
  }
  return removed;
}

}  // namespace docker_worker
