#include "tape/data/image.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "tape/core/error.hpp"
#include "tape/io/file.hpp"

// Note: decoder memory. stb allocates through these two: one allocation larger
// than what the image's header justifies (tape_stbi_cap, set by load_image from the
// dimensions it already checked against max_image_pixels()) fails, and stb reports
// "outofmem" instead of inflating a zlib bomb or trusting a lying header.
namespace {
thread_local size_t tape_stbi_cap = 0;
void* tape_stbi_malloc(size_t size) { return size > tape_stbi_cap ? nullptr : std::malloc(size); }
void* tape_stbi_realloc(void* p, size_t size) { return size > tape_stbi_cap ? nullptr : std::realloc(p, size); }
}  // namespace

// The stb implementations live in this one translation unit only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wuseless-cast"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#define STB_IMAGE_STATIC  // internal linkage: no clash with a libstb the program may also link
#define STB_IMAGE_IMPLEMENTATION
// Only the formats the docs name are compiled in; load_image also checks magic bytes.
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO  // load_image reads the file itself (regular files only, once)
#define STBI_MALLOC(size) tape_stbi_malloc(size)
#define STBI_REALLOC(p, size) tape_stbi_realloc(p, size)
#define STBI_FREE(p) std::free(p)
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace tape::data {

Image::Image(int w, int h, int c, uint8_t fill) : width(w), height(h), channels(c) {
  TAPE_CHECK(w >= 0 && h >= 0 && c >= 1 && c <= 4, "Image: bad size ", w, "x", h, "x", c,
             " (need width, height >= 0 and 1..4 channels)");
  pixels.assign(size_t(w) * h * c, fill);
}

namespace {

/// Reads TAPE_MAX_IMAGE_PIXELS once; unset means kDefaultMaxImagePixels.
int64_t initial_pixel_limit() {
  const char* env = std::getenv("TAPE_MAX_IMAGE_PIXELS");
  if (env == nullptr || *env == '\0') return kDefaultMaxImagePixels;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(env, &end, 10);
  TAPE_CHECK(errno == 0 && *end == '\0' && v > 0, "TAPE_MAX_IMAGE_PIXELS must be a positive integer, got '", env,
             "'");
  return v;
}

std::atomic<int64_t>& pixel_limit() {
  static std::atomic<int64_t> limit{initial_pixel_limit()};
  return limit;
}

/// The format a file's first bytes announce: "PNG", "JPEG", "BMP", one stb could
/// decode but tape does not accept ("GIF", ...), or "" when unknown.
const char* sniff_format(const std::string& b) {
  auto starts = [&](const char* magic, size_t n) { return b.size() >= n && std::memcmp(b.data(), magic, n) == 0; };
  if (starts("\x89PNG\r\n\x1a\n", 8)) return "PNG";
  if (starts("\xff\xd8\xff", 3)) return "JPEG";
  if (starts("BM", 2)) return "BMP";
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return "GIF";
  if (starts("8BPS", 4)) return "PSD";
  if (starts("#?RADIANCE", 10) || starts("#?RGBE", 6)) return "HDR";
  if (starts("\x53\x80\xf6\x34", 4)) return "PIC";
  if (b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7' && std::isspace(static_cast<unsigned char>(b[2])))
    return "PNM";
  return "";
}

}  // namespace

int64_t max_image_pixels() { return pixel_limit().load(); }

void set_max_image_pixels(int64_t pixels) {
  TAPE_CHECK(pixels > 0, "set_max_image_pixels: the limit must be positive, got ", pixels);
  pixel_limit().store(pixels);
}

// Note: hostile images. The file is read once (a regular file, at most INT_MAX
// bytes, which is what stb can index), its magic bytes must say PNG, JPEG or BMP,
// and its dimensions are read from the header (stbi_info) and checked against
// max_image_pixels() before a single pixel is decoded — PIL's decompression-bomb
// guard. The decode itself runs under tape_stbi_cap (above).
Image load_image(const std::string& path, int want_channels) {
  const std::string context = str_cat("load_image: cannot read '", path, "'");
  TAPE_CHECK(want_channels >= 0 && want_channels <= 4, "load_image: want_channels must be 0..4, got ",
             want_channels, " (reading '", path, "')");
  const std::string bytes = read_regular_file(path, context, uint64_t(INT_MAX));
  const std::string format = sniff_format(bytes);
  TAPE_CHECK(format == "PNG" || format == "JPEG" || format == "BMP", context, ": ",
             format.empty() ? std::string("it is not a PNG, JPEG or BMP file") : str_cat("it is a ", format, " image"),
             " (supported: PNG, JPEG, BMP)");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = int(bytes.size());
  int w = 0, h = 0, c = 0;
  TAPE_CHECK(stbi_info_from_memory(data, len, &w, &h, &c) && w > 0 && h > 0 && c >= 1 && c <= 4, context,
             ": invalid ", format, " header (", stbi_failure_reason(), ")");
  const int64_t limit = max_image_pixels();
  TAPE_CHECK(int64_t(w) * h <= limit, context, ": ", format, " header says ", w, "x", h, " = ", int64_t(w) * h,
             " pixels, more than the limit of ", limit, " (raise it with tape::data::set_max_image_pixels or "
             "TAPE_MAX_IMAGE_PIXELS)");
  // stb decodes only uncompressed BMPs (no RLE) and reads zeros past the end of
  // the file, so a BMP must hold at least one bit per pixel: a 92-byte file
  // claiming 4456451x6 pixels took seconds and 80 MB (found by fuzz_image).
  TAPE_CHECK(format != "BMP" || bytes.size() >= (uint64_t(w) * uint64_t(h) + 7) / 8, context, ": BMP header says ",
             w, "x", h, " pixels but the file has only ", bytes.size(), " bytes");
  // Largest single allocation a w x h image needs: 16-bit RGBA scanlines plus
  // filter bytes, or the compressed data (at most twice the file), plus slack.
  tape_stbi_cap = std::max(size_t(8) * size_t(w) * size_t(h) + 4 * size_t(h), 2 * bytes.size()) + (size_t(1) << 20);
  int dw = 0, dh = 0, dc = 0;
  uint8_t* pixels = stbi_load_from_memory(data, len, &dw, &dh, &dc, want_channels);
  tape_stbi_cap = 0;
  TAPE_CHECK(pixels != nullptr, context, ": ", stbi_failure_reason());
  Image img;
  img.width = dw;
  img.height = dh;
  img.channels = want_channels ? want_channels : dc;
  img.pixels.assign(pixels, pixels + size_t(dw) * size_t(dh) * size_t(img.channels));
  stbi_image_free(pixels);
  return img;
}

void save_png(const Image& img, const std::string& path) {
  TAPE_CHECK(img.width > 0 && img.height > 0 && img.channels >= 1 && img.channels <= 4 &&
                 img.pixels.size() == size_t(img.width) * img.height * img.channels,
             "save_png: cannot write '", path, "': image is ", img.width, "x", img.height, "x",
             img.channels, " with ", img.pixels.size(), " bytes");
  std::string png;
  auto append = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size_t(size));
  };
  const int ok = stbi_write_png_to_func(append, &png, img.width, img.height, img.channels, img.pixels.data(),
                                        img.width * img.channels);
  TAPE_CHECK(ok, "save_png: cannot write '", path, "': encoding the PNG failed");
  write_file_atomically(path, png, "save_png");
}

namespace {

uint8_t luma(int r, int g, int b) { return uint8_t((299 * r + 587 * g + 114 * b + 500) / 1000); }

}  // namespace

Image to_grey(const Image& img) {
  Image out(img.width, img.height, 1);
  for (size_t i = 0, n = size_t(img.width) * img.height; i < n; ++i) {
    const uint8_t* p = img.pixels.data() + i * img.channels;
    out.pixels[i] = img.channels >= 3 ? luma(p[0], p[1], p[2]) : p[0];
  }
  return out;
}

Image to_rgb(const Image& img) {
  Image out(img.width, img.height, 3);
  for (size_t i = 0, n = size_t(img.width) * img.height; i < n; ++i) {
    const uint8_t* p = img.pixels.data() + i * img.channels;
    for (int k = 0; k < 3; ++k) out.pixels[3 * i + k] = img.channels >= 3 ? p[k] : p[0];
  }
  return out;
}

}  // namespace tape::data
