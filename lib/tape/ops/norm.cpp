#include "tape/ops/norm.hpp"
