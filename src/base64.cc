#include "docker_worker/base64.h"

#include <sodium.h>

#include <cstring>

namespace docker_worker {
namespace {

int SodiumVariant(Base64 v) {
  switch (v) {
    case Base64::kStandard: return sodium_base64_VARIANT_ORIGINAL;
    case Base64::kStandardUnpadded: return sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
    case Base64::kUrlSafe: return sodium_base64_VARIANT_URLSAFE;
    case Base64::kUrlSafeUnpadded: return sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  }
  return sodium_base64_VARIANT_ORIGINAL;
}

}  // namespace

std::string Base64Encode(std::string_view bytes, Base64 variant) {
  const int v = SodiumVariant(variant);
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), v), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), v);
  out.resize(std::strlen(out.c_str()));  // ENCODED_LEN counts the terminating NUL
  return out;
}

std::string Base64Encode(const unsigned char* bytes, size_t size, Base64 variant) {
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(bytes), size), variant);
}

std::optional<std::string> Base64Decode(std::string_view text,
                                        std::initializer_list<Base64> variants,
                                        const char* ignore) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  for (Base64 variant : variants) {
    size_t len = 0;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                          text.size(), ignore, &len, nullptr, SodiumVariant(variant)) == 0) {
      out.resize(len);
      return out;
    }
  }
  sodium_memzero(out.data(), out.size());
  return std::nullopt;
}

}  // namespace docker_worker
