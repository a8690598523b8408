#include "docker_worker/slugid.h"

#include <sodium.h>

#include <array>
#include <cctype>

#include "docker_worker/base64.h"

namespace docker_worker {
namespace {

// 16 random bytes with the version-4 and RFC 4122 variant bits set.
std::array<unsigned char, 16> RandomUuidBytes() {
  std::array<unsigned char, 16> uuid;
  randombytes_buf(uuid.data(), uuid.size());
  uuid[6] = (uuid[6] & 0x0f) | 0x40;  // version 4
  uuid[8] = (uuid[8] & 0x3f) | 0x80;  // RFC 4122 variant
  return uuid;
}

}  // namespace

std::string NewSlugId() {
  auto uuid = RandomUuidBytes();
  uuid[0] &= 0x7f;  // "nice": first character A-Z or a-f
  return Base64Encode(uuid.data(), uuid.size(), Base64::kUrlSafeUnpadded);
}

std::string NewUuidV4() {
  const auto b = RandomUuidBytes();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 0x0f];
  }
  return out;
}

bool LooksLikeSlugId(std::string_view id) {
  if (id.size() != 22) return false;
  for (unsigned char c : id) {
    if (!std::isalnum(c) && c != '-' && c != '_') return false;
  }
  return true;
}

}  // namespace docker_worker
