#include "docker_worker/validate_command.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <optional>

#include "docker_worker/read_file.h"
#include "docker_worker/json.h"
#include "docker_worker/payload_validator.h"
#include "docker_worker/schema_validator.h"

namespace docker_worker {
namespace {

constexpr const char* kUsage =
    "usage: docker-worker validate FILE   (FILE: a task payload or task definition as JSON; - "
    "reads standard input)";

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
    auto data = ReadWholeFile(file);
    if (!data.ok()) {
      err << "docker-worker validate: " << data.status().message() << "\n";
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
