// Scope satisfaction on a table, role expansion through ScopeChecker.
#include "docker_worker/scopes.h"

#include <catch2/catch.hpp>

namespace docker_worker {
namespace {

struct Case {
  std::vector<std::string> held;
  std::vector<std::string> alternatives;
  bool satisfied;
};

TEST_CASE("scopes: satisfaction table", "[unit]") {
  const std::vector<Case> cases = {
      // exact
      {{"a"}, {"a"}, true},
      {{"a"}, {"b"}, false},
      {{"abc"}, {"ab"}, false},
      {{"ab"}, {"abc"}, false},
      {{"A"}, {"a"}, false},
      {{}, {"a"}, false},
      {{"a"}, {}, false},
      {{""}, {""}, true},
      {{"docker-worker:cache:foo"}, {"docker-worker:cache:foo"}, true},
      {{"docker-worker:cache:foo"}, {"docker-worker:cache:foobar"}, false},
      {{"docker-worker:cache:foo "}, {"docker-worker:cache:foo"}, false},
      // trailing *
      {{"*"}, {"anything:at:all"}, true},
      {{"*"}, {""}, true},
      {{"a*"}, {"a"}, true},
      {{"a*"}, {"abc"}, true},
      {{"a*"}, {"b"}, false},
      {{"docker-worker:cache:*"}, {"docker-worker:cache:foo"}, true},
      {{"docker-worker:cache:*"}, {"docker-worker:cache:"}, true},
      {{"docker-worker:cache:*"}, {"docker-worker:cache"}, false},
      {{"docker-worker:cache:f*"}, {"docker-worker:cache:foo"}, true},
      {{"docker-worker:cache:f*"}, {"docker-worker:cache:bar"}, false},
      {{"docker-worker:*"}, {"docker-worker:capability:privileged"}, true},
      {{"docker-worker:capability:device:*"}, {"docker-worker:capability:privileged"}, false},
      // * is special only at the end of a held scope
      {{"a*b"}, {"axb"}, false},
      {{"a*b"}, {"a*b"}, true},
      {{"**"}, {"*x"}, true},
      {{"**"}, {"x"}, false},
      {{"a"}, {"a*"}, false},
      {{"a*"}, {"a*"}, true},
      {{"*"}, {"*"}, true},
      // several held scopes
      {{"x", "y", "docker-worker:cache:foo"}, {"docker-worker:cache:foo"}, true},
      {{"x", "y"}, {"docker-worker:cache:foo"}, false},
      {{"x", "docker-worker:cache:f*"}, {"docker-worker:cache:foo"}, true},
      // alternatives: any one suffices
      {{"b"}, {"a", "b"}, true},
      {{"c"}, {"a", "b"}, false},
      {{"a", "b"}, {"a", "b"}, true},
      // pool-suffixed forms
      {{"docker-worker:cache:foo:prov/wt"},
       PoolAlternatives("docker-worker:cache:foo", "prov/wt"), true},
      {{"docker-worker:cache:foo:prov/other"},
       PoolAlternatives("docker-worker:cache:foo", "prov/wt"), false},
      {{"docker-worker:cache:foo:prov/*"},
       PoolAlternatives("docker-worker:cache:foo", "prov/wt"), true},
      {{"docker-worker:cache:foo"}, PoolAlternatives("docker-worker:cache:foo", "prov/wt"), true},
      {{"docker-worker:capability:privileged:prov/wt"},
       PoolAlternatives("docker-worker:capability:privileged", "prov/wt"), true},
      {{"docker-worker:capability:privileged:prov/wt2"},
       PoolAlternatives("docker-worker:capability:privileged", "prov/wt"), false},
      {{"docker-worker:capability:device:kvm:prov/wt"},
       PoolAlternatives("docker-worker:capability:device:kvm", "prov/wt"), true},
      {{"docker-worker:capability:device:kvm:prov/wt"},
       PoolAlternatives("docker-worker:capability:device:loopbackVideo", "prov/wt"), false},
      // a scope for the pool form does not grant the bare form
      {{"docker-worker:feature:allowPtrace:prov/wt"}, {"docker-worker:feature:allowPtrace"}, false},
  };
  REQUIRE(cases.size() >= 40);
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    INFO("case " << i << ": held " << Catch::Detail::stringify(c.held) << ", required any of "
                 << Catch::Detail::stringify(c.alternatives));
    CHECK(AnyScopeSatisfied(c.held, c.alternatives) == c.satisfied);
    if (c.alternatives.size() == 1) CHECK(ScopeSatisfied(c.held, c.alternatives[0]) == c.satisfied);
  }
}

TEST_CASE("scopes: which held scopes may assume roles", "[unit]") {
  CHECK(MayAssumeRoles({"assume:project:foo"}));
  CHECK(MayAssumeRoles({"x", "assume:*"}));
  CHECK(MayAssumeRoles({"*"}));
  CHECK(MayAssumeRoles({"as*"}));
  CHECK(MayAssumeRoles({"assume:"}));
  CHECK_FALSE(MayAssumeRoles({"assume"}));
  CHECK_FALSE(MayAssumeRoles({"b*"}));
  CHECK_FALSE(MayAssumeRoles({"docker-worker:cache:*", "queue:*"}));
  CHECK_FALSE(MayAssumeRoles({}));
}

TEST_CASE("scopes: the checker expands roles once, and only when a check needs it", "[unit]") {
  int calls = 0;
  ScopeExpansion expand = [&](const std::vector<std::string>& held) {
    ++calls;
    std::vector<std::string> out = held;
    for (const auto& h : held) {
      if (h == "assume:project:ci") out.push_back("docker-worker:cache:ci-*");
    }
    return Result<std::vector<std::string>>(out);
  };
  ScopeChecker checker({"assume:project:ci", "docker-worker:cache:plain"}, expand);
  CHECK(*checker.Satisfied({"docker-worker:cache:plain"}));
  CHECK(calls == 0);  // satisfied as written
  CHECK(*checker.Satisfied({"docker-worker:cache:ci-build"}));
  CHECK(calls == 1);
  CHECK_FALSE(*checker.Satisfied({"docker-worker:cache:other"}));
  CHECK(*checker.Satisfied({"docker-worker:cache:ci-test"}));
  CHECK(calls == 1);  // expanded once
}

TEST_CASE("scopes: no expansion without an assume: scope or an expander", "[unit]") {
  int calls = 0;
  ScopeExpansion expand = [&](const std::vector<std::string>&) {
    ++calls;
    return Result<std::vector<std::string>>(std::vector<std::string>{"*"});
  };
  ScopeChecker plain({"docker-worker:cache:a"}, expand);
  CHECK_FALSE(*plain.Satisfied({"docker-worker:cache:b"}));
  CHECK(calls == 0);
  ScopeChecker none({"assume:project:ci"}, nullptr);
  CHECK_FALSE(*none.Satisfied({"docker-worker:cache:b"}));
}

TEST_CASE("scopes: an expansion error is returned, not treated as refusal", "[unit]") {
  ScopeExpansion expand = [](const std::vector<std::string>&) {
    return Result<std::vector<std::string>>(Status(Code::kUnavailable, "auth is down"));
  };
  ScopeChecker checker({"assume:project:ci"}, expand);
  auto r = checker.Satisfied({"docker-worker:cache:b"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "auth is down");
}

}  // namespace
}  // namespace docker_worker
