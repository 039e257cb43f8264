#include "tape/nn/embedding.hpp"
