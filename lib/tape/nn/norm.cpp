#include "tape/nn/norm.hpp"
