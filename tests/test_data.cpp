#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include <tape/tape.hpp>
#include <tape_vision/annotate.hpp>
#include <tape_vision/digit_page.hpp>
#include <tape_vision/digits.hpp>
#include <tape_vision/draw.hpp>
#include <tape_vision/plot.hpp>
#include <tape/data/dataloader.hpp>
#include <tape/data/dataset.hpp>
#include <tape/data/image.hpp>
#include <tape/data/moons.hpp>

#include "mnist.hpp"
#include "temp_dir.hpp"

using namespace tape;
using namespace tape::data;
using namespace tape::vision;
namespace fs = std::filesystem;

namespace {

/// doctest::Contains for a std::string.
doctest::Contains has(const std::string& s) { return doctest::Contains(doctest::String(s.c_str())); }

void put_be32(std::vector<uint8_t>& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}

std::vector<uint8_t> idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, size_t pixel_bytes) {
  std::vector<uint8_t> b;
  put_be32(b, magic), put_be32(b, n), put_be32(b, rows), put_be32(b, cols);
  for (size_t i = 0; i < pixel_bytes; ++i) b.push_back(uint8_t(i * 37 % 256));
  return b;
}

std::vector<uint8_t> idx_labels(uint32_t magic, uint32_t n, const std::vector<uint8_t>& labels) {
  std::vector<uint8_t> b;
  put_be32(b, magic), put_be32(b, n);
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

void write(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

/// A valid 3-sample "test" split of 2x3 images in `dir`.
void write_small_mnist(const TempDir& dir) {
  write(dir / "t10k-images-idx3-ubyte", idx_images(0x803, 3, 2, 3, 18));
  write(dir / "t10k-labels-idx1-ubyte", idx_labels(0x801, 3, {7, 0, 9}));
}

TensorDataset numbered(int64_t n) {  // images [n, 2] = (i, -i), labels [n] = i
  std::vector<float> xs;
  std::vector<int64_t> ys;
  for (int64_t i = 0; i < n; ++i) xs.push_back(float(i)), xs.push_back(float(-i)), ys.push_back(i);
  return {tensor(xs, {n, 2}), tensor(ys, {n})};
}

std::vector<int64_t> epoch_order(DataLoader& loader) {
  std::vector<int64_t> order;
  for (auto& b : loader) {
    const auto y = b.y.to_vector<int64_t>();
    const auto x = b.x.to_vector<float>();
    for (size_t i = 0; i < y.size(); ++i) {
      CHECK(x[2 * i] == float(y[i]));  // rows stay paired with their labels
      order.push_back(y[i]);
    }
  }
  return order;
}

int count_non(const Image& img, uint8_t r, uint8_t g, uint8_t b) {
  int n = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const uint8_t* p = img.at(x, y);
      n += !(p[0] == r && p[1] == g && p[2] == b);
    }
  return n;
}

}  // namespace

TEST_CASE("data: IDX reader reads values, shape and dtype") {
  TempDir dir("idx");
  write_small_mnist(dir);
  TensorDataset ds = load_mnist(dir.dir.string(), "test");
  CHECK(ds.size() == 3);
  CHECK(ds.images.shape() == Shape{3, 1, 2, 3});
  CHECK(ds.images.dtype() == Dtype::Float32);
  CHECK(ds.labels.dtype() == Dtype::Int64);
  CHECK(ds.labels.to_vector<int64_t>() == std::vector<int64_t>{7, 0, 9});
  const auto px = ds.images.to_vector<float>();
  for (size_t i = 0; i < px.size(); ++i) CHECK(px[i] == doctest::Approx(float(i * 37 % 256) / 255.f));

  TensorDataset sub = ds.subset(1, 3);
  CHECK(sub.size() == 2);
  CHECK(sub.images.shape() == Shape{2, 1, 2, 3});
  CHECK(sub.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 9});
  CHECK(sub.images.to_vector<float>()[0] == doctest::Approx(px[6]));
  CHECK_THROWS_WITH_AS(ds.subset(2, 4), has("outside the dataset of 3 samples"), Error);
}

