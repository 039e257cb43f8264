#include "tape/ops/fused.hpp"
