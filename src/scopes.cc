#include "docker_worker/scopes.h"

namespace docker_worker {

bool ScopeSatisfied(const std::vector<std::string>& held, std::string_view required) {
  for (const auto& h : held) {
    if (h == required) return true;
    if (!h.empty() && h.back() == '*' &&
        required.substr(0, h.size() - 1) == std::string_view(h).substr(0, h.size() - 1)) {
      return true;
    }
  }
  return false;
}

bool AnyScopeSatisfied(const std::vector<std::string>& held,
                       const std::vector<std::string>& alternatives) {
  for (const auto& a : alternatives) {
    if (ScopeSatisfied(held, a)) return true;
  }
  return false;
}

}  // namespace docker_worker
