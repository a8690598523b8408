// Timestamps as Taskcluster writes them.
//
// FormatIso: "2026-01-01T00:00:00.000Z" (UTC, milliseconds). FormatLogTime: the task-log form
// "2026-01-01 00:00:00.000Z". ParseIso accepts RFC 3339 date-times ("Z" or "+hh:mm" offsets,
// optional fractional seconds) and rejects anything else with a message quoting the input.
#pragma once

#include <string>
#include <string_view>

#include "docker_worker/clock.h"
#include "docker_worker/status.h"

namespace docker_worker {

std::string FormatIso(TimePoint t);
std::string FormatLogTime(TimePoint t);
Result<TimePoint> ParseIso(std::string_view text);

}  // namespace docker_worker
