// Content type of an artifact from its name's extension (case-insensitive); unknown extensions
// are "application/octet-stream", like upstream's mime lookup.
#pragma once

#include <string>
#include <string_view>

namespace docker_worker {

std::string ContentTypeFor(std::string_view name);

}  // namespace docker_worker
