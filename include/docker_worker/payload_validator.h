// Checks of a task payload and of a whole task definition, as `docker-worker validate` and the
// run pipeline need them.
//
// A payload is checked against the embedded payload schema (schemas/payload.schema.json, see
// schema_validator.h for the message style). A task definition is additionally checked for
// upstream's one semantic rule: no artifact may expire after the task itself. All functions are
// pure, thread-safe, and return every problem found (empty = valid), sorted by path.
#pragma once

#include <string_view>
#include <vector>

#include "docker_worker/clock.h"
#include "docker_worker/json.h"
#include "docker_worker/schema_validator.h"

namespace docker_worker {

// Problems of `payload` against the payload schema; paths are relative to the payload
// ("/maxRunTime").
std::vector<ValidationError> ValidatePayload(const json::Value& payload);

// Problems of a whole task definition: it must be an object with a `payload` object; the
// payload's schema errors come with the prefix "/payload"; an `expires` member, when present,
// must be an RFC 3339 date-time string, and then every artifact expiry must not be later than it
// (see CheckArtifactExpiry).
std::vector<ValidationError> ValidateTaskDefinition(const json::Value& task);

// True when `doc` is an object with a `payload` member that is an object, i.e. it reads as a
// task definition rather than a bare payload.
bool LooksLikeTaskDefinition(const json::Value& doc);

// The expiry rule alone: for every artifact of `payload.artifacts` that has a string `expires`,
// an error at "<path_prefix>/artifacts/<name>/expires" when that time is later than
// `task_expires` ("expires 2030-01-01T00:00:00.000Z is after the task's expires
// 2029-01-01T00:00:00.000Z"), or when it is not an RFC 3339 date-time. Artifacts whose entry or
// `expires` has another shape are left to the schema check.
std::vector<ValidationError> CheckArtifactExpiry(const json::Value& payload, TimePoint task_expires,
                                                 std::string_view path_prefix);

}  // namespace docker_worker
