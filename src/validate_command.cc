#include "docker_worker/validate_command.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <optional>

#include "docker_worker/json.h"
#include "docker_worker/payload_validator.h"
#include "docker_worker/schema_validator.h"

namespace docker_worker {
namespace {

constexpr const char* kUsage =
    "usage: docker-worker validate FILE   (FILE: a task payload or task definition as JSON; - "
    "reads standard input)";

// The whole file, or nullopt with `error` set to the system's reason.
std::optional<std::string> ReadFile(const std::string& path, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::string data;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int saved = errno;
  std::fclose(f);
  if (failed) {
    error = std::strerror(saved);
    return std::nullopt;
  }
  return data;
}

}  // namespace

int ValidateCommand(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                    std::ostream& err) {
  std::vector<std::string> files;
  for (const std::string& arg : args) {
    if (arg == "-h" || arg == "--help") {
      out << kUsage << "\n";
      return 0;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      err << "docker-worker validate: unknown option " << arg << "; " << kUsage << "\n";
      return kExitUsage;
    }
    files.push_back(arg);
  }
  if (files.size() != 1) {
    err << kUsage << "\n";
    return kExitUsage;
  }

  const std::string& file = files[0];
  const std::string name = file == "-" ? std::string("standard input") : file;
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) {
      err << "docker-worker validate: cannot read standard input\n";
      return kExitUsage;
    }
  } else {
    std::string reason;
    auto data = ReadFile(file, reason);
    if (!data) {
      err << "docker-worker validate: cannot read " << name << ": " << reason << "\n";
      return kExitUsage;
    }
    text = std::move(*data);
  }

  auto doc = json::Parse(text);
  if (!doc.ok()) {
    err << "docker-worker validate: " << name << ": " << doc.status().message() << "\n";
    return kExitUsage;
  }

  std::vector<ValidationError> errors =
      LooksLikeTaskDefinition(*doc) ? ValidateTaskDefinition(*doc) : ValidatePayload(*doc);
  if (errors.empty()) {
    out << "valid\n";
    return 0;
  }
  for (const ValidationError& e : errors) out << FormatValidationError(e) << "\n";
  return 1;
}

int ValidateCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return ValidateCommand(args, std::cin, out, err);
}

}  // namespace docker_worker
