#pragma once
/// \file Checkpoints: model parameters and buffers, optimizer state, the global RNG
/// and trainer metadata in one self-checking file, written atomically.
/// The format and the error messages are described in docs/checkpoints.md.
#include <cstdint>
#include <map>
#include <string>

namespace tape {

namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}

/// What a trainer stores next to the tensors, to rebuild the network and resume.
struct CheckpointMeta {
  /// Describes the network, e.g. "mlp:784-50-10:relu:dropout=0" or "lenet5";
  /// opaque to the library.
  std::string model_spec;
  /// Epochs completed.
  int64_t epoch = 0;
  /// Anything else a trainer wants back (best accuracy, ...).
  std::map<std::string, double> scalars;
  std::map<std::string, std::string> strings;
};

/// Current checkpoint format version (the one save writes; load reads 1..this).
/// Version 2 checksums the payload with XXH3-64, version 1 with FNV-1a-64.
inline constexpr uint32_t kCheckpointFormatVersion = 2;

/// Largest epoch count a checkpoint's meta may hold; a larger (or negative) one
/// means a damaged or crafted file and is rejected when loading.
inline constexpr int64_t kMaxCheckpointEpoch = 1'000'000'000;

/// Saves the module's parameters and buffers by dotted name ("0.weight").
void save(const nn::Module& module, const std::string& path);
/// Loads parameters and buffers saved by save() or save_checkpoint() into `module`,
/// in place. Names, shapes and dtypes must match exactly; on any error the module
/// is left unchanged.
void load(nn::Module& module, const std::string& path);

/// Everything a resumed run needs: the module (parameters + buffers), the optimizer
/// state (`opt` may be null), the global RNG state and `meta`.
void save_checkpoint(const std::string& path, const nn::Module& module, const optim::Optimizer* opt,
                     const CheckpointMeta& meta);
/// Restores the module, the optimizer (if `opt` is non-null and the file holds
/// optimizer state) and the global RNG (if the file holds it); returns the meta.
/// The whole file is validated first: on any error nothing is modified.
CheckpointMeta load_checkpoint(const std::string& path, nn::Module& module, optim::Optimizer* opt = nullptr);
/// Reads only the meta (to rebuild the right network before loading).
CheckpointMeta read_checkpoint_meta(const std::string& path);

}  // namespace tape
