#include "docker_worker/content_type.h"

#include <algorithm>
#include <cctype>
#include <unordered_map>

namespace docker_worker {

std::string ContentTypeFor(std::string_view name) {
  static const std::unordered_map<std::string, std::string> kTypes = {
      {"html", "text/html"},          {"htm", "text/html"},
      {"txt", "text/plain"},          {"log", "text/plain"},
      {"text", "text/plain"},         {"md", "text/markdown"},
      {"csv", "text/csv"},            {"css", "text/css"},
      {"xml", "application/xml"},     {"json", "application/json"},
      {"js", "application/javascript"}, {"mjs", "application/javascript"},
      {"sh", "application/x-sh"},     {"py", "text/x-python"},
      {"svg", "image/svg+xml"},       {"png", "image/png"},
      {"jpg", "image/jpeg"},          {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},           {"webp", "image/webp"},
      {"ico", "image/x-icon"},        {"pdf", "application/pdf"},
      {"zip", "application/zip"},     {"gz", "application/gzip"},
      {"tgz", "application/gzip"},    {"tar", "application/x-tar"},
      {"bz2", "application/x-bzip2"}, {"xz", "application/x-xz"},
      {"zst", "application/zstd"},    {"lz4", "application/x-lz4"},
      {"7z", "application/x-7z-compressed"}, {"wasm", "application/wasm"},
      {"woff", "font/woff"},          {"woff2", "font/woff2"},
      {"mp4", "video/mp4"},           {"webm", "video/webm"},
      {"wav", "audio/wav"},           {"mp3", "audio/mpeg"},
      {"yml", "text/yaml"},           {"yaml", "text/yaml"},
      {"deb", "application/vnd.debian.binary-package"},
      {"dmg", "application/x-apple-diskimage"},
      {"whl", "application/zip"},     {"apk", "application/vnd.android.package-archive"},
      {"exe", "application/octet-stream"}, {"bin", "application/octet-stream"},
  };
  size_t slash = name.rfind('/');
  std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
  size_t dot = base.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == base.size()) return "application/octet-stream";
  std::string ext(base.substr(dot + 1));
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

}  // namespace docker_worker
