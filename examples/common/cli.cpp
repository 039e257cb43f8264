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

int run_program(const char* prog, const std::function<int()>& body) {
  try {
    return body();
  } catch (const po::error& e) {
    std::cerr << prog << ": error: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const tape::Error& e) {
    std::cerr << prog << ": error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << prog << ": internal error: " << e.what() << "\n";
    return 1;
  }
}

void apply_threads(int threads) {
  TAPE_CHECK(threads >= 0, "--threads must be >= 0, got ", threads);
  if (threads > 0) set_num_threads(threads);
}

}  // namespace tape::examples
