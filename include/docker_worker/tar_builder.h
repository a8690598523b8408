// A tar archive built in memory (libarchive, pax-restricted format): for the Engine API's
// archive upload and for tests. Entries are written in the order they are added, owned by
// root (uid/gid 0), with the given permission bits. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "docker_worker/status.h"

struct archive;

namespace docker_worker {

class TarBuilder {
 public:
  TarBuilder();
  ~TarBuilder();
  TarBuilder(const TarBuilder&) = delete;
  TarBuilder& operator=(const TarBuilder&) = delete;

  void AddDir(const std::string& name, uint32_t perm = 0755);
  void AddFile(const std::string& name, std::string_view content, uint32_t perm = 0644);
  void AddSymlink(const std::string& name, const std::string& target);
  void AddHardlink(const std::string& name, const std::string& target);

  // The archive's bytes; the first libarchive error of any Add, if one failed. Call once.
  Result<std::string> Finish();

 private:
  void Add(const std::string& name, unsigned type, uint32_t perm, std::string_view content,
           const std::string& link_target);

  std::string bytes_;
  archive* archive_ = nullptr;
  Status error_;
};

}  // namespace docker_worker
