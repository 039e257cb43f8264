#include "tape/data/transforms.hpp"
