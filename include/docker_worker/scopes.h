// Taskcluster scope satisfaction, as taskcluster-lib-scopes defines it.
//
// A held scope satisfies a required one when equal, or when the held scope ends in "*" and the
// required one starts with the part before the "*" (so "*" satisfies everything, and "a*"
// satisfies "a" itself). Nothing else is special: a "*" inside a scope or in the required
// scope is a plain character.
//
// Requirements are written as alternatives: `{"a", "b"}` is satisfied when either is. The
// worker's checks all accept the pool-suffixed form too (`PoolAlternatives`).
//
// Roles: a held scope "assume:<role>" stands for the role's scopes, which only the auth service
// knows. `MayAssumeRoles` says whether expansion could add anything; `ScopeChecker` asks for the
// expansion (once, lazily) only when a check fails on the scopes as written and they may
// assume roles.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "docker_worker/status.h"

namespace docker_worker {

bool ScopeSatisfied(const std::vector<std::string>& held, std::string_view required);
bool AnyScopeSatisfied(const std::vector<std::string>& held,
                       const std::vector<std::string>& alternatives);

// `{base, base + ":" + pool}`: upstream's scopes and the monorepo's pool-suffixed variants,
// e.g. docker-worker:cache:foo and docker-worker:cache:foo:proj/type.
std::vector<std::string> PoolAlternatives(const std::string& base, const std::string& pool);

// Whether any held scope satisfies some "assume:..." scope (so expansion may add scopes).
bool MayAssumeRoles(const std::vector<std::string>& held);

// Expands roles: the scopes and every scope they imply (auth.expandScopes).
using ScopeExpansion =
    std::function<Result<std::vector<std::string>>(const std::vector<std::string>&)>;

// Checks requirements against one task's scopes, expanding roles at most once and only when
// needed. An expansion error is returned as is (the caller decides the resolution). Not
// thread-safe; one per run.
class ScopeChecker {
 public:
  // `expand` may be empty: no roles are known (then only the written scopes count).
  ScopeChecker(std::vector<std::string> held, ScopeExpansion expand);

  // True when any alternative is satisfied by the written or, if needed, expanded scopes.
  Result<bool> Satisfied(const std::vector<std::string>& alternatives);

 private:
  std::vector<std::string> held_;
  ScopeExpansion expand_;
  std::optional<std::vector<std::string>> expanded_;
};

}  // namespace docker_worker
