// JSON schemas compiled into the binary from schemas/*.json (see cmake/embed_schemas.cmake).
#pragma once

#include <string_view>

namespace docker_worker {

// The text of schemas/<name>.json, or an empty view when there is no such schema.
std::string_view EmbeddedSchema(std::string_view name);

}  // namespace docker_worker
