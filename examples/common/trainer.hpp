#pragma once
// The MNIST training loop shared by mnist_mlp and mnist_lenet5: minibatches,
// a progress bar, one line per epoch, CSV and a loss-curve PNG, checkpoints.
#include <set>
#include <string>
#include <vector>

#include "cli.hpp"
#include "models.hpp"

namespace tape::examples {

struct TrainConfig {
  std::string data_dir = "data/mnist";
  uint64_t seed = 0;
  int threads = 0;
  int epochs = 10;
  int64_t batch_size = 1000;
  double lr = 0.01;
  std::string optimizer = "adam";  ///< adam | adamw | sgd
  double weight_decay = 0.0;
  double momentum = 0.9;           ///< sgd only
  std::string schedule = "none";   ///< none | step | cosine
  int64_t limit_train = 0;         ///< use only the first N training images (0 = all)
  bool augment = false;            ///< random affine and stroke weight per training image (augment_batch)
  bool deskew = false;             ///< deskew every image by its moments (tape::vision::deskew_digit)
  /// Add this many page crops to the training set (page_crops()): MNIST *train* digits
  /// written on handwriting sheets, found by find_digits and cropped like a page's digits.
  int64_t page_crops = 0;
  std::string csv, plot, save, resume;
  bool quiet = false;
  /// f32 | bf16: bf16 trains and evaluates with matmul/linear/conv under an
  /// AutocastGuard (docs/precision.md). Not part of the model: a resumed run may change it.
  std::string precision = "f32";
  /// Data-parallel over the ranks of `mpirun -np N` (docs/distributed.md): each rank
  /// trains on 1/N of every batch of the single-process order; --batch-size stays
  /// the global batch. Rank 0 alone prints and writes files.
  bool distributed = false;
  /// Flags given on the command line (parse_flags fills it); with --resume, the
  /// others take the checkpoint's values (docs/cli.md, "Resuming").
  std::set<std::string> given;
};

struct EpochStats {
  int epoch = 0;
  double train_loss = 0, test_loss = 0, test_accuracy = 0, seconds = 0, samples_per_s = 0;
};

struct TrainResult {
  double test_accuracy = 0;
  std::vector<EpochStats> history;
};

/// Adds --data --seed --threads --epochs --batch-size --lr --optimizer
/// --weight-decay --schedule --csv --plot --save --resume --limit-train --precision to desc.
void add_training_flags(po::options_description& desc, TrainConfig& cfg);
/// Augments a batch [N, 1, 28, 28] in place: per image a random affine map about the
/// centre (rotation ±12°, scale 0.85–1.15, shear ±0.2, shift ±2.5 px; bilinear) and,
/// with chance 1/4 each, bolder (3×3 grey dilation) or thinner (half-way to a cross
/// erosion) strokes — the variety of handwriting sheets that MNIST lacks.
void augment_batch(Tensor& x, Generator& rng);

/// Training data that went through the page pipeline: handwriting sheets (scan, photo
/// and dense, in turn; HandwritingOptions) written with digits of `train` (never the
/// test split), read by find_digits (no deskewing; the trainer deskews batches), each
/// found box matched to a true box (IoU >= 0.5) and its crop labelled with the true
/// digit. Stops at `n` crops. Pages are seeded from `seed`.
data::TensorDataset page_crops(const data::TensorDataset& train, int64_t n, uint64_t seed, bool quiet = true);

/// Checks the values (one-line tape::Error naming the flag).
void validate(const TrainConfig& cfg);

/// Trains `spec` on MNIST and evaluates on the test set after every epoch.
TrainResult train_mnist(const ModelSpec& spec, const TrainConfig& cfg);

/// Test-set loss and accuracy of a model (eval mode, no graph). With `distributed`,
/// each rank evaluates its slice of the test set and the sums are all-reduced.
std::pair<double, double> evaluate(nn::Module& model, const data::TensorDataset& test, int64_t batch_size = 1000,
                                   bool distributed = false);

}  // namespace tape::examples
