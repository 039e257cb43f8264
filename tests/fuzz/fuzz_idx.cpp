// libFuzzer harness: the MNIST IDX reader (load_idx_images, load_idx_labels)
// on the same bytes.
#include <tape/tape.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static tape_fuzz::ScratchFile file("idx");
  const std::string& path = file.write(tape_fuzz::bytes(data, size));
  try {
    const tape::Tensor t = tape::data::load_idx_images(path);
    if (t.dim() != 4 || t.size(1) != 1) std::abort();
  } catch (const tape::Error&) {
  }
  try {
    const tape::Tensor t = tape::data::load_idx_labels(path);
    if (t.dim() != 1) std::abort();
  } catch (const tape::Error&) {
  }
  return 0;
}
