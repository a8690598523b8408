#include "docker_worker/tar_builder.h"

#include <archive.h>
#include <archive_entry.h>

#include <cerrno>

// Link-level shim, not behaviour: libarchive 3.6's tar writers report an unsupported entry type
// through __archive_write_entry_filetype_unsupported, which lives in archive_write_set_format.o
// beside the table of every writer format. Linking it from there drags in the xar, 7-Zip, zip
// and ISO writers and, through them, libxml2 + ICU, liblzma, libbz2 and nettle as shared
// libraries: about 1.2 MiB resident in an idle worker that only ever writes tar. This weak
// definition satisfies the reference first (this object is linked wherever a tar writer is), so
// the table stays out; a binary that links the table anyway gets libarchive's own definition.
// It is only reached for sockets and the like, which pax cannot hold: the entry is refused.
extern "C" __attribute__((weak)) int __archive_write_entry_filetype_unsupported(
    struct archive* a, struct archive_entry* entry, const char* format) {
  archive_set_error(a, EINVAL, "%s: the %s format cannot hold this file type",
                    archive_entry_pathname(entry), format);
  return ARCHIVE_FAILED;
}

namespace docker_worker {
namespace {

// Add()'s entry type for a hard link (a regular-file entry naming its target).
constexpr unsigned kHardlink = 0;

std::string LastError(archive* a) {
  const char* text = archive_error_string(a);
  return text ? text : "unknown libarchive error";
}

}  // namespace

TarBuilder::TarBuilder() : archive_(archive_write_new()) {
  archive_write_set_format_pax_restricted(archive_);
  archive_write_set_bytes_in_last_block(archive_, 1);  // no padding past the end-of-archive
  archive_write_open(
      archive_, &bytes_, nullptr,
      [](archive*, void* data, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
}

TarBuilder::~TarBuilder() {
  if (archive_) archive_write_free(archive_);
}

void TarBuilder::AddDir(const std::string& name, uint32_t perm) {
  Add(name, AE_IFDIR, perm, {}, {});
}

void TarBuilder::AddFile(const std::string& name, std::string_view content, uint32_t perm) {
  Add(name, AE_IFREG, perm, content, {});
}

void TarBuilder::AddSymlink(const std::string& name, const std::string& target) {
  Add(name, AE_IFLNK, 0777, {}, target);
}

void TarBuilder::AddHardlink(const std::string& name, const std::string& target) {
  Add(name, kHardlink, 0644, {}, target);
}

void TarBuilder::Add(const std::string& name, unsigned type, uint32_t perm,
                     std::string_view content, const std::string& link_target) {
  if (!error_.ok() || !archive_) return;
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_filetype(e, type == kHardlink ? AE_IFREG : type);
  archive_entry_set_perm(e, perm);
  archive_entry_set_uid(e, 0);
  archive_entry_set_gid(e, 0);
  if (type == kHardlink) {
    archive_entry_set_hardlink(e, link_target.c_str());
    archive_entry_set_size(e, 0);
  }
  if (type == AE_IFLNK) archive_entry_set_symlink(e, link_target.c_str());
  if (type == AE_IFREG) archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
  bool ok = archive_write_header(archive_, e) == ARCHIVE_OK;
  if (ok && type == AE_IFREG && !content.empty()) {
    ok = archive_write_data(archive_, content.data(), content.size()) ==
         static_cast<la_ssize_t>(content.size());
  }
  if (!ok) {
    error_ = Status(Code::kInternal,
                    "cannot write tar entry " + name + ": " + LastError(archive_));
  }
  archive_entry_free(e);
}

Result<std::string> TarBuilder::Finish() {
  if (!archive_) return Status(Code::kInternal, "tar archive already finished");
  if (error_.ok() && archive_write_close(archive_) != ARCHIVE_OK) {
    error_ = Status(Code::kInternal,
                    "cannot finish tar archive: " + LastError(archive_));
  }
  archive_write_free(archive_);
  archive_ = nullptr;
  if (!error_.ok()) return error_;
  return std::move(bytes_);
}

}  // namespace docker_worker
