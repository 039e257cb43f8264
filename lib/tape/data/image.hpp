#pragma once
/// \file 8-bit images: load (PNG/JPEG/BMP), save PNG, and simple drawing.
#include <cstdint>
#include <string>
#include <vector>

namespace tape::data {

/// An 8-bit image; `pixels` is row-major with interleaved channels (1 grey,
/// 2 grey+alpha, 3 RGB, 4 RGBA).
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;

  Image() = default;
  /// A width x height image with every byte set to `fill`.
  Image(int width, int height, int channels, uint8_t fill = 0);
  bool empty() const { return pixels.empty(); }
  uint8_t* at(int x, int y) { return pixels.data() + (size_t(y) * width + x) * channels; }
  const uint8_t* at(int x, int y) const { return pixels.data() + (size_t(y) * width + x) * channels; }
};

/// A drawing colour.
struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

/// Default for max_image_pixels(): 100 megapixels (PIL's decompression-bomb guard is ~89).
inline constexpr int64_t kDefaultMaxImagePixels = 100'000'000;
/// Largest width x height load_image accepts, checked from the header before
/// decoding. Starts at TAPE_MAX_IMAGE_PIXELS if set, else kDefaultMaxImagePixels.
int64_t max_image_pixels();
/// Raises or lowers the limit (> 0) for the whole process.
void set_max_image_pixels(int64_t pixels);

/// Reads a PNG, JPEG or BMP file (checked by its magic bytes; GIF, PSD, HDR, PNM,
/// ... are refused); `want_channels` 0 keeps the file's own channel count.
/// Directories, FIFOs and devices, images over max_image_pixels() and corrupt
/// files are one-line tape::Errors naming the file.
Image load_image(const std::string& path, int want_channels = 0);
/// Writes `img` as PNG, atomically (write_file_atomically: the old file survives
/// any failure); throws naming the path on failure.
void save_png(const Image& img, const std::string& path);

/// Luma (ITU-R BT.601) as a 1-channel image; alpha is dropped.
Image to_grey(const Image& img);
/// 3-channel copy (grey is replicated, alpha dropped).
Image to_rgb(const Image& img);

}  // namespace tape::data
