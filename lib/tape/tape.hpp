#pragma once
/// \file The umbrella header: `#include <tape/tape.hpp>` brings in all of tape.
#include "tape/core/error.hpp"
#include "tape/core/generator.hpp"
#include "tape/core/storage.hpp"
#include "tape/core/tensor.hpp"
#include "tape/autograd/grad_mode.hpp"
#include "tape/autograd/node.hpp"
#include "tape/backend/threads.hpp"
#include "tape/ops/ops.hpp"
#include "tape/ops/registry.hpp"
#include "tape/ops/gradcheck.hpp"
