#pragma once
// Command-line handling shared by the example programs: Boost.Program_options,
// --help, and the rule that bad input is a one-line error with exit code 2.
#include <boost/program_options.hpp>
#include <functional>
#include <set>
#include <string>

namespace tape::examples {

namespace po = boost::program_options;

/// Parses argv into `desc`'s variables. Returns false after printing --help.
/// Throws po::error / tape::Error on bad flags. `given`, if set, receives the
/// names of the flags given on the command line (not defaulted).
bool parse_flags(int argc, char** argv, const po::options_description& desc, const std::string& usage,
                 std::set<std::string>* given = nullptr);

/// Runs body(); a tape::Error or a flag error becomes "prog: error: ..." on
/// stderr and exit code 2; anything else exit code 1.
int run_program(const char* prog, const std::function<int()>& body);

/// Applies --threads (0 keeps the default).
void apply_threads(int threads);

}  // namespace tape::examples
