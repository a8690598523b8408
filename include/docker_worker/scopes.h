// Taskcluster scope satisfaction.
//
// A held scope satisfies a required one when equal, or when the held scope ends in "*" and the
// required one starts with the part before the "*". Sets of alternatives: satisfied when any
// one alternative is satisfied.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace docker_worker {

bool ScopeSatisfied(const std::vector<std::string>& held, std::string_view required);
bool AnyScopeSatisfied(const std::vector<std::string>& held,
                       const std::vector<std::string>& alternatives);

}  // namespace docker_worker
