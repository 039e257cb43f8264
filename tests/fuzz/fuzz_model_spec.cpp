// libFuzzer harness: the model-spec parser (examples/common/models.cpp), then
// the model it describes. A spec that parses must survive the round trip a
// checkpoint makes (to_string, then parse again, giving the same network), and
// building it (up to 2 million parameters) may only throw tape::Error.
#include <tape/tape.hpp>

#include <cstdio>
#include <cstdlib>

#include "models.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tape;
  const std::string s(reinterpret_cast<const char*>(data), size);
  examples::ModelSpec spec;
  try {
    spec = examples::ModelSpec::parse(s);
  } catch (const Error&) {
    return 0;
  }
  const std::string stored = spec.to_string();
  try {
    const examples::ModelSpec again = examples::ModelSpec::parse(stored);
    if (again.kind != spec.kind || again.hidden != spec.hidden || again.activation != spec.activation ||
        again.to_string() != stored) {
      std::fprintf(stderr, "spec '%s' reads back from '%s' as '%s'\n", s.c_str(), stored.c_str(),
                   again.to_string().c_str());
      std::abort();
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "spec '%s' parses, but its to_string() '%s' does not: %s\n", s.c_str(), stored.c_str(),
                 e.what());
    std::abort();
  }
  // Build what passed validation, up to kMaxBuilt parameters: larger models are
  // legal (the limit is kMaxModelParameters) but would cost the fuzzer seconds
  // each and only repeat the same loops.
  constexpr double kMaxBuilt = 2e6;
  if (double(spec.parameter_count()) > kMaxBuilt) return 0;  // every kind: mlp, lenet5(-wide), resnet
  try {
    manual_seed(0);
    (void)examples::build_model(spec);
  } catch (const Error&) {
  }
  return 0;
}
