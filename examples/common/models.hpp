#pragma once
// The report's networks, built from a self-describing spec string so a
// checkpoint can say which network it holds ("mlp:784-50-10:relu:dropout=0",
// "lenet5").
#include <memory>
#include <string>
#include <vector>

#include <tape/tape.hpp>
#include <tape/nn/norm.hpp>

#include "tape_vision/digits.hpp"

namespace tape::examples {

// Note: limits. A spec can come from a checkpoint file, so it is validated
// before anything is built: at most kMaxHiddenLayers hidden layers of
// 1..kMaxLayerSize units and kMaxModelParameters parameters in all (4 GB of
// float32 weights), a known activation and dropout in [0, 1).
inline constexpr int64_t kMaxHiddenLayers = 100;
inline constexpr int64_t kMaxLayerSize = 1'000'000;
inline constexpr int64_t kMaxModelParameters = 1'000'000'000;
inline constexpr size_t kMaxSpecLength = 4096;

struct ModelSpec {
  std::string kind = "mlp";            ///< "mlp", "lenet5", "lenet5-wide" or "resnet"
  std::vector<int64_t> hidden{50};     ///< mlp hidden sizes; resnet stage widths
  std::string activation = "relu";     ///< relu|tanh|leaky_relu|elu|selu|sigmoid (mlp)
  float dropout = 0.f;                 ///< after each hidden activation (mlp)

  std::string to_string() const;
  static ModelSpec parse(const std::string& s);  ///< validated; throws tape::Error naming the bad part
  /// Throws a one-line tape::Error if the spec breaks a limit above (build_model calls it).
  void validate() const;
  /// Weights and biases the network will have (valid specs only; see validate()).
  int64_t parameter_count() const;
  static ModelSpec lenet5();
  /// A wider LeNet (16 and 32 filters, 128 ReLU units; 80 202 parameters) for page digits.
  static ModelSpec lenet5_wide();
  /// "resnet:W1-W2-...": a residual CNN (ResidualBlock) with one basic block per
  /// stage of width Wk, stride 2 from the second stage on (mnist_resnet).
  static ModelSpec resnet(std::vector<int64_t> widths = {32, 64, 128});
};

/// A ResNet basic block (He et al. 2016): relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
/// 3×3 convolutions without bias, shortcut = 1×1 convolution + BatchNorm when the
/// shape changes (stride or width), else the identity. PyTorch's torchvision names:
/// conv1, bn1, conv2, bn2, downsample.0, downsample.1.
class ResidualBlock : public nn::Module {
 public:
  ResidualBlock(int64_t in, int64_t out, int64_t stride);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ResidualBlock"; }

  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::Sequential> downsample;  ///< null when the shortcut is the identity
};

/// The activation module called `name`; throws naming the unknown name.
std::shared_ptr<nn::Module> make_activation(const std::string& name);
/// Builds the network (inputs [N,1,28,28]; outputs 10 logits), initialised as its
/// recipe says: the report's networks He-normal with zero biases, as the report
/// did (and bit-identical to tape before its layers took PyTorch's defaults);
/// resnet as torchvision's ResNet.
std::shared_ptr<nn::Sequential> build_model(const ModelSpec& spec);
/// The layers of `spec` with the library's default (PyTorch) initialisation.
std::shared_ptr<nn::Sequential> build_layers(const ModelSpec& spec);
/// Checkpoint meta key (CheckpointMeta::strings) saying the network was trained on
/// moment-deskewed digits (tape::vision::deskew_digit); value "1". Readers must
/// deskew too: train and test take the same preprocessing.
inline constexpr const char* kDeskewMetaKey = "input.deskew";

/// A trained network read back from a checkpoint (the checkpoint says which
/// network it holds), in eval mode, with the preprocessing it was trained with.
struct Classifier {
  std::shared_ptr<nn::Sequential> net;
  bool deskew = false;
  /// More networks of an ensemble (load_classifier("a.ckpt,b.ckpt")); probs() averages.
  std::vector<std::shared_ptr<nn::Sequential>> more;
  /// Class probabilities [K, 10] of a batch (softmax, averaged over the ensemble; no graph).
  Tensor probs(const Tensor& batch) const;
};
/// One checkpoint, or several separated by commas: an ensemble whose probabilities
/// are averaged (all must agree on input.deskew).
Classifier load_classifier(const std::string& path);
/// The classifier as find_digits_verified() calls it: label and max-softmax
/// probability per crop (no graph; one forward pass per call).
vision::ClassifyFn classify_fn(const Classifier& model);

/// "370,115,50" → {370, 115, 50}; throws on empty, zero or non-numeric parts.
std::vector<int64_t> parse_sizes(const std::string& s);

}  // namespace tape::examples
