// `docker-worker encrypt-env`: make one payload.encryptedEnv entry for a worker's public key.
//
//   docker-worker encrypt-env --public-key KEY --task-id ID --name N
//                             (--value-file FILE | --value V) [--valid-for 1h]
//
// The value is FILE's bytes exactly (FILE "-": standard input; at most 1 MiB; no NUL byte), or
// V; --value puts the secret on the command line, where `ps` shows it to every user.
// KEY is a file with the worker's armored (or binary) OpenPGP public key; every key in it becomes
// a recipient, trusted as given (always-trust). The plaintext is EnvMessagePlaintext with
// startTime now and endTime now + valid-for (default 1h). Flags also take the `--flag=value`
// form. Outcomes:
//   exit 0   the entry (base64 of a binary OpenPGP message) and a newline on `out`
//   exit 64  (EX_USAGE) one line on `err` naming the flag at fault, or the key file and why it
//            cannot be used
//   exit 1   encryption failed (GnuPG's reason on `err`)
// `-h`/`--help` prints the usage on `out` and exits 0. Nothing is thrown; the value never
// appears on `err`.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "docker_worker/status.h"

namespace docker_worker {

int EncryptEnvCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The JSON plaintext of an entry: {"messageVersion":1,"taskId":..,"startTime":..,"endTime":..,
// "name":..,"value":..}.
std::string EnvMessagePlaintext(const std::string& task_id, const std::string& name,
                                const std::string& value, int64_t start_ms, int64_t end_ms);

// base64 (standard alphabet, padded) of a binary OpenPGP message with `plaintext` encrypted to
// every key in `public_key` (armored or binary key data, not a path), with always-trust. Uses a
// throw-away GnuPG home. Errors carry GnuPG's reason, never the plaintext; kInvalidArgument when
// `public_key` holds no usable key.
Result<std::string> EncryptEnvEntry(const std::string& public_key, const std::string& plaintext);

// "30m", "1h", "2d", "3600s", "1h30m" -> milliseconds; nullopt when malformed, zero, or longer
// than 10 years.
std::optional<int64_t> ParseValidFor(std::string_view text);

}  // namespace docker_worker
