// Command-line plumbing shared by the apps (train, eval, bench).
#pragma once
// --set values are JSON and may hold commas ({"mean": [0.1, 0.2]}): repeated
// options must never be split on them, so no delimiter at all.
#define CXXOPTS_VECTOR_DELIMITER '\0'
#include <cxxopts.hpp>
