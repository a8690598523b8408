// Base64 over libsodium, for every encoder and decoder in the worker (Hawk, keys, tokens,
// slugids, encryptedEnv, the engine's path-stat header).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace docker_worker {

enum class Base64 { kStandard, kStandardUnpadded, kUrlSafe, kUrlSafeUnpadded };

std::string Base64Encode(std::string_view bytes, Base64 variant = Base64::kStandard);
std::string Base64Encode(const unsigned char* bytes, size_t size,
                         Base64 variant = Base64::kStandard);

// `text` decoded as the first of `variants` that accepts all of it (canonically), skipping any
// character in `ignore` (e.g. " \t\r\n"); nullopt when none does. The scratch buffer is wiped
// on failure, so secrets do not linger; callers wipe a successful result themselves.
std::optional<std::string> Base64Decode(std::string_view text,
                                        std::initializer_list<Base64> variants = {Base64::kStandard},
                                        const char* ignore = nullptr);

}  // namespace docker_worker
