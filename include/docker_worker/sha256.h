// Streaming SHA-256 (libsodium). Update() any number of times, then HexDigest() once.
#pragma once

#include <sodium.h>

#include <string>
#include <string_view>

namespace docker_worker {

class Sha256 {
 public:
  Sha256() { crypto_hash_sha256_init(&state_); }
  void Update(std::string_view bytes) {
    crypto_hash_sha256_update(&state_, reinterpret_cast<const unsigned char*>(bytes.data()),
                              bytes.size());
  }
  // Lower-case hex of the digest; the object must not be updated afterwards.
  std::string HexDigest();

 private:
  crypto_hash_sha256_state state_;
};

// Lower-case hex of `bytes`.
std::string ToHex(std::string_view bytes);

}  // namespace docker_worker