TEST_CASE("data: IDX reader rejects bad files with the path and the problem") {
  TempDir dir("bad");
  const std::string images = dir / "t10k-images-idx3-ubyte", labels = dir / "t10k-labels-idx1-ubyte";
  const std::string d = dir.dir.string();

  CHECK_THROWS_WITH_AS(load_mnist(d, "valid"), has("unknown split 'valid'"), Error);
  CHECK_THROWS_WITH_AS(load_mnist(d + "/nowhere", "test"), has("run tools/fetch_mnist.sh"), Error);
  CHECK_THROWS_WITH_AS(load_mnist(d + "/nowhere", "test"), has(d + "/nowhere"), Error);
  CHECK_THROWS_WITH_AS(load_mnist(d, "test"), has(images + " does not exist"), Error);

  SUBCASE("truncated images") {
    write_small_mnist(dir);
    write(images, idx_images(0x803, 10000, 28, 28, 1000 - 16));
    CHECK_THROWS_WITH_AS(load_mnist(d, "test"),
                         has(images + " is truncated: header says 10000 images of 28x28 (7840016 bytes) "
                                           "but the file has 1000 bytes"),
                         Error);
  }
  SUBCASE("truncated header") {
    write_small_mnist(dir);
    write(images, {0, 0, 8, 3, 0, 0});
    CHECK_THROWS_WITH_AS(load_mnist(d, "test"), has(images + " is truncated"), Error);
  }
  SUBCASE("truncated labels") {
    write_small_mnist(dir);
    write(labels, idx_labels(0x801, 3, {1, 2}));
    CHECK_THROWS_WITH_AS(load_mnist(d, "test"), has(labels + " is truncated: header says 3 labels"), Error);
  }
  SUBCASE("wrong magic") {
    write_small_mnist(dir);
    write(images, idx_images(0x801, 3, 2, 3, 18));
    CHECK_THROWS_WITH_AS(load_mnist(d, "test"),
                         has(images + " has magic number 0x00000801, expected 0x00000803"), Error);
    write_small_mnist(dir);
    write(labels, idx_labels(0x01080000, 3, {1, 2, 3}));  // little-endian magic
    CHECK_THROWS_WITH_AS(load_mnist(d, "test"), has(labels + " has magic number 0x01080000"), Error);
  }
  SUBCASE("count mismatch") {
    write_small_mnist(dir);
    write(labels, idx_labels(0x801, 2, {1, 2}));
    CHECK_THROWS_WITH_AS(load_mnist(d, "test"), has(labels + " has 2 labels but " + images + " has 3 images"),
                         Error);
  }
  SUBCASE("label out of range") {
    write_small_mnist(dir);
    write(labels, idx_labels(0x801, 3, {1, 12, 3}));
    CHECK_THROWS_WITH_AS(load_mnist(d, "test"), has(labels + ": label 12 at index 1"), Error);
  }
  SUBCASE("trailing bytes") {
    write_small_mnist(dir);
    write(images, idx_images(0x803, 3, 2, 3, 20));
    CHECK_THROWS_WITH_AS(load_mnist(d, "test"), has(images + " has 2 trailing bytes"), Error);
  }
}

TEST_CASE("data: real MNIST (skipped when data/mnist is absent)" * doctest::skip(!tape_test::mnist_available())) {
  const std::string dir = tape_test::mnist_dir();
  TensorDataset train = load_mnist(dir, "train"), test = load_mnist(dir, "test");
  CHECK(train.images.shape() == Shape{60000, 1, 28, 28});
  CHECK(train.labels.shape() == Shape{60000});
  CHECK(test.size() == 10000);
  CHECK(train.labels.data<int64_t>()[0] == 5);
  CHECK(test.labels.data<int64_t>()[0] == 7);
  const auto px = test.images.to_vector<float>();
  const auto [lo, hi] = std::minmax_element(px.begin(), px.end());
  CHECK(*lo == 0.f);
  CHECK(*hi == 1.f);
  std::vector<int64_t> counts(10, 0);
  for (int64_t y : train.labels.to_vector<int64_t>()) ++counts[size_t(y)];
  CHECK(counts[1] == 6742);  // the most frequent digit in the training set
}

