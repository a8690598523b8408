#include "support/image_tars.h"

#include <archive.h>
#include <archive_entry.h>

#include "docker_worker/tar_builder.h"

namespace docker_worker::testing {

std::string FakeDockerSave(const std::string& repo_tag, const std::string& layer_content,
                           bool with_manifest) {
  const std::string id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  size_t colon = repo_tag.rfind(':');
  TarBuilder tar;
  tar.AddDir(id);
  tar.AddFile(id + "/VERSION", "1.0");
  tar.AddFile(id + "/layer.tar", layer_content);
  tar.AddFile(id + ".json", R"({"config":{"Cmd":["/bin/sh"]}})");
  if (with_manifest) {
    tar.AddFile("manifest.json", R"([{"Config":")" + id + R"(.json","RepoTags":[")" + repo_tag +
                                     R"("],"Layers":[")" + id + R"(/layer.tar"]}])");
  }
  tar.AddFile("repositories", R"({")" + repo_tag.substr(0, colon) + R"(":{")" +
                                  repo_tag.substr(colon + 1) + R"(":")" + id + R"("}})");
  auto bytes = tar.Finish();
  return bytes.ok() ? *bytes : "";
}

std::string TarOf(const std::vector<TarEntry>& entries) {
  TarBuilder tar;
  for (const auto& t : entries) {
    switch (t.type) {
      case 'd': tar.AddDir(t.name); break;
      case 'l': tar.AddSymlink(t.name, t.data); break;
      case 'h': tar.AddHardlink(t.name, t.data); break;
      default: tar.AddFile(t.name, t.data);
    }
  }
  auto bytes = tar.Finish();
  return bytes.ok() ? *bytes : "";
}

std::string Compress(const std::string& bytes, const std::string& filter) {
  if (filter.empty()) return bytes;
  std::string out;
  archive* a = archive_write_new();
  archive_write_add_filter_by_name(a, filter.c_str());
  archive_write_set_format_raw(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* data, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  archive_entry* e = archive_entry_new();
  archive_entry_set_filetype(e, AE_IFREG);
  archive_write_header(a, e);
  archive_write_data(a, bytes.data(), bytes.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

std::map<std::string, std::string> TarFiles(const std::string& bytes) {
  std::map<std::string, std::string> files;
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_memory(a, bytes.data(), bytes.size()) == ARCHIVE_OK) {
    archive_entry* e = nullptr;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
      if (archive_entry_filetype(e) != AE_IFREG) continue;
      std::string content(static_cast<size_t>(archive_entry_size(e)), '\0');
      if (!content.empty()) archive_read_data(a, content.data(), content.size());
      files[archive_entry_pathname(e)] = content;
    }
  }
  archive_read_free(a);
  return files;
}

}  // namespace docker_worker::testing
