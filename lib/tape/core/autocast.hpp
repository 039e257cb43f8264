#pragma once
/// \file Automatic mixed precision (bf16 autocast): AutocastGuard. (Issue 15; being written.)
#include "tape/core/dtype.hpp"

namespace tape {}  // namespace tape
