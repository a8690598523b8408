// Taskcluster slugids: 22-character URL-safe base64 of a random (v4) UUID, "nice" form (first
// character a letter, so it never starts with "-").
#pragma once

#include <string>
#include <string_view>

namespace docker_worker {

std::string NewSlugId();
// A random (v4) UUID in its usual text form, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".
std::string NewUuidV4();
// True when `id` has the form of a slugid (22 characters of [A-Za-z0-9_-]).
bool LooksLikeSlugId(std::string_view id);

}  // namespace docker_worker
