// The auth service calls the worker makes: role expansion for scope checks.
#pragma once

#include <string>
#include <vector>

#include "docker_worker/scopes.h"
#include "docker_worker/taskcluster_client.h"

namespace docker_worker {

// auth.expandScopes (POST /api/auth/v1/scopes/expand) with the client's credentials: the given
// scopes plus every scope their roles imply. When those credentials may not call it (403, e.g. a
// run whose task lacks auth:expand-scopes), the scopes come back as given: roles cannot widen a
// check, which then fails with its own "Insufficient scopes" message. Other errors are returned.
Result<std::vector<std::string>> ExpandScopes(TaskclusterClient& client,
                                              const std::vector<std::string>& scopes);

// ExpandScopes bound to `client` (which must outlive it); empty when `client` is null.
ScopeExpansion ScopeExpansionFor(TaskclusterClient* client);

}  // namespace docker_worker