TEST_CASE("data: DataLoader batches, shuffling and epochs") {
  TensorDataset ds = numbered(10);
  DataLoader loader(ds, 4, true, 42);
  CHECK(loader.num_batches() == 3);
  CHECK(loader.batch_size() == 4);
  CHECK(loader.epoch() == 0);

  std::vector<int64_t> sizes;
  for (auto& b : loader) {
    sizes.push_back(b.x.size(0));
    CHECK(b.x.dim() == 2);
    CHECK(b.x.size(1) == 2);
    CHECK(b.y.dtype() == Dtype::Int64);
    CHECK(b.x.is_contiguous());
  }
  CHECK(sizes == std::vector<int64_t>{4, 4, 2});  // the last partial batch is kept
  CHECK(loader.epoch() == 1);

  const auto e1 = epoch_order(loader), e2 = epoch_order(loader);
  CHECK(loader.epoch() == 3);
  auto sorted = e1;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == numbered(10).labels.to_vector<int64_t>());  // every index once per epoch
  CHECK(std::set<int64_t>(e2.begin(), e2.end()).size() == 10);
  CHECK(e1 != e2);  // reshuffled each epoch

  DataLoader same(ds, 4, true, 42);
  same.set_epoch(1);
  CHECK(epoch_order(same) == e1);  // a resumed run continues the same sequence
  CHECK(epoch_order(same) == e2);
  CHECK(same.permutation(1) == e1);

  DataLoader other(ds, 4, true, 43);
  other.set_epoch(1);
  CHECK(epoch_order(other) != e1);

  DataLoader plain(ds, 3, false);
  CHECK(epoch_order(plain) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(plain.num_batches() == 4);

  // MNIST-shaped rows keep their trailing dims.
  DataLoader imgs(TensorDataset{zeros({5, 1, 2, 2}), tensor(std::vector<int64_t>{0, 1, 2, 3, 4}, {5})}, 2);
  CHECK((*imgs.begin()).x.shape() == Shape{2, 1, 2, 2});

  CHECK_THROWS_WITH_AS(DataLoader(ds, 0), has("batch_size must be positive, got 0"), Error);
  CHECK_THROWS_WITH_AS(DataLoader(ds, -5), has("got -5"), Error);
}

TEST_CASE("data: make_moons") {
  TensorDataset a = make_moons(101, 0.1f, 7), b = make_moons(101, 0.1f, 7), c = make_moons(101, 0.1f, 8);
  CHECK(a.images.shape() == Shape{101, 2});
  CHECK(a.labels.shape() == Shape{101});
  CHECK(a.labels.dtype() == Dtype::Int64);
  CHECK(a.images.to_vector<float>() == b.images.to_vector<float>());
  CHECK(a.labels.to_vector<int64_t>() == b.labels.to_vector<int64_t>());
  CHECK(a.images.to_vector<float>() != c.images.to_vector<float>());

  const auto y2 = a.labels.to_vector<int64_t>();
  CHECK(std::count(y2.begin(), y2.end(), 0) == 50);  // scikit-learn: n // 2 in the first moon
  CHECK(std::count(y2.begin(), y2.end(), 1) == 51);
  CHECK(!std::is_sorted(y2.begin(), y2.end()));      // shuffled

  // Noise-free points lie exactly on their half circles.
  TensorDataset clean = make_moons(60, 0.f, 1, 3);
  const auto p = clean.images.to_vector<float>();
  const auto y3 = clean.labels.to_vector<int64_t>();
  for (int k = 0; k < 3; ++k) CHECK(std::count(y3.begin(), y3.end(), k) == 20);
  for (size_t i = 0; i < y3.size(); ++i) {
    const double k = double(y3[i]), dx = p[2 * i] - k, dy = p[2 * i + 1] - 0.5 * k;
    CHECK(dx * dx + dy * dy == doctest::Approx(1.0).epsilon(1e-5));
    CHECK((y3[i] % 2 == 0 ? dy >= -1e-6 : dy <= 1e-6));  // upper arcs for even classes
  }

  CHECK_THROWS_WITH_AS(make_moons(0, 0.1f, 1), has("n must be positive, got 0"), Error);
  CHECK_THROWS_WITH_AS(make_moons(10, -1.f, 1), has("noise must be >= 0"), Error);
  CHECK_THROWS_WITH_AS(make_moons(10, 0.1f, 1, 4), has("classes must be 2 or 3, got 4"), Error);
}

