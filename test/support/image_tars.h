// Small `docker save`-shaped archives for tests of image loading, built in memory.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace docker_worker::testing {

// A docker save (>= 1.10) archive of one image: <id>/layer.tar (holding `layer_content`),
// <id>.json, manifest.json with RepoTags [repo_tag], and the legacy `repositories` file.
// `with_manifest` false leaves out manifest.json (the v1.0 format).
std::string FakeDockerSave(const std::string& repo_tag, const std::string& layer_content,
                           bool with_manifest = true);
// One entry of TarOf: type 'f' (regular file, `data` = content), 'd' (directory), 'l' (symlink,
// `data` = target) or 'h' (hardlink, `data` = target). Names are written exactly as given.
struct TarEntry {
  char type;
  std::string name;
  std::string data;
};
// A pax tar of `entries`, in order.
std::string TarOf(const std::vector<TarEntry>& entries);
// `bytes` compressed with libarchive's "gzip", "lz4" or "zstd" filter ("" = unchanged).
std::string Compress(const std::string& bytes, const std::string& filter);
// The regular files of a tar archive (any compression): path -> content.
std::map<std::string, std::string> TarFiles(const std::string& archive);

}  // namespace docker_worker::testing
