#include "tape/core/autocast.hpp"
