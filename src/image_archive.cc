#include "docker_worker/image_archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <optional>
#include <set>
#include <string_view>

#include "docker_worker/json.h"

namespace docker_worker {
namespace {

// The metadata files we rewrite are small; anything bigger is not a docker archive of ours.
constexpr int64_t kMaxMetadataBytes = int64_t{4} << 20;
constexpr size_t kBlock = 256 * 1024;

const char kUnsupportedFormat[] =
    "Unsupported image file format. Expected a tarball, optionally compressed with zstd, lz4 "
    "or gzip (.tar, .tar.zst, .tar.lz4, .tar.gz)";

std::string LastError(archive* a) {
  const char* text = archive_error_string(a);
  return text ? text : "unknown libarchive error";
}

// "./manifest.json" and "manifest.json" name the same top-level file; a trailing '/' (directory
// entries) is dropped too, so "d/" and "d" name the same path.
std::string NormalName(const char* path) {
  std::string name = path ? path : "";
  while (name.rfind("./", 0) == 0) name.erase(0, 2);
  if (name == ".") name.clear();
  if (!name.empty() && name.back() == '/') name.pop_back();
  return name;
}

// A name Docker's loader would not clean into something else: not absolute, no empty segment
// (but a trailing '/'), no "." or ".." segment. `name` is NormalName's output; "" is the
// archive's root ("./"), harmless.
bool Canonical(const std::string& name) {
  if (name.empty()) return true;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string_view segment(name.data() + start, end - start);
    if (segment.empty() || segment == "." || segment == "..") return false;
    start = end + 1;
  }
  return true;
}

bool IsMetadata(const std::string& name) {
  return name == "manifest.json" || name == "index.json" || name == "repositories";
}

// An entry name for an error message: quoted, escaped, at most ~100 characters.
std::string Shown(const char* path) {
  std::string name = path ? path : "";
  if (name.size() > 100) name = name.substr(0, 100) + "...";
  return json::Quote(name);
}

struct Reader {
  const ByteSource& in;
  std::string buf = std::string(kBlock, '\0');
  Status error;  // the source's own failure, returned as is
};

struct Writer {
  const ByteSink& out;
  Status error;
};

la_ssize_t ReadCallback(archive* a, void* data, const void** block) {
  auto* r = static_cast<Reader*>(data);
  auto n = r->in(r->buf.data(), r->buf.size());
  if (!n.ok()) {
    r->error = n.status();
    archive_set_error(a, EIO, "%s", "the image stream failed");
    return -1;
  }
  *block = r->buf.data();
  return static_cast<la_ssize_t>(*n);
}

la_ssize_t WriteCallback(archive* a, void* data, const void* buf, size_t n) {
  auto* w = static_cast<Writer*>(data);
  Status s = w->out(std::string_view(static_cast<const char*>(buf), n));
  if (!s.ok()) {
    w->error = s;
    archive_set_error(a, EIO, "%s", "the image consumer failed");
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

class Retagger {
 public:
  Retagger(const ByteSource& in, const ByteSink& out, std::string repo_tag)
      : reader_{in, std::string(kBlock, '\0'), Status::Ok()},
        writer_{out, Status::Ok()},
        repo_tag_(std::move(repo_tag)) {
    size_t colon = repo_tag_.rfind(':');
    repo_ = repo_tag_.substr(0, colon);
    tag_ = colon == std::string::npos ? "latest" : repo_tag_.substr(colon + 1);
  }

  ~Retagger() {
    if (in_) archive_read_free(in_);
    if (out_) archive_write_free(out_);
  }

  Status Run() {
    in_ = archive_read_new();
    out_ = archive_write_new();
    if (!in_ || !out_) return Status(Code::kInternal, "libarchive: out of memory");
    archive_read_support_filter_gzip(in_);
    archive_read_support_filter_lz4(in_);
    archive_read_support_filter_zstd(in_);
    archive_read_support_format_tar(in_);
    archive_write_set_format_pax_restricted(out_);
    archive_write_set_bytes_in_last_block(out_, 1);
    if (archive_write_open(out_, &writer_, nullptr, &WriteCallback, nullptr) != ARCHIVE_OK) {
      return WriteFailure("cannot start the image archive");
    }
    if (archive_read_open(in_, &reader_, nullptr, &ReadCallback, nullptr) != ARCHIVE_OK) {
      return ReadFailure(true);
    }
    bool first = true;
    archive_entry* entry = nullptr;
    while (true) {
      int r = archive_read_next_header(in_, &entry);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return ReadFailure(first);
      first = false;
      if (Status s = Entry(entry); !s.ok()) return s;
    }
    if (first) return ReadFailure(true);  // not even one entry: not a tar we understand
    if (!manifest_seen_) {
      if (!repositories_) return Status(Code::kInvalidArgument, "Unknown docker archive format");
      auto rewritten = RewriteRepositories(*repositories_);
      if (!rewritten.ok()) return rewritten.status();
      if (Status s = WriteFile(repositories_entry_.get(), *rewritten); !s.ok()) return s;
    }
    if (archive_write_close(out_) != ARCHIVE_OK) return WriteFailure("cannot finish the archive");
    return Status::Ok();
  }

 private:
  struct EntryDeleter {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
  };

  Status ReadFailure(bool at_start) {
    if (!reader_.error.ok()) return reader_.error;
    if (at_start) return Status(Code::kInvalidArgument, std::string(kUnsupportedFormat) + ": " +
                                                            LastError(in_));
    return Status(Code::kInvalidArgument, "the image archive is corrupt: " + LastError(in_));
  }

  Status WriteFailure(const std::string& what) {
    if (!writer_.error.ok()) return writer_.error;
    return Status(Code::kInternal, what + ": " + LastError(out_));
  }

  Result<std::string> ReadWhole(archive_entry* entry, const std::string& name) {
    int64_t size = archive_entry_size(entry);
    if (size < 0 || size > kMaxMetadataBytes) {
      return Status(Code::kInvalidArgument, name + " in the image archive is too large");
    }
    std::string text(static_cast<size_t>(size), '\0');
    size_t got = 0;
    while (got < text.size()) {
      la_ssize_t n = archive_read_data(in_, text.data() + got, text.size() - got);
      if (n < 0) return ReadFailure(false);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    text.resize(got);
    return text;
  }

  Status WriteFile(archive_entry* entry, const std::string& content) {
    archive_entry_set_size(entry, static_cast<la_int64_t>(content.size()));
    if (archive_write_header(out_, entry) != ARCHIVE_OK) return WriteFailure("cannot write");
    if (!content.empty() && archive_write_data(out_, content.data(), content.size()) !=
                                static_cast<la_ssize_t>(content.size())) {
      return WriteFailure("cannot write");
    }
    return Status::Ok();
  }

  Status Copy(archive_entry* entry) {
    if (archive_write_header(out_, entry) != ARCHIVE_OK) return WriteFailure("cannot write");
    if (archive_entry_filetype(entry) != AE_IFREG || archive_entry_size(entry) <= 0) {
      return Status::Ok();
    }
    std::string buf(kBlock, '\0');
    while (true) {
      la_ssize_t n = archive_read_data(in_, buf.data(), buf.size());
      if (n < 0) return ReadFailure(false);
      if (n == 0) return Status::Ok();
      if (archive_write_data(out_, buf.data(), static_cast<size_t>(n)) != n) {
        return WriteFailure("cannot write");
      }
    }
  }

  // Refuses entries that could make Docker's loader (which cleans paths and follows symlinks
  // inside the archive) read metadata we did not rewrite: a task could claim any image name.
  Status CheckEntry(archive_entry* entry, const std::string& name) {
    const char* raw = archive_entry_pathname(entry);
    if (!Canonical(name)) {
      return Status(Code::kInvalidArgument,
                    "the image archive has an entry with a non-canonical name " + Shown(raw));
    }
    const bool link = archive_entry_filetype(entry) == AE_IFLNK ||
                      archive_entry_hardlink(entry) != nullptr;
    if (link && IsMetadata(name)) {
      return Status(Code::kInvalidArgument,
                    "the image archive's " + name + " is a link, not a regular file");
    }
    for (size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      if (symlinks_.count(name.substr(0, slash))) {
        return Status(Code::kInvalidArgument, "the image archive has an entry " + Shown(raw) +
                                                  " under a symbolic link");
      }
    }
    if (archive_entry_filetype(entry) == AE_IFLNK) symlinks_.insert(name);
    return Status::Ok();
  }

  Status Entry(archive_entry* entry) {
    const std::string name = NormalName(archive_entry_pathname(entry));
    if (Status s = CheckEntry(entry, name); !s.ok()) return s;
    const bool regular = archive_entry_filetype(entry) == AE_IFREG;
    if (regular && (name == "manifest.json" || name == "index.json")) {
      auto text = ReadWhole(entry, name);
      if (!text.ok()) return text.status();
      auto rewritten = name == "manifest.json" ? RewriteManifest(*text) : RewriteIndex(*text);
      if (!rewritten.ok()) return rewritten.status();
      if (name == "manifest.json") manifest_seen_ = true;
      return WriteFile(entry, *rewritten);
    }
    if (regular && name == "repositories") {
      // Dropped if a manifest.json is found (before or after it), else rewritten at the end.
      auto text = ReadWhole(entry, name);
      if (!text.ok()) return text.status();
      repositories_ = std::move(*text);
      repositories_entry_.reset(archive_entry_clone(entry));
      return Status::Ok();
    }
    return Copy(entry);
  }

  // Serialising recurses: a hostile document nested a million deep would overflow the stack.
  static Status TooDeep(const std::string& name) {
    return Status(Code::kInvalidArgument, name + " of the image archive nests deeper than " +
                                              std::to_string(json::kMaxDocumentDepth) + " levels");
  }

  Result<std::string> RewriteManifest(const std::string& text) {
    auto doc = json::Parse(text);
    if (doc.ok() && !json::DepthWithin(*doc, json::kMaxDocumentDepth)) {
      return TooDeep("manifest.json");
    }
    if (!doc.ok() || !doc->IsArray()) {
      return Status(Code::kInvalidArgument,
                    "manifest.json of the image archive is not a JSON array");
    }
    if (doc->Size() != 1 || !(*doc)[0].IsObject()) {
      return Status(Code::kInvalidArgument,
                    "Task images must only contain one image per tar file (manifest.json lists " +
                        std::to_string(doc->Size()) + ")");
    }
    json::Value& image = (*doc)[0];
    auto& alloc = doc->GetAllocator();
    json::Value tags(rapidjson::kArrayType);
    tags.PushBack(json::Str(repo_tag_, alloc), alloc);
    image.RemoveMember("RepoTags");
    image.AddMember("RepoTags", tags, alloc);
    return json::Serialize(*doc);
  }

  Result<std::string> RewriteIndex(const std::string& text) {
    auto doc = json::Parse(text);
    if (doc.ok() && !json::DepthWithin(*doc, json::kMaxDocumentDepth)) {
      return TooDeep("index.json");
    }
    if (!doc.ok() || !doc->IsObject()) {
      return Status(Code::kInvalidArgument, "index.json of the image archive is not a JSON object");
    }
    auto& alloc = doc->GetAllocator();
    if (json::Value* manifests = doc->HasMember("manifests") ? &(*doc)["manifests"] : nullptr;
        manifests && manifests->IsArray()) {
      for (auto& m : manifests->GetArray()) {
        if (!m.IsObject() || !m.HasMember("annotations") || !m["annotations"].IsObject()) continue;
        json::Value& annotations = m["annotations"];
        auto set = [&](const char* key, const std::string& value) {
          if (!annotations.HasMember(key)) return;
          annotations[key] = json::Str(value, alloc);
        };
        set("io.containerd.image.name", repo_tag_);
        set("org.opencontainers.image.ref.name", tag_);
      }
    }
    return json::Serialize(*doc);
  }

  Result<std::string> RewriteRepositories(const std::string& text) {
    auto doc = json::Parse(text);
    if (!doc.ok() || !doc->IsObject() || doc->MemberCount() != 1 ||
        !doc->MemberBegin()->value.IsObject() || doc->MemberBegin()->value.MemberCount() != 1) {
      return Status(Code::kInvalidArgument,
                    "Task images must only contain one image per tar file (repositories must "
                    "name one repository with one tag)");
    }
    const json::Value& id = doc->MemberBegin()->value.MemberBegin()->value;
    if (!id.IsString()) {
      return Status(Code::kInvalidArgument, "repositories of the image archive names no image id");
    }
    json::Document out;
    out.SetObject();
    auto& alloc = out.GetAllocator();
    json::Value tags(rapidjson::kObjectType);
    tags.AddMember(json::Str(tag_, alloc), json::Str(id.GetString(), alloc), alloc);
    out.AddMember(json::Str(repo_, alloc), tags, alloc);
    return json::Serialize(out);
  }

  Reader reader_;
  Writer writer_;
  std::string repo_tag_, repo_, tag_;
  archive* in_ = nullptr;
  archive* out_ = nullptr;
  bool manifest_seen_ = false;
  std::set<std::string> symlinks_;  // normalised names of the symlink entries seen so far
  std::optional<std::string> repositories_;
  std::unique_ptr<archive_entry, EntryDeleter> repositories_entry_;
};

}  // namespace

Status RetagImageArchive(const ByteSource& in, const ByteSink& out, const std::string& repo_tag) {
  return Retagger(in, out, repo_tag).Run();
}

}  // namespace docker_worker
