#include "docker_worker/gzip_file.h"

#include <zlib.h>

#include <cstdio>
#include <memory>

namespace docker_worker {
namespace {

struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<FILE, FileCloser>;

}  // namespace

Result<int64_t> GzipFile(const std::string& in_path, const std::string& out_path) {
  File in(std::fopen(in_path.c_str(), "rb"));
  if (!in) return Status(Code::kNotFound, "cannot read " + in_path);
  File out(std::fopen(out_path.c_str(), "wb"));
  if (!out) return Status(Code::kInternal, "cannot create " + out_path);
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Status(Code::kInternal, "zlib initialisation failed");
  }
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, deflateEnd);
  std::string inbuf(64 * 1024, '\0'), outbuf(64 * 1024, '\0');
  int64_t total = 0;
  int flush = Z_NO_FLUSH;
  do {
    size_t n = std::fread(inbuf.data(), 1, inbuf.size(), in.get());
    if (std::ferror(in.get())) return Status(Code::kInternal, "cannot read " + in_path);
    flush = std::feof(in.get()) ? Z_FINISH : Z_NO_FLUSH;
    z.next_in = reinterpret_cast<Bytef*>(inbuf.data());
    z.avail_in = static_cast<uInt>(n);
    do {
      z.next_out = reinterpret_cast<Bytef*>(outbuf.data());
      z.avail_out = static_cast<uInt>(outbuf.size());
      deflate(&z, flush);
      size_t have = outbuf.size() - z.avail_out;
      if (std::fwrite(outbuf.data(), 1, have, out.get()) != have) {
        return Status(Code::kInternal, "cannot write " + out_path);
      }
      total += static_cast<int64_t>(have);
    } while (z.avail_out == 0);
  } while (flush != Z_FINISH);
  if (std::fflush(out.get()) != 0) return Status(Code::kInternal, "cannot write " + out_path);
  return total;
}

bool ShouldGzip(const std::string& name, const std::vector<std::string>& skip_extensions) {
  for (const auto& ext : skip_extensions) {
    if (name.size() >= ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) {
      return false;
    }
  }
  return true;
}

}  // namespace docker_worker
