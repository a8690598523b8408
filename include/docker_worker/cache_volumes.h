// Cache volumes (payload.cache): named directories on the host, bound read-write into task
// containers and kept from one task to the next.
//
// Layout under the root (cache.volumeCachePath): <root>/<name>/<id>/ is one instance of cache
// <name> (id: a v4 UUID, as upstream), <root>/<name>/<id>.lock its lock file. An entry is an
// instance only when its name is a v4 UUID, it is a directory and its lock file exists (only
// Acquire creates lock files, with the instance): anything else under the root (an operator's
// directories, Docker's data root when the root is shared with it) is never listed, locked or
// deleted. An instance is
// mounted while some process holds an exclusive flock(2) on its lock file, so an instance is
// never given to two tasks at once, whether they run in this worker, in another worker process
// or in `docker-worker run` on the same host, and a lock dies with its process (nothing stays
// "mounted" after a crash). The lock file's mtime is the instance's last use. The directory is
// therefore the whole table: instances left by an earlier worker process are found and reused
// after a restart (upstream kept the table in memory and orphaned them).
//
// Acquire(name) takes the most recently used unmounted instance ("cache volume hit") or creates
// one ("cache volume miss"), and logs which to the worker log. The returned lease keeps the
// instance mounted until it is released (Release() or destruction), which stamps its last use
// with the Clock's now and, if PurgeOnRelease() was called, deletes it. Release a lease only
// once no container uses the instance any more (after the task container was removed).
// RemoveUnmounted() deletes every instance nobody holds (disk pressure). Deleting an instance
// renames it to <root>/<name>/.trash-<id>-<uuid> and unlinks its lock under the table's mutex,
// then removes the tree without it (so a long deletion never blocks Acquire); a trash entry
// left by an interrupted deletion is removed by the next RemoveUnmounted. Only entries of that
// exact form are taken for trash.
//
// Names are checked by CheckName; a cache directory is created 0777 (tasks may run as any user)
// under a root created 0700 when it is missing. Thread-safe. The CacheVolumes must outlive its
// leases. Filesystem errors are returned as kInternal naming the path.
#pragma once

#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/status.h"
#include "docker_worker/worker_log.h"

namespace docker_worker {

class CacheVolumes;

class CacheLease {
 public:
  CacheLease() = default;
  CacheLease(CacheLease&& other) noexcept;
  CacheLease& operator=(CacheLease&& other) noexcept;
  ~CacheLease();

  const std::string& name() const { return name_; }
  const std::string& id() const { return id_; }
  const std::string& path() const { return path_; }  // the instance directory on the host
  bool hit() const { return hit_; }                  // an existing instance was reused
  bool held() const { return fd_ >= 0; }
  void PurgeOnRelease() { purge_ = true; }
  void Release();
  // Keeps the instance mounted until this process ends (its lock file stays open and locked,
  // never stamped nor purged) and empties the lease: for an instance a container that could
  // not be removed may still use. Needs no CacheVolumes afterwards.
  void HoldUntilExit();

 private:
  friend class CacheVolumes;
  CacheVolumes* owner_ = nullptr;
  int fd_ = -1;  // the flock on <id>.lock
  std::string name_, id_, path_;
  bool hit_ = false;
  bool purge_ = false;
};

class CacheVolumes {
 public:
  // `remove_tree` deletes a directory tree (default: std::filesystem::remove_all, errors
  // ignored); tests pass one that blocks.
  CacheVolumes(std::string root, Clock& clock, WorkerLog& log,
               std::function<void(const std::string& path)> remove_tree = {});

  // Why `name` cannot be a cache name, or Ok. "::" gets upstream's message; "/", ":" (it would
  // break the engine's "src:dst:rw" bind), "." and "..", control characters, empty and
  // over-long names get one naming the cache.
  static Status CheckName(const std::string& name);
  // Why `mount_point` cannot receive cache `name` (it must be an absolute path other than "/",
  // without ':' or control characters), or Ok.
  static Status CheckMountPoint(const std::string& name, const std::string& mount_point);

  Result<CacheLease> Acquire(const std::string& name);

  struct Instance {
    std::string name, id, path;
    TimePoint last_used;
    bool mounted = false;
  };
  // Every instance on disk, most recently used first within a name.
  std::vector<Instance> List() const;
  // Deletes every instance no process holds; returns how many.
  int RemoveUnmounted();

  const std::string& root() const { return root_; }

 private:
  friend class CacheLease;
  void Release(CacheLease& lease);
  std::vector<Instance> ListLocked() const;
  // Removes trash trees (outside mu_), then forgets them in deleting_.
  void DeleteTrash(const std::vector<std::string>& trash);

  const std::string root_;
  Clock& clock_;
  WorkerLog& log_;
  // Serialises look-ups in this process, so probing a lock (List) never makes a concurrent
  // Acquire pass over a free instance. Other processes are kept apart by the flocks alone.
  mutable std::mutex mu_;
  std::set<std::string> deleting_;  // trash trees this process is removing (under mu_)
  const std::function<void(const std::string&)> remove_tree_;
};

}  // namespace docker_worker