TEST_CASE("data: image save/load round trip, grey conversion and errors") {
  TempDir dir("img");
  Image img(7, 5, 3);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = uint8_t(x * 30), p[1] = uint8_t(y * 50), p[2] = uint8_t(x * y);
    }
  const std::string path = dir / "round.png";
  save_png(img, path);
  Image back = load_image(path);
  CHECK(back.width == 7);
  CHECK(back.height == 5);
  CHECK(back.channels == 3);
  CHECK(back.pixels == img.pixels);
  CHECK(load_image(path, 4).channels == 4);

  Image grey = to_grey(img);
  CHECK(grey.channels == 1);
  CHECK(int(*grey.at(6, 0)) == (299 * 180 + 500) / 1000);  // luma of (180, 0, 0)
  CHECK(to_rgb(grey).channels == 3);

  const std::string missing = dir / "missing.png";
  CHECK_THROWS_WITH_AS(load_image(missing), has("load_image: cannot read '" + missing + "'"), Error);
  const std::string garbage = dir / "garbage.png";
  write(garbage, {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
  CHECK_THROWS_WITH_AS(load_image(garbage), has("cannot read '" + garbage + "'"), Error);
  CHECK_THROWS_WITH_AS(save_png(img, dir / "no/such/dir/x.png"), has("no/such/dir/x.png"), Error);
}

namespace {

/// Pixels whose colour is exactly `c`, and the mean row of those inside columns [x0, x1).
struct ColourRun {
  int count = 0;
  double mean_y = 0;
};
ColourRun find_colour(const Image& img, Rgb c, int x0, int x1) {
  ColourRun out;
  for (int y = 0; y < img.height; ++y)
    for (int x = x0; x < x1; ++x) {
      const uint8_t* p = img.at(x, y);
      if (p[0] == c.r && p[1] == c.g && p[2] == c.b) ++out.count, out.mean_y += y;
    }
  if (out.count > 0) out.mean_y /= out.count;
  return out;
}

/// Bounding box of the pixels that differ between two images of one size.
PixelRect diff_box(const Image& a, const Image& b) {
  int x0 = a.width, y0 = a.height, x1 = -1, y1 = -1;
  for (int y = 0; y < a.height; ++y)
    for (int x = 0; x < a.width; ++x)
      if (!std::equal(a.at(x, y), a.at(x, y) + a.channels, b.at(x, y)))
        x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
  return x1 < 0 ? PixelRect{} : PixelRect{x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

/// Digit boxes in touching rows: row r has boxes of heights[r % size] (width 0.7 x height), from (10, 10).
std::vector<DigitBox> packed_boxes(int cols, int rows, const std::vector<int>& heights) {
  std::vector<DigitBox> out;
  int y = 10;
  for (int r = 0; r < rows; ++r) {
    const int h = heights[size_t(r) % heights.size()], w = heights.size() == 1 ? h : std::max(8, h * 7 / 10);
    for (int c = 0; c < cols; ++c) {
      DigitBox d;
      d.x = 10 + c * w, d.y = y, d.w = w, d.h = h;
      out.push_back(d);
    }
    y += h;
  }
  return out;
}

/// Checks that every label was placed inside a `width` x `height` image and none overlaps another.
void check_layout(const std::vector<LabelPlacement>& tags, int width, int height) {
  int placed = 0, overlapping = 0, outside = 0;
  for (size_t i = 0; i < tags.size(); ++i) {
    const PixelRect& r = tags[i].rect;
    placed += !r.empty();
    outside += r.x < 0 || r.y < 0 || r.x + r.w > width || r.y + r.h > height;
    CHECK(tags[i].font_size >= 9);
    for (size_t j = i + 1; j < tags.size(); ++j) overlapping += overlaps(r, tags[j].rect);
  }
  CHECK(placed == int(tags.size()));
  CHECK(overlapping == 0);
  CHECK(outside == 0);
}

}  // namespace

TEST_CASE("data: draw on a cairo canvas: text, rectangles, lines, alpha") {
  Image img(120, 50, 3, 255);
  draw_text(img, 10, 10, "Hi 42", {0, 0, 0}, 16);
  const int w = text_width("Hi 42", 16), h = text_height("Hi 42", 16);
  CHECK(w > 30);
  CHECK(h >= 16);
  CHECK(text_width("Hi 42 and more", 16) > w);
  CHECK(text_height("two\nlines", 16) > 2 * h - 2);
  int dark_inside = 0, dark_outside = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const bool inside = x >= 9 && x <= 10 + w && y >= 9 && y <= 10 + h;
      if (*img.at(x, y) < 128) ++(inside ? dark_inside : dark_outside);
    }
  CHECK(dark_inside > 40);
  CHECK(dark_outside == 0);

  Image canvas(20, 20, 3, 0);
  fill_rect(canvas, -5, -5, 10, 10, {255, 0, 0});  // clipped at the border
  CHECK(canvas.at(4, 4)[0] == 255);
  CHECK(canvas.at(5, 5)[0] == 0);
  draw_rect(canvas, 10, 10, 6, 6, {0, 255, 0}, 2);
  CHECK(canvas.at(11, 11)[1] == 255);
  CHECK(canvas.at(15, 15)[1] == 255);
  CHECK(canvas.at(12, 12)[1] == 0);
  CHECK(canvas.at(16, 16)[1] == 0);
  draw_line(canvas, 0, 19, 19, 0, {0, 0, 255});
  CHECK(canvas.at(19, 0)[2] == 255);
  CHECK(canvas.at(10, 9)[2] == 255);
  draw_line(canvas, -50, 0, 50, 100, {1, 2, 3}, 3);  // off-image parts are clipped, not a crash

  // Grey images receive the luma; on RGBA, untouched pixels keep their exact values.
  Image grey(10, 10, 1, 0);
  fill_rect(grey, 2, 2, 3, 3, {255, 0, 0});
  CHECK(int(*grey.at(3, 3)) == (299 * 255 + 500) / 1000);
  CHECK(int(*grey.at(6, 6)) == 0);
  Image rgba(10, 10, 4, 0);
  for (size_t i = 3; i < rgba.pixels.size(); i += 4) rgba.pixels[i - 3] = 200, rgba.pixels[i] = 10;
  fill_circle(rgba, 2, 2, 1, {0, 0, 255});
  CHECK(rgba.at(2, 2)[2] == 255);
  CHECK(rgba.at(2, 2)[3] == 255);
  CHECK(rgba.at(8, 8)[0] == 200);
  CHECK(rgba.at(8, 8)[3] == 10);

  Image five(4, 4, 1);
  five.channels = 5;
  CHECK_THROWS_WITH_AS(Canvas{five}, has("5 channels"), Error);
  CHECK_THROWS_WITH_AS(draw_text(img, 0, 0, "bad \xff utf-8", {0, 0, 0}), has("cairo"), Error);
}

TEST_CASE("data: draw_line_smooth is anti-aliased") {
  Image img(40, 40, 1, 255);
  draw_line_smooth(img, 2.f, 3.f, 37.f, 30.f, {0, 0, 0}, 1.5f);
  int intermediate = 0, dark = 0;
  for (uint8_t v : img.pixels) intermediate += v > 20 && v < 235, dark += v < 128;
  CHECK(intermediate > 30);  // edge pixels partly covered: grey, not black or white
  CHECK(dark > 30);
  CHECK(*img.at(2, 3) < 128);  // the line runs through its end points
  CHECK(*img.at(37, 30) < 128);
  Image crisp(40, 40, 1, 255);
  draw_line(crisp, 2, 3, 37, 30, {0, 0, 0});
  CHECK(std::all_of(crisp.pixels.begin(), crisp.pixels.end(), [](uint8_t v) { return v == 0 || v == 255; }));
}

TEST_CASE("data: plot_curves draws the series, the legend, and checks its input") {
  PlotOptions opt;
  opt.width = 500, opt.height = 300, opt.title = "loss", opt.x_label = "epoch", opt.y_label = "loss";
  opt.y_min = 0, opt.y_max = 10;
  // Unnamed series (no legend): one rises, one falls, over x = 1..10.
  std::vector<double> up, down;
  for (int i = 0; i < 10; ++i) up.push_back(i + 0.5), down.push_back(9.5 - i);
  Image chart = plot_curves({{"", up, {}}, {"", down, {}}}, opt);
  CHECK(chart.width == 500);
  CHECK(chart.height == 300);
  CHECK(chart.channels == 3);
  const Rgb blue{31, 119, 180}, orange{255, 127, 14};  // tab10's first two colours
  const ColourRun blue_left = find_colour(chart, blue, 0, 200), blue_right = find_colour(chart, blue, 300, 500);
  const ColourRun orange_left = find_colour(chart, orange, 0, 200), orange_right = find_colour(chart, orange, 300, 500);
  REQUIRE(blue_left.count > 50);
  REQUIRE(blue_right.count > 50);
  REQUIRE(orange_left.count > 50);
  REQUIRE(orange_right.count > 50);
  CHECK(blue_left.mean_y > blue_right.mean_y + 80);  // rising: lower on the left (rows grow downward)
  CHECK(orange_left.mean_y + 80 < orange_right.mean_y);

  // Naming a rising series adds a legend, in the corner the line leaves free
  // (upper left, not the default upper right), with dark text in it.
  Image named = plot_curves({{"training loss", up, {}}}, opt);
  const PixelRect legend = diff_box(plot_curves({{"", up, {}}}, opt), named);
  REQUIRE(!legend.empty());
  CHECK(legend.x + legend.w < 250);
  CHECK(legend.y + legend.h < 150);
  CHECK(legend.w > text_width("training loss", 12));
  int text_pixels = 0;
  for (int y = legend.y; y < legend.y + legend.h; ++y)
    for (int x = legend.x; x < legend.x + legend.w; ++x) text_pixels += named.at(x, y)[0] < 100 && named.at(x, y)[2] < 100;
  CHECK(text_pixels > 30);

  CHECK(count_non(plot_curves({{"a", {2.0, 1.2, 0.8}, {}}}, {}), 255, 255, 255) > 2000);
  CHECK_THROWS_WITH_AS(plot_curves({{"bad", {1, 2}, {1}}}), has("series 'bad' has 1 x values but 2 y values"),
                       Error);
  PlotOptions zero;
  zero.width = 0;
  CHECK_THROWS_WITH_AS(plot_curves({{"a", {1, 2}, {}}}, zero), has("image size 0x400 is too small"), Error);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(plot_curves({{"a", {1, 2}, {}}, {"diverged", {nan, nan}, {}}}),
                       has("series 'diverged' has no finite point"), Error);
  CHECK_THROWS_WITH_AS(plot_curves({}), has("nothing to plot"), Error);
  // A gap (NaN) in a series is fine.
  CHECK(count_non(plot_curves({{"gap", {1, nan, 3, 2}, {}}}), 255, 255, 255) > 2000);
}

TEST_CASE("data: plot_decision_regions") {
  TensorDataset moons = make_moons(90, 0.1f, 3, 3);
  int64_t calls = 0;
  auto classify = [&calls](const std::vector<float>& xy) {  // a fixed rule: by x coordinate
    ++calls;
    std::vector<int64_t> out(xy.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) out[i] = xy[2 * i] < 0.5f ? 0 : xy[2 * i] < 1.5f ? 1 : 2;
    return out;
  };
  Image regions = plot_decision_regions(classify, moons.images, moons.labels, 320, 240, "moons");
  CHECK(calls == 1);  // the whole grid in one call
  CHECK(regions.width == 320);
  CHECK(regions.height == 240);
  CHECK(count_non(regions, 255, 255, 255) > 320 * 240 / 2);
  // The points are drawn in their class colours.
  CHECK(find_colour(regions, {31, 119, 180}, 0, 320).count > 20);
  CHECK(find_colour(regions, {44, 160, 44}, 0, 320).count > 20);
  CHECK_THROWS_WITH_AS(plot_decision_regions(classify, moons.labels, moons.labels, 320, 240),
                       has("points must be Float32 [n, 2]"), Error);
  CHECK_THROWS_WITH_AS(plot_decision_regions(classify, moons.images, moons.labels, 0, 0), has("too small"), Error);
}

TEST_CASE("data: annotate lays out labels on a dense page without overlaps") {
  // 30 x 20 touching 28-px boxes, with confidences of every colour.
  const std::vector<DigitBox> grid = packed_boxes(30, 20, {28});
  std::vector<int64_t> labels;
  std::vector<float> conf;
  for (size_t i = 0; i < grid.size(); ++i) labels.push_back(int64_t(i % 10)), conf.push_back(i % 3 == 0 ? 0.97f : i % 3 == 1 ? 0.7f : 0.3f);
  const int width = 30 * 28 + 20, height = 20 * 28 + 20;
  const auto tags = layout_labels(grid, labels, conf, width, height);
  REQUIRE(tags.size() == grid.size());
  check_layout(tags, width, height);
  CHECK(tags[0].font_size >= 0.45 * 28);

  // annotate draws every box's border and the tags.
  Image page(width, height, 1, 255);
  Image before = to_rgb(page);
  annotate(page, grid, labels, conf);
  REQUIRE(page.channels == 3);
  for (const DigitBox& d : grid) {
    int changed = 0;
    for (int x = d.x - 1; x <= d.x + d.w; ++x)
      for (int y : {d.y - 1, d.y + d.h}) changed += !std::equal(page.at(x, y), page.at(x, y) + 3, before.at(x, y));
    CHECK(changed > d.w / 2);
  }

  // Rows of 20- to 90-px boxes, and a sparse page where the confidence fits in every label.
  const std::vector<DigitBox> mixed = packed_boxes(14, 9, {20, 35, 60, 90, 45});
  check_layout(layout_labels(mixed, std::vector<int64_t>(mixed.size(), 8), std::vector<float>(mixed.size(), 0.5f), 1300, 1000), 1300, 1000);
  std::vector<DigitBox> sparse = packed_boxes(3, 1, {40});
  for (size_t i = 0; i < sparse.size(); ++i) sparse[i].x = 20 + int(i) * 150, sparse[i].y = 60;
  const auto roomy = layout_labels(sparse, {1, 2, 3}, {0.95f, 0.95f, 0.95f}, 500, 200);
  check_layout(roomy, 500, 200);
  CHECK(roomy[0].text == "1 95%");
  CHECK(roomy[0].rect.y + roomy[0].rect.h <= sparse[0].y);  // above its box
  CHECK_THROWS_WITH_AS(layout_labels(sparse, {1, 2}, {}, 500, 200), has("3 digits but 2 labels"), Error);
}
