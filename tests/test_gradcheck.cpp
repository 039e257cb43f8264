#include <doctest/doctest.h>

#include <set>

#include <tape/tape.hpp>
#include <tape_testing/gradcheck_ops.hpp>
#include <tape_testing/registry.hpp>

using namespace tape;
using namespace tape::testing;

TEST_CASE("gradcheck: every registered op") {
  REQUIRE(op_registry().size() >= 30);
  for (const OpInfo& op : op_registry()) {
    for (uint64_t seed : {0u, 1u}) {
      GradcheckResult r = gradcheck_op(op, seed);
      INFO(op.name, " seed ", seed, ": ", r.message);
      CHECK(r.ok);
    }
  }
}

TEST_CASE("gradcheck: catches a backward that is 5 % off and an all-zero gradient") {
  SelfTestResult s = gradcheck_self_test();
  CHECK(s.correct.ok);
  CHECK(!s.five_percent_off.ok);
  CHECK(s.five_percent_off.max_rel_err > 0.02f);
  CHECK(!s.all_zero.ok);
}

TEST_CASE("gradcheck: a numerically zero gradient is not a pass") {
  Tensor x = ones({3}).requires_grad_();
  // f(x) = x * 0 has zero gradient everywhere: the check cannot see anything
  GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return in[0] * 0.f; }, {x});
  CHECK(!r.ok);
  CHECK(r.message.find("zero everywhere") != std::string::npos);
}

TEST_CASE("gradcheck: registry entries are unique and complete") {
  std::set<std::string> names;
  for (const OpInfo& op : op_registry()) {
    CHECK(names.insert(op.name).second);
    CHECK(!op.formula.empty());
    CHECK(find_op(op.name) == &op);
  }
  CHECK(find_op("no_such_op") == nullptr);
}
