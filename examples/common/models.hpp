#pragma once
// The report's networks, built from a self-describing spec string so a
// checkpoint can say which network it holds ("mlp:784-50-10:relu:dropout=0",
// "lenet5").
#include <memory>
#include <string>
#include <vector>

#include <tape/tape.hpp>

namespace tape::examples {

struct ModelSpec {
  std::string kind = "mlp";            ///< "mlp" or "lenet5"
  std::vector<int64_t> hidden{50};     ///< mlp hidden sizes
  std::string activation = "relu";     ///< relu|tanh|leaky_relu|elu|selu|sigmoid (mlp)
  float dropout = 0.f;                 ///< after each hidden activation (mlp)

  std::string to_string() const;
  static ModelSpec parse(const std::string& s);  ///< throws tape::Error naming the bad part
  static ModelSpec lenet5();
};

/// The activation module called `name`; throws naming the unknown name.
std::shared_ptr<nn::Module> make_activation(const std::string& name);
/// Builds the network (inputs [N,1,28,28]; outputs 10 logits).
std::shared_ptr<nn::Sequential> build_model(const ModelSpec& spec);
/// "370,115,50" → {370, 115, 50}; throws on empty, zero or non-numeric parts.
std::vector<int64_t> parse_sizes(const std::string& s);

}  // namespace tape::examples
