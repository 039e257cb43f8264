#pragma once
// Command-line handling shared by the example programs: Boost.Program_options,
// --help, and the rule that bad input is a one-line error with exit code 2.
#include <boost/program_options.hpp>
#include <functional>
#include <optional>
#include <set>
#include <string>

#include <tape/core/autocast.hpp>

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

/// Adds --precision f32|bf16 (docs/precision.md) to desc.
void add_precision_flag(po::options_description& desc, std::string& precision);
/// Checks --precision's value (one-line tape::Error naming the flag).
void validate_precision(const std::string& precision);
/// Whether a run autocasts: --precision bf16 on a CPU with bf16 kernels. On one
/// without, AutocastGuard prints its one line (stderr) and the run stays f32.
bool use_bf16(const std::string& precision);
/// The precision in use for a run's header: "precision f32", or
/// "precision bf16 (oneDNN avx512_core_bf16: AVX-512 with bf16)".
std::string precision_label(bool bf16);

/// An AutocastGuard when `on` (a run's forward passes with --precision bf16).
struct MaybeAutocast {
  explicit MaybeAutocast(bool on) {
    if (on) guard.emplace();
  }
  std::optional<AutocastGuard> guard;
};

}  // namespace tape::examples
