#include "tape/ops/rnn.hpp"
