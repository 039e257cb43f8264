#include "tape/nn/rnn.hpp"
