#include "docker_worker/encrypt_env_command.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <ostream>

#include "docker_worker/read_file.h"
#include "docker_worker/base64.h"
#include "docker_worker/clock.h"
#include "docker_worker/exit_codes.h"
#include "docker_worker/gpg_home.h"
#include "docker_worker/slugid.h"

namespace docker_worker {
namespace {

constexpr const char* kUsage =
    "usage: docker-worker encrypt-env --public-key KEY --task-id ID --name N "
    "(--value-file FILE | --value V) [--valid-for 1h]\n"
    "  KEY: the worker's armored OpenPGP public key file. FILE: the value's bytes as they are "
    "(- reads standard input); prefer it to --value, which other users can see in the process "
    "list. valid-for: e.g. 30m, 1h, 2d, 3600s.";

constexpr size_t kMaxValueBytes = 1 << 20;  // environment values beyond this are unusual
constexpr int64_t kMaxValidForMs = int64_t{10} * 365 * 24 * 3600 * 1000;

int Usage(std::ostream& err, const std::string& problem) {
  err << "docker-worker encrypt-env: " << problem << "\n" << kUsage << "\n";
  return kExitUsage;
}

}  // namespace

std::optional<int64_t> ParseValidFor(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > kMaxValidForMs) return std::nullopt;
      n = n * 10 + (text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || i == text.size()) return std::nullopt;
    int64_t unit_ms = 0;
    switch (text[i]) {
      case 's':
        unit_ms = 1000;
        break;
      case 'm':
        unit_ms = 60 * 1000;
        break;
      case 'h':
        unit_ms = 3600 * 1000;
        break;
      case 'd':
        unit_ms = 24 * 3600 * 1000;
        break;
      default:
        return std::nullopt;
    }
    ++i;
    if (n > kMaxValidForMs / unit_ms) return std::nullopt;
    total += n * unit_ms;
    if (total > kMaxValidForMs) return std::nullopt;
  }
  if (total <= 0) return std::nullopt;
  return total;
}

std::string EnvMessagePlaintext(const std::string& task_id, const std::string& name,
                                const std::string& value, int64_t start_ms, int64_t end_ms) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("messageVersion");
  w.Int(1);
  w.Key("taskId");
  w.String(task_id.data(), static_cast<rapidjson::SizeType>(task_id.size()));
  w.Key("startTime");
  w.Int64(start_ms);
  w.Key("endTime");
  w.Int64(end_ms);
  w.Key("name");
  w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  w.Key("value");
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  w.EndObject();
  std::string out(buf.GetString(), buf.GetSize());
  sodium_memzero(const_cast<char*>(buf.GetString()), buf.GetSize());
  return out;
}

Result<std::string> EncryptEnvEntry(const std::string& public_key, const std::string& plaintext) {
  auto home = GpgHome::Create();
  if (!home.ok()) return home.status();
  auto imported = (*home)->Import(public_key);
  if (!imported.ok()) return Status(Code::kInvalidArgument, imported.status().message());
  auto message = (*home)->Encrypt(plaintext, imported->fingerprints);
  if (!message.ok()) return message.status();
  return Base64Encode(*message);
}

int EncryptEnvCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  static const char* const kFlags[] = {"--public-key", "--task-id", "--name", "--value",
                                       "--value-file", "--valid-for"};
  std::map<std::string, std::string> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      out << kUsage << "\n";
      return 0;
    }
    std::string flag = arg;
    std::optional<std::string> value;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    bool known = false;
    for (const char* f : kFlags) known = known || flag == f;
    if (!known) {
      return Usage(
          err, arg.rfind("-", 0) == 0 ? "unknown option " + flag : "unexpected argument " + arg);
    }
    if (!value) {
      if (i + 1 >= args.size()) return Usage(err, "missing value for " + flag);
      value = args[++i];
    }
    if (flags.count(flag)) return Usage(err, flag + " given more than once");
    flags[flag] = *value;
  }
  for (const char* f : {"--public-key", "--task-id", "--name"}) {
    if (!flags.count(f)) return Usage(err, std::string(f) + " is required");
  }
  if (flags.count("--value") == flags.count("--value-file")) {
    return Usage(err, "give exactly one of --value-file and --value");
  }
  const std::string& key_path = flags["--public-key"];
  const std::string& task_id = flags["--task-id"];
  const std::string& name = flags["--name"];
  if (!LooksLikeSlugId(task_id)) return Usage(err, "--task-id must be a slugid (22 characters)");
  if (name.empty() || name.find('=') != std::string::npos) {
    return Usage(err, "--name must be a non-empty environment variable name without '='");
  }
  if (name == "TASK_ID" || name == "RUN_ID") {
    return Usage(err, "--name must not be TASK_ID or RUN_ID (set by the worker)");
  }
  int64_t valid_for_ms = 3600 * 1000;
  if (flags.count("--valid-for")) {
    auto parsed = ParseValidFor(flags["--valid-for"]);
    if (!parsed) {
      return Usage(err, "--valid-for must be a positive duration such as 30m, 1h, 2d or 3600s");
    }
    valid_for_ms = *parsed;
  }


  std::string value;
  if (flags.count("--value-file")) {
    const std::string& file = flags["--value-file"];
    auto read = ReadWholeFile(file == "-" ? "/dev/stdin" : file,
                              {.max_bytes = kMaxValueBytes, .secret = true});
    if (!read.ok()) return Usage(err, "--value-file: " + read.status().message());
    value = std::move(*read);
  } else {
    value = flags["--value"];
  }
  if (value.find('\0') != std::string::npos) {
    sodium_memzero(value.data(), value.size());
    return Usage(err, "the value must not contain a NUL byte");
  }

  auto key = ReadWholeFile(key_path);
  if (!key.ok()) {
    sodium_memzero(value.data(), value.size());
    return Usage(err, "--public-key: " + key.status().message());
  }

  const int64_t now_ms = ToEpochMillis(SystemClock().Now());
  std::string plaintext =
      EnvMessagePlaintext(task_id, name, value, now_ms, now_ms + valid_for_ms);
  sodium_memzero(value.data(), value.size());
  auto entry = EncryptEnvEntry(*key, plaintext);
  sodium_memzero(plaintext.data(), plaintext.size());
  if (!entry.ok()) {
    if (entry.status().code() == Code::kInvalidArgument) {  // the key file holds no usable key
      return Usage(err, "--public-key: " + key_path + ": " + entry.status().message());
    }
    err << "docker-worker encrypt-env: " << entry.status().message() << "\n";
    return 1;
  }
  out << *entry << "\n";
  return 0;
}

}  // namespace docker_worker
