// docker-worker: the verbs. Each lives in its own *_command.cc; this file only dispatches.
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include "docker_worker/encrypt_env_command.h"
#include "docker_worker/library_versions.h"
#include "docker_worker/verify_cot_command.h"
#include "docker_worker/local_queue_command.h"
#include "docker_worker/run_command.h"
#include "docker_worker/start_command.h"
#include "docker_worker/submit_command.h"
#include "docker_worker/validate_command.h"

namespace {

const char* kHelp =
    "docker-worker " DOCKER_WORKER_VERSION " - a Taskcluster worker for Docker\n"
    "\n"
    "usage: docker-worker VERB [ARGS]\n"
    "\n"
    "  validate FILE   check a payload or task definition against the payload schema\n"
    "  run FILE        run one task locally, without a queue\n"
    "  start           the daemon: claim and run tasks from a Taskcluster queue\n"
    "  submit FILE     create a task on a queue, follow its log, fetch its artifacts\n"
    "  local-queue     a single-process Taskcluster queue for development and tests\n"
    "  verify-cot DIR  check a downloaded chain-of-trust signature and artifact hashes\n"
    "  encrypt-env     make an encryptedEnv entry for a task\n"
    "\n"
    "  run:  docker-worker run FILE [--output DIR] [--task-id ID] [--scope S]... [--config F]\n"
    "  docker-worker --version | --help\n";

}  // namespace

int main(int argc, char** argv) {
  // A peer that resets a connection must not kill the worker (Poco sends without MSG_NOSIGNAL).
  signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kHelp;
    return args.empty() ? 64 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "docker-worker " << DOCKER_WORKER_VERSION << "\n"
              << docker_worker::LinkedLibraryVersions() << "\n";
    return 0;
  }
  std::string verb = args[0];
  args.erase(args.begin());
  if (verb == "validate") return docker_worker::ValidateCommand(args, std::cout, std::cerr);
  if (verb == "run") return docker_worker::RunCommand(args);
  if (verb == "start") return docker_worker::StartCommand(args);
  if (verb == "submit") return docker_worker::SubmitCommand(args);
  if (verb == "local-queue") return docker_worker::LocalQueueCommand(args);
  if (verb == "verify-cot") return docker_worker::VerifyCotCommand(args, std::cout, std::cerr);
  if (verb == "encrypt-env") return docker_worker::EncryptEnvCommand(args, std::cout, std::cerr);
  std::cerr << "docker-worker: unknown verb \"" << verb << "\"\n" << kHelp;
  return 64;
}
