// `docker-worker validate FILE`: check a payload or a whole task definition without running it.
//
// FILE is read as JSON ("-" reads standard input). A document that LooksLikeTaskDefinition is
// checked with ValidateTaskDefinition, anything else with ValidatePayload. Outcomes:
//   exit 0   "valid" on `out`
//   exit 1   every problem on `out`, one a line: "<JSON pointer or />: <message>"
//   exit 64  (EX_USAGE) one line on `err`: a usage line for wrong arguments, or the file name
//            and the reason when it cannot be read or is not JSON (with the byte offset)
// `-h`/`--help` prints the usage line on `out` and exits 0. Nothing is thrown.
#pragma once

#include "docker_worker/exit_codes.h"

#include <iosfwd>
#include <string>
#include <vector>

namespace docker_worker {

// Exit status for wrong usage and unusable input (sysexits EX_USAGE).

// `args` are the words after `docker-worker validate`; "-" reads std::cin.
int ValidateCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The same, reading "-" from `in` (tests).
int ValidateCommand(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                    std::ostream& err);

}  // namespace docker_worker
