#include "docker_worker/slugid.h"

#include <sodium.h>

#include <cctype>

namespace docker_worker {

std::string NewSlugId() {
  unsigned char uuid[16];
  randombytes_buf(uuid, sizeof uuid);
  uuid[6] = (uuid[6] & 0x0f) | 0x40;  // version 4
  uuid[8] = (uuid[8] & 0x3f) | 0x80;  // RFC 4122 variant
  uuid[0] &= 0x7f;                    // "nice": first character A-Z or a-f
  char out[sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(out, sizeof out, uuid, sizeof uuid, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
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
