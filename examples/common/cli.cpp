#include "cli.hpp"

#include <iostream>

#include <tape/tape.hpp>

namespace tape::examples {

bool parse_flags(int argc, char** argv, const po::options_description& desc, const std::string& usage,
                 std::set<std::string>* given) {
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
  if (vm.count("help")) {
    std::cout << usage << "\n\n" << desc << "\n";
    return false;
  }
  po::notify(vm);
  if (given)
    for (const auto& [name, value] : vm)
      if (!value.defaulted()) given->insert(name);
  return true;
}

// Note: in a job of several ranks (--distributed) an error on one rank ends the
// whole job through dist::abort (MPI_Abort), naming the rank, so the others do not
// wait for it in a collective; dist::finalize runs at the end of a run that worked,
// here and never from a destructor.
int run_program(const char* prog, const std::function<int()>& body) {
  auto fail = [&](const std::string& message, int code) {
    if (dist::world_size() > 1) dist::abort(str_cat(prog, ": ", message), code);
    std::cerr << prog << ": " << message << "\n";
    return code;
  };
  int rc = 0;
  try {
    rc = body();
  } catch (const po::error& e) {
    return fail(str_cat("error: ", e.what(), " (see --help)"), 2);
  } catch (const tape::Error& e) {
    return fail(str_cat("error: ", e.what()), 2);
  } catch (const std::exception& e) {
    return fail(str_cat("internal error: ", e.what()), 1);
  }
  if (dist::is_initialized()) dist::finalize();
  return rc;
}

void add_precision_flag(po::options_description& desc, std::string& precision) {
  desc.add_options()("precision", po::value(&precision)->default_value(precision),
                     "f32 | bf16: bf16 runs matmul/linear/conv on oneDNN's bf16 kernels (f32 accumulation and "
                     "weights; docs/precision.md); on a CPU without bf16 it says so and trains in f32");
}

void validate_precision(const std::string& precision) {
  TAPE_CHECK(precision == "f32" || precision == "bf16", "unknown --precision '", precision,
             "' (expected f32 or bf16)");
}

bool use_bf16(const std::string& precision) {
  if (precision != "bf16") return false;
  AutocastGuard probe;  // on a CPU without bf16 this prints the one line and stays off
  return autocast_enabled();
}

std::string precision_label(bool bf16) {
  if (!bf16) return "precision f32";
  std::string isa = cpu_isa_name();
  // "avx512_core_bf16 (AVX-512 with bf16)" → "avx512_core_bf16: AVX-512 with bf16"
  if (auto at = isa.find(" ("); at != std::string::npos && isa.back() == ')')
    isa = isa.substr(0, at) + ": " + isa.substr(at + 2, isa.size() - at - 3);
  return str_cat("precision bf16 (oneDNN ", isa, ")");
}

void apply_threads(int threads) {
  TAPE_CHECK(threads >= 0, "--threads must be >= 0, got ", threads);
  if (threads > 0) set_num_threads(threads);
}

}  // namespace tape::examples
