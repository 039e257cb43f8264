// libFuzzer harness: the image loader (load_image, stb behind it). The number of
// channels asked for is the input's size mod 5 (0 = as stored), so the
// conversions are reached too.
#include <tape/tape.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static tape_fuzz::ScratchFile file("image");
  const std::string& path = file.write(tape_fuzz::bytes(data, size));
  const int want = int(size % 5);
  try {
    const tape::data::Image img = tape::data::load_image(path, want);
    const bool ok = img.width > 0 && img.height > 0 && img.channels >= 1 && img.channels <= 4 &&
                    (want == 0 || img.channels == want) &&
                    img.pixels.size() == size_t(img.width) * size_t(img.height) * size_t(img.channels);
    if (!ok) {
      std::fprintf(stderr, "load_image returned an inconsistent image %dx%dx%d with %zu bytes\n", img.width,
                   img.height, img.channels, img.pixels.size());
      std::abort();
    }
  } catch (const tape::Error&) {
  }
  return 0;
}
