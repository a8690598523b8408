#pragma once
// The versions of the libraries linked into this binary. Several are linked statically
// (cmake/static_deps.cmake), so operators need the binary itself to tell them which curl and
// OpenSSL it carries when a security advisory comes out.
#include <string>

namespace docker_worker {

// One line, e.g. "libcurl 7.88.1 (OpenSSL/3.0.19), libarchive 3.6.2, SQLite 3.40.1, ...".
std::string LinkedLibraryVersions();

// Whether the linked libcurl can do what the worker needs of it: HTTP and HTTPS, unix-socket
// connections (the Engine API), gzip decoding. An empty string when it can; otherwise a message
// naming what is missing.
std::string CurlCapabilityProblems();

}  // namespace docker_worker
