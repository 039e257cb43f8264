#pragma once
// Runs a program the way a user would, for the end-to-end tests of the examples.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace tape_test {

struct Run {
  int code = -1;    ///< exit status (-1 when the program did not exit normally)
  std::string out;  ///< stdout and stderr, interleaved
};

/// Runs a shell command, capturing stdout+stderr and the exit code.
inline Run run_command(const std::string& cmd) {
  Run r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p);
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace tape_test
