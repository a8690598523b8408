#include "docker_worker/scopes.h"

namespace docker_worker {
namespace {

// Whether `held` satisfies `required` (one scope each).
bool Satisfies(std::string_view held, std::string_view required) {
  if (held == required) return true;
  if (held.empty() || held.back() != '*') return false;
  std::string_view prefix = held.substr(0, held.size() - 1);
  return required.substr(0, prefix.size()) == prefix;
}

}  // namespace

bool ScopeSatisfied(const std::vector<std::string>& held, std::string_view required) {
  for (const auto& h : held) {
    if (Satisfies(h, required)) return true;
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

std::vector<std::string> PoolAlternatives(const std::string& base, const std::string& pool) {
  return {base, base + ":" + pool};
}

bool MayAssumeRoles(const std::vector<std::string>& held) {
  constexpr std::string_view kAssume = "assume:";
  for (const auto& h : held) {
    // "assume:<role>" names a role; "a*", "assu*", "*" satisfy "assume:" and so cover them all.
    if (h.starts_with(kAssume) || Satisfies(h, kAssume)) return true;
  }
  return false;
}

ScopeChecker::ScopeChecker(std::vector<std::string> held, ScopeExpansion expand)
    : held_(std::move(held)), expand_(std::move(expand)) {}

Result<bool> ScopeChecker::Satisfied(const std::vector<std::string>& alternatives) {
  if (AnyScopeSatisfied(held_, alternatives)) return true;
  if (!expand_ || !MayAssumeRoles(held_)) return false;
  if (!expanded_) {
    auto expanded = expand_(held_);
    if (!expanded.ok()) return expanded.status();
    expanded_ = std::move(*expanded);
  }
  return AnyScopeSatisfied(*expanded_, alternatives);
}

}  // namespace docker_worker
