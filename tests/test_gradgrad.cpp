// Higher-order gradients: gradgradcheck over the op registry (Float64).
#include <doctest/doctest.h>

#include <cstdlib>
#include <sstream>

#include <tape/tape.hpp>

#include "tape_testing/gradcheck_ops.hpp"

using namespace tape;
using namespace tape::testing;

namespace {
/// TAPE_GRADGRAD_ONLY=exp,log (a debugging aid): check only these entries.
bool selected(const std::string& name) {
  const char* only = std::getenv("TAPE_GRADGRAD_ONLY");
  if (!only || !*only) return true;
  std::stringstream ss(only);
  for (std::string item; std::getline(ss, item, ',');)
    if (item == name) return true;
  return false;
}
}  // namespace

TEST_CASE("gradgradcheck: every differentiable registered op in Float64") {
  int checked = 0;
  std::vector<std::string> failing;
  for (const OpInfo& op : op_registry()) {
    if (!selected(op.name)) continue;
    for (const SampleCheck& c : gradgradcheck_op(op, 0)) {
      INFO(op.name, " sample '", c.sample, "' ", c.inputs, ": ", c.result.message);
      CHECK(c.result.ok);
      if (!c.result.ok) failing.push_back(op.name + "/" + c.sample + ": " + c.result.message.substr(0, 160));
      ++checked;
    }
  }
  for (const auto& f : failing) MESSAGE(f);
  if (!std::getenv("TAPE_GRADGRAD_ONLY")) CHECK(checked >= 150);
}
