// tape-ops-doc: prints docs/ops.md, the table of every registered op, generated
// from the op registry:  build/tools/tape-ops-doc > docs/ops.md
#include <iostream>

#include <tape/tape.hpp>
#include <tape_testing/gradcheck_ops.hpp>
#include <tape_testing/registry.hpp>

#include "cli.hpp"

int main(int argc, char** argv) {
  using namespace tape::examples;
  using namespace tape::testing;
  return run_program("tape-ops-doc", [&] {
    po::options_description desc("tape-ops-doc options");
    desc.add_options()("help", "show this help");
    if (!parse_flags(argc, argv, desc,
                     "usage: tape-ops-doc > docs/ops.md\n"
                     "Prints the markdown table of every registered op (group, signature, formula)."))
      return 0;
    std::cout << tape::testing::ops_markdown();
    return 0;
  });
}
