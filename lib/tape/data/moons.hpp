#pragma once
/// \file Interleaving half-circle ("moons") toy dataset.
#include <cstdint>

#include "tape/data/dataset.hpp"

namespace tape::data {

/// `n` points in 2-D (`images` [n, 2] Float32, `labels` [n] Int64), shuffled,
/// with Gaussian noise of std `noise`. classes = 2 matches scikit-learn's
/// make_moons: an upper arc centred (0, 0) and a lower arc centred (1, 0.5).
/// classes = 3 adds a third upper arc centred (2, 1), hooked over the second
/// moon's right tip. Classes are balanced (sizes differ by at most one).
/// Deterministic for a given seed.
TensorDataset make_moons(int64_t n, float noise, uint64_t seed, int classes = 2);

}  // namespace tape::data
