#pragma once
/// \file Fused ops: several layers in one op (issue 15; being written).
#include "tape/core/tensor.hpp"

namespace tape {}  // namespace tape
