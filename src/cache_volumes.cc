#include "docker_worker/cache_volumes.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

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

// An exclusive, non-blocking flock on lock file `path`: the fd, or -1 when another holder has
// it or the file does not exist. Only `create` (a new instance's lock) creates the file, and then
// only if it did not exist. A lock on a file that was unlinked meanwhile (a concurrent removal)
// is refused.
int TryLock(const std::string& path, bool create = false) {
  int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0);
  int fd = ::open(path.c_str(), flags, 0600);
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

// "xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx" in lower-case hex: the only instance ids.
bool IsUuidV4(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return s[14] == '4' && std::string_view("89ab").find(s[19]) != std::string_view::npos;
}

// ".trash-<instance id>-<uuid>": an instance this code renamed out of the way to delete it.
bool IsTrashName(std::string_view s) {
  const size_t prefix = std::strlen(kTrashPrefix);
  return s.size() == prefix + 36 + 1 + 36 && s.substr(0, prefix) == kTrashPrefix &&
         IsUuidV4(s.substr(prefix, 36)) && s[prefix + 36] == '-' &&
         IsUuidV4(s.substr(prefix + 37));
}

bool IsRegularFile(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsRealDirectory(const std::string& path) {  // not through a symlink
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// <root>/<name>/<id>/ is an instance when <id> is a v4 UUID, it is a directory and <id>.lock is
// a regular file beside it. Nothing else under the root is ever taken for one (or deleted).
bool IsInstance(const fs::path& dir) {
  return IsUuidV4(dir.filename().string()) && IsRealDirectory(dir.string()) &&
         IsRegularFile(dir.string() + kLockSuffix);
}

// First half of deleting instance `dir`, whose lock file `lock` is held through `fd`: renames
// the directory to a trash name (so a half-deleted instance is never reused), unlinks the lock
// and drops it. Returns the trash path to delete (later, outside any lock), or "" when the
// directory could not be moved (it is then left as it is, still an instance).
std::string TrashInstance(const std::string& dir, const std::string& lock, int fd) {
  fs::path p(dir);
  fs::path trash = p.parent_path() / (kTrashPrefix + p.filename().string() + "-" + NewUuidV4());
  std::error_code ec;
  fs::rename(p, trash, ec);
  if (!ec) ::unlink(lock.c_str());
  ::close(fd);
  return ec ? std::string() : trash.string();
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

void CacheLease::HoldUntilExit() {
  fd_ = -1;  // deliberately not closed: the flock lives as long as the process
  owner_ = nullptr;
}

void CacheLease::Release() {
  if (fd_ >= 0 && owner_) owner_->Release(*this);
  fd_ = -1;
}

// ----------------------------------------------------------------------------- CacheVolumes

CacheVolumes::CacheVolumes(std::string root, Clock& clock, WorkerLog& log,
                           std::function<void(const std::string&)> remove_tree)
    : root_(std::move(root)),
      clock_(clock),
      log_(log),
      remove_tree_(remove_tree ? std::move(remove_tree) : [](const std::string& path) {
        std::error_code ec;
        fs::remove_all(path, ec);
      }) {}

void CacheVolumes::DeleteTrash(const std::vector<std::string>& trash) {
  for (const std::string& t : trash) {
    remove_tree_(t);
    std::lock_guard lock(mu_);
    deleting_.erase(t);
  }
}

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
  // Docker's bind syntax is "src:dst:mode": a ':' in the host path breaks it.
  if (name.find(':') != std::string::npos) return bad("it must not contain \":\"");
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
    if (!IsRealDirectory(i.path)) {  // removed meanwhile: the lock file is a stray
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
  lease.fd_ = TryLock(lock, /*create=*/true);
  if (lease.fd_ < 0) return FsError("cannot create the lock", lock, errno);
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
    std::string trash;
    {
      std::lock_guard lock_table(mu_);
      trash = TrashInstance(lease.path_, lock, lease.fd_);
      if (!trash.empty()) deleting_.insert(trash);
    }
    lease.fd_ = -1;
    if (trash.empty()) {
      log_.Event("cache volume purge failed", {{"cache", lease.name_}, {"instance", lease.id_}});
      return;
    }
    log_.Event("cache volume purged", {{"cache", lease.name_}, {"instance", lease.id_}});
    DeleteTrash({trash});
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
    if (!IsRealDirectory(name_dir.path().string())) continue;
    const std::string name = name_dir.path().filename().string();
    std::vector<Instance> of_name;
    for (const auto& entry : fs::directory_iterator(name_dir.path(), ec)) {
      const std::string id = entry.path().filename().string();
      if (!IsInstance(entry.path())) continue;
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
  int removed = 0;
  std::vector<std::string> trash;
  {
    std::lock_guard lock_table(mu_);
    std::error_code ec;
    for (const auto& name_dir : fs::directory_iterator(root_, ec)) {
      if (!IsRealDirectory(name_dir.path().string())) continue;
      std::vector<fs::path> entries;
      for (const auto& entry : fs::directory_iterator(name_dir.path(), ec)) {
        entries.push_back(entry.path());
      }
      for (const fs::path& p : entries) {
        const std::string file = p.filename().string();
        if (IsTrashName(file)) {  // an earlier removal that did not finish
          if (IsRealDirectory(p.string()) && deleting_.insert(p.string()).second) {
            trash.push_back(p.string());
          }
          continue;
        }
        if (!IsInstance(p)) continue;
        const std::string lock = p.string() + kLockSuffix;
        int fd = TryLock(lock);
        if (fd < 0) continue;
        std::string t = TrashInstance(p.string(), lock, fd);
        if (t.empty()) continue;
        deleting_.insert(t);
        trash.push_back(t);
        log_.Event("cache volume removed",
                   {{"cache", name_dir.path().filename().string()}, {"instance", file}});
        ++removed;
      }
    }
  }
  DeleteTrash(trash);  // the slow part, with the table free for Acquire
  return removed;
}

}  // namespace docker_worker
