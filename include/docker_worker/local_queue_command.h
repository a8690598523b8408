// `docker-worker local-queue --data DIR [--listen HOST:PORT] [--clients FILE]
//  [--claim-timeout SECONDS] [--root-url URL]`: run a LocalQueueServer until SIGINT or SIGTERM.
//
// --listen defaults to 127.0.0.1:0 (any free port); --root-url to http://<listen> with the bound
// port; --claim-timeout to 1200. Without --clients, DIR/clients.json is used, created first
// (mode 0600, one client with scopes ["*"]) when absent, and its path is printed on stderr.
// Stderr also gets "local-queue: listening on <rootUrl>"; stdout gets the request log, one
// JSON object a line. Exit codes: 0 after a clean stop on SIGINT/SIGTERM, 64 (EX_USAGE) for
// wrong arguments or an unreadable clients file, 1 when the server cannot start (e.g. the port
// is taken). `-h`/`--help` prints the usage on stdout and exits 0.
//
// SIGINT and SIGTERM are blocked in the calling thread before any server thread starts (they
// inherit the mask) and taken with sigwait() by the calling thread; the previous mask is
// restored before returning.
#pragma once

#include <string>
#include <vector>

namespace docker_worker {

// `args` are the words after `docker-worker local-queue`.
int LocalQueueCommand(const std::vector<std::string>& args);

}  // namespace docker_worker
