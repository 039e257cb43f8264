// Hostile inputs and failing outputs (issue 10, parts 3-5): crafted images,
// checkpoints, model specs and IDX files must give one-line errors before any
// large allocation; outputs are atomic and checked before training; --resume
// with changed flags says what it uses; empty datasets are errors.
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <thread>
#include <tape/tape.hpp>

// Header-only xxHash (no link dependency): re-signs crafted checkpoints.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "models.hpp"
#include "error_of.hpp"
#include "temp_dir.hpp"
#include "trainer.hpp"

using namespace tape;
using tape_test::error_of;
using namespace tape::examples;
namespace fs = std::filesystem;

namespace {

const std::string kBuildDir = TAPE_BUILD_DIR;
const std::string kMnistDir = std::string(TAPE_SOURCE_DIR) + "/data/mnist";

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
}

/// True if `f` throws a one-line tape::Error containing every one of `parts`.
bool one_line_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  const std::string msg = error_of(f);
  bool ok = !msg.empty() && msg.find('\n') == std::string::npos && msg.rfind("NOT A", 0) != 0;
  for (const auto& p : parts) ok = ok && msg.find(p) != std::string::npos;
  if (!ok) MESSAGE("error was: ", msg);
  return ok;
}

/// Runs `f` in a forked child that is killed after `seconds` (a loader that
/// blocks on a FIFO must not hang the suite); true if it returned true.
bool in_child(const std::function<bool()>& f, unsigned seconds = 20) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(seconds);
    bool ok = false;
    try {
      ok = f();
    } catch (...) {
    }
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/// In a child: lets the address space grow by at most `extra` bytes, so a loader
/// that trusts a crafted length fails (bad_alloc) instead of taking the machine.
/// Not under AddressSanitizer, whose shadow memory needs terabytes of addresses.
void cap_address_space(size_t extra) {
#if !defined(__SANITIZE_ADDRESS__)
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmSize:", 0) == 0) {
      const rlimit lim{rlim_t(std::stoull(line.substr(7)) * 1024 + extra), RLIM_INFINITY};
      ::setrlimit(RLIMIT_AS, &lim);
    }
#else
  (void)extra;
#endif
}

struct Exec {
  int code = -1;
  std::string out;
};
/// Runs a shell command, capturing stdout and stderr.
Exec exec(const std::string& cmd) {
  Exec r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(p);
  std::array<char, 4096> buf{};
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

size_t lines(const std::string& s) { return size_t(std::count(s.begin(), s.end(), '\n')); }

bool have_mnist() { return fs::exists(kMnistDir + "/t10k-images-idx3-ubyte"); }

void put_be32(std::string& s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s.push_back(char((v >> (8 * i)) & 0xff));
}

/// A PNG signature and IHDR chunk claiming w x h RGB, then one IDAT and IEND
/// (CRCs are not checked by the decoder).
std::string png_header(uint32_t w, uint32_t h) {
  std::string s("\x89PNG\r\n\x1a\n", 8);
  put_be32(s, 13);
  s += "IHDR";
  put_be32(s, w);
  put_be32(s, h);
  s += std::string("\x08\x02\x00\x00\x00", 5);
  put_be32(s, 0);
  put_be32(s, 8);
  s += "IDAT";
  s += std::string("\x78\x9c\x63\x60\x00\x00\x00\x02\x00\x01", 8);
  put_be32(s, 0);
  put_be32(s, 0);
  s += "IEND";
  put_be32(s, 0);
  return s;
}

/// A BMP header claiming w x h at 24 bits with no pixel data.
std::string bmp_header(int32_t w, int32_t h) {
  std::string s = "BM";
  auto le32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
  };
  le32(54);  // file size (a lie is fine)
  le32(0);
  le32(54);  // pixel offset
  le32(40);  // BITMAPINFOHEADER
  le32(uint32_t(w));
  le32(uint32_t(h));
  s += std::string("\x01\x00\x18\x00", 4);  // planes 1, 24 bpp
  for (int i = 0; i < 6; ++i) le32(0);
  return s;
}

// --- checkpoint crafting -------------------------------------------------------

uint64_t get_u64(const std::string& s, size_t at) {
  uint64_t v = 0;
  std::memcpy(&v, s.data() + at, 8);
  return v;
}

/// Overwrites the 8-byte little-endian field at `at` and re-signs the payload,
/// so only the bounded decoder stands between the file and a huge allocation.
std::string with_field(std::string file, size_t at, uint64_t value) {
  std::memcpy(file.data() + at, &value, 8);
  const uint64_t sum = XXH3_64bits(file.data() + 32, file.size() - 32);  // format version 2
  std::memcpy(file.data() + 24, &sum, 8);
  return file;
}

}  // namespace

TEST_CASE("hostile: images — pixel limit from the header, only PNG/JPEG/BMP, no directories or FIFOs") {
  TempDir d("hostile");
  SUBCASE("huge dimensions in a tiny header are refused before decoding") {
    spit(d / "bomb.png", png_header(15000, 15000));
    spit(d / "bomb.bmp", bmp_header(30000, 30000));
    CHECK(one_line_error([&] { data::load_image(d / "bomb.png"); },
                         {d / "bomb.png", "15000x15000", "more than the limit of 100000000"}));
    CHECK(one_line_error([&] { data::load_image(d / "bomb.bmp"); }, {d / "bomb.bmp", "more than the limit"}));
    // the limit is configurable and applies to real images too
    data::Image img(20, 10, 3, 7);
    data::save_png(img, d / "ok.png");
    const int64_t old = data::max_image_pixels();
    data::set_max_image_pixels(199);
    CHECK(one_line_error([&] { data::load_image(d / "ok.png"); }, {"200 pixels, more than the limit of 199"}));
    data::set_max_image_pixels(200);
    CHECK(data::load_image(d / "ok.png").pixels == img.pixels);
    data::set_max_image_pixels(old);
    CHECK(one_line_error([] { data::set_max_image_pixels(0); }, {"positive"}));
  }
  SUBCASE("a lying header cannot make the decoder allocate much: truncated pixel data") {
    spit(d / "short.png", png_header(4000, 4000));  // 16 Mpx claimed, 8 bytes of zlib data
    CHECK(one_line_error([&] { data::load_image(d / "short.png"); }, {d / "short.png"}));
  }
  SUBCASE("formats stb decodes but the docs do not name are refused") {
    const std::string gif("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,"
                          "\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00;",
                          43);
    const std::vector<std::pair<std::string, std::string>> files = {
        {"a.gif", gif},
        {"a.pgm", std::string("P5\n2 2\n255\n\x01\x02\x03\x04", 15)},
        {"a.hdr", std::string("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 1\n\x80\x80\x80\x80", 48)},
        {"a.psd", std::string("8BPS\x00\x01", 6) + std::string(40, '\0')},
        {"a.tga", std::string("\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00\x18\x00\x10\x20\x30", 21)},
    };
    const std::vector<std::string> names = {"GIF", "PNM", "HDR", "PSD", "not a PNG, JPEG or BMP"};
    for (size_t i = 0; i < files.size(); ++i) {
      spit(d / files[i].first, files[i].second);
      INFO(files[i].first);
      CHECK(one_line_error([&] { data::load_image(d / files[i].first); }, {d / files[i].first, names[i], "supported"}));
    }
  }
  SUBCASE("a directory, a FIFO and a device are named, and nothing blocks") {
    CHECK(one_line_error([&] { data::load_image(d.dir.string()); }, {d.dir.string(), "is a directory"}));
    REQUIRE(::mkfifo((d / "fifo.png").c_str(), 0600) == 0);
    CHECK(in_child([&] { return one_line_error([&] { data::load_image(d / "fifo.png"); }, {"fifo.png", "FIFO"}); }));
    CHECK(one_line_error([] { data::load_image("/dev/zero"); }, {"/dev/zero", "character device"}));
    CHECK(one_line_error([&] { data::load_image(d / "missing.png"); }, {"missing.png", "No such file"}));
  }
}

TEST_CASE("hostile: checkpoints — length fields are checked against the bytes that remain") {
  TempDir d("hostile");
  auto net = build_model(ModelSpec{});  // mlp 784-50-10: fc1.weight, fc1.bias, fc2.weight, fc2.bias
  const std::string path = d / "ok.ckpt";
  save_checkpoint(path, *net, nullptr, {"SPECMARK", 1, {}, {}});
  const std::string good = slurp(path);
  const size_t spec_at = good.find("SPECMARK");
  const size_t name_at = good.find("fc1.weight");
  REQUIRE(spec_at != std::string::npos);
  REQUIRE(name_at != std::string::npos);
  REQUIRE(get_u64(good, spec_at - 8) == 8);                   // the model spec's length
  REQUIRE(get_u64(good, name_at - 8) == 10);                  // the first record's name length
  REQUIRE(get_u64(good, name_at - 8 - 4 - 8) == 4);           // count of parameter records (+ item version)
  REQUIRE(get_u64(good, name_at + 10 + 4) == 2);              // fc1.weight's shape rank
  REQUIRE(get_u64(good, name_at + 10 + 4 + 8) == 50);         // its first dimension

  // 48 GB, 2^60 and 10^12-item claims from a file of ~160 kB, each with a valid checksum
  const std::vector<std::pair<size_t, uint64_t>> crafted = {
      {spec_at - 8, uint64_t(48) << 30},           // string length
      {name_at - 8, uint64_t(1) << 60},            // record name length
      {name_at - 8 - 4 - 8, 1'000'000'000'000},    // number of records (vector<TensorRecord>::reserve)
      {name_at + 10 + 4, uint64_t(1) << 40},       // shape rank (vector<int64_t>::resize)
  };
  for (const auto& [at, value] : crafted) {
    INFO("field at byte ", at, " set to ", value);
    spit(d / "bad.ckpt", with_field(good, at, value));
    CHECK(in_child([&] {
      cap_address_space(size_t(512) << 20);
      return one_line_error([&] { read_checkpoint_meta(d / "bad.ckpt"); },
                            {"read_checkpoint_meta: '" + d / "bad.ckpt" + "' has a valid checksum", "exceeds the",
                             "bytes that remain"});
    }));
    CHECK(one_line_error([&] { load_checkpoint(d / "bad.ckpt", *net); }, {"bad.ckpt", "bytes that remain"}));
  }
  // a shape whose element count overflows, with matching checksum
  spit(d / "bad.ckpt", with_field(good, name_at + 10 + 4 + 8, uint64_t(1) << 62));
  CHECK(one_line_error([&] { load_checkpoint(d / "bad.ckpt", *net); }, {"bad.ckpt", "fc1.weight", "invalid shape"}));

  SUBCASE("a payload cut short anywhere, with a matching checksum, is an error, not a crash") {
    // 30 bytes end right after Boost's "serialization::archive" signature, where
    // Boost reads the library version from an exhausted stream (a fuzzer find)
    for (size_t len : {size_t(0), size_t(8), size_t(29), size_t(30), size_t(31), size_t(40), spec_at - 32,
                       name_at - 32 + 3, good.size() - 32 - 1}) {
      INFO("payload cut to ", len, " bytes");
      std::string cut = good.substr(0, 32 + len);
      cut = with_field(cut, 16, len);  // the payload size; with_field also reseals the checksum
      spit(d / "cut.ckpt", cut);
      CHECK(one_line_error([&] { load_checkpoint(d / "cut.ckpt", *net); }, {"cut.ckpt", "cannot be decoded"}));
    }
  }
  SUBCASE("absurd epoch counts are rejected") {
    for (int64_t epoch : {int64_t(-1), int64_t(1) << 50}) {
      save_checkpoint(d / "epoch.ckpt", *net, nullptr, {"mlp:784-50-10:relu:dropout=0", epoch, {}, {}});
      CHECK(one_line_error([&] { read_checkpoint_meta(d / "epoch.ckpt"); }, {"epoch.ckpt", "absurd epoch count"}));
    }
  }
  SUBCASE("a directory or FIFO as a checkpoint") {
    CHECK(one_line_error([&] { read_checkpoint_meta(d.dir.string()); }, {"is a directory"}));
    REQUIRE(::mkfifo((d / "fifo.ckpt").c_str(), 0600) == 0);
    CHECK(in_child([&] { return one_line_error([&] { read_checkpoint_meta(d / "fifo.ckpt"); }, {"FIFO"}); }));
  }
}

TEST_CASE("hostile: model specs are validated before a model is built") {
  CHECK(ModelSpec::parse("mlp:784-370-115-50-10:tanh:dropout=0.2").parameter_count() == 339'425);
  CHECK(one_line_error([] { ModelSpec::parse("mlp:784-100000000-10:relu:dropout=0"); }, {"hidden size 1", "1000000"}));
  CHECK(one_line_error([] { ModelSpec::parse("mlp:784-900000-900000-900000-10:relu:dropout=0"); },
                       {"parameters, more than the limit of 1000000000"}));
  std::string deep = "mlp:784";
  for (int i = 0; i < 200; ++i) deep += "-2";
  CHECK(one_line_error([&] { ModelSpec::parse(deep + "-10:relu:dropout=0"); }, {"200 hidden layers"}));
  CHECK(one_line_error([] { ModelSpec::parse("mlp:784-50-10:relu:dropout=abc"); }, {"dropout 'abc' is not a number"}));
  CHECK(one_line_error([] { ModelSpec::parse("mlp:784-50-10:relu:dropout=nan"); }, {"dropout"}));
  CHECK(one_line_error([] { ModelSpec::parse("mlp:784-50-10:relu:dropout=1e99"); }, {"dropout"}));
  CHECK(one_line_error([] { ModelSpec::parse("mlp:784-50-10:re\nlu:dropout=0"); }, {"re?lu"}));
  CHECK(one_line_error([] { ModelSpec::parse("mlp:784-99999999999999999999-10:relu:dropout=0"); }, {"not a number"}));
  CHECK(one_line_error([] { ModelSpec::parse(std::string(100000, 'x')); }, {"longer than 4096"}));
  ModelSpec big;
  big.hidden = {1'000'000, 1'000'000};
  CHECK(one_line_error([&] { build_model(big); }, {"more than the limit"}));
}

TEST_CASE("hostile: IDX files — directories, FIFOs, devices and empty sets") {
  TempDir d("hostile");
  CHECK(one_line_error([&] { data::load_idx_images(d.dir.string()); }, {d.dir.string(), "is a directory"}));
  CHECK(one_line_error([] { data::load_idx_labels("/dev/null"); }, {"/dev/null", "character device"}));
  REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
  CHECK(in_child([&] { return one_line_error([&] { data::load_idx_images(d / "fifo"); }, {"fifo", "FIFO"}); }));
  // a header whose counts overflow or exceed the file
  std::string hdr;
  put_be32(hdr, 0x803);
  put_be32(hdr, 0xffffffff);
  put_be32(hdr, 0xffffffff);
  put_be32(hdr, 0xffffffff);
  spit(d / "huge", hdr);
  CHECK(one_line_error([&] { data::load_idx_images(d / "huge"); }, {"huge", "corrupt header"}));

  // MNIST files with 0 items: an error, not a run that prints -nan
  for (const std::string split : {"train", "t10k"}) {
    std::string images, labels;
    for (uint32_t v : {0x803u, 0u, 28u, 28u}) put_be32(images, v);
    for (uint32_t v : {0x801u, 0u}) put_be32(labels, v);
    spit(d / (split + "-images-idx3-ubyte"), images);
    spit(d / (split + "-labels-idx1-ubyte"), labels);
  }
  CHECK(one_line_error([&] { data::load_mnist(d.dir.string(), "test"); }, {"t10k-images-idx3-ubyte", "0 images"}));
}

TEST_CASE("hostile: empty datasets are errors, not NaN") {
  data::TensorDataset empty{zeros({0, 1, 28, 28}), Tensor::empty({0}, Dtype::Int64)};
  CHECK(one_line_error([&] { data::DataLoader(empty, 10); }, {"DataLoader", "empty"}));
  auto net = build_model(ModelSpec{});
  CHECK(one_line_error([&] { evaluate(*net, empty); }, {"evaluate", "empty"}));
}

TEST_CASE("hostile: outputs are atomic — a full disk or a bad path keeps the old file") {
  TempDir d("hostile");
  const std::string png = d / "plot.png";
  spit(png, "OLD CONTENT");
  data::Image img(300, 300, 3);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t(i * 7919 % 251);  // incompressible-ish

  SUBCASE("the disk fills up (RLIMIT_FSIZE)") {
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    rlimit small = old;
    small.rlim_cur = 4096;
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    const bool png_failed = one_line_error([&] { data::save_png(img, png); }, {"save_png: cannot write '" + png, "File too large"});
    const bool text_failed = one_line_error([&] { write_file_atomically(d / "a.csv", std::string(10000, 'x'), "--csv"); },
                                            {"--csv: cannot write", "File too large"});
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    CHECK(png_failed);
    CHECK(text_failed);
    CHECK(slurp(png) == "OLD CONTENT");
    CHECK(!fs::exists(d / "a.csv"));
    CHECK(d.entries() == 1);  // no temp file left behind
  }
  SUBCASE("unwritable paths: a missing directory, a parent that is a file, a directory") {
    CHECK(one_line_error([&] { data::save_png(img, d / "no/such/dir/x.png"); }, {"no/such/dir/x.png", "No such file"}));
    CHECK(one_line_error([&] { data::save_png(img, png + "/x.png"); }, {"Not a directory"}));
    CHECK(one_line_error([&] { check_writable(png + "/x.csv", "--csv"); }, {"--csv: cannot write", "Not a directory"}));
    CHECK(one_line_error([&] { check_writable(d.dir.string(), "--plot"); }, {"--plot", "is a directory"}));
    check_writable(d / "fine.png", "--plot");
    CHECK(slurp(png) == "OLD CONTENT");
    CHECK(d.entries() == 1);
  }
  SUBCASE("programs: a full disk is exit 2 with one line, the old file intact") {
    // dash's ulimit -f counts 512-byte blocks; an ignored SIGXFSZ is inherited across exec
    const std::string limited = "ulimit -f 2; trap '' XFSZ; exec ";
    Exec r = exec(limited + kBuildDir + "/examples/moons --epochs 5 --samples 60 --plot " + png);
    INFO(r.out);
    CHECK(r.code == 2);
    CHECK(r.out.find("moons: error: save_png: cannot write '" + png + "'") != std::string::npos);
    CHECK(slurp(png) == "OLD CONTENT");
    const std::string dot = d / "g.dot";
    spit(dot, "OLD DOT");
    r = exec(limited + kBuildDir + "/tools/tape-graph --model lenet5 --out " + dot);
    CHECK(r.code == 2);
    CHECK(lines(r.out) == 1);
    CHECK(slurp(dot) == "OLD DOT");
    CHECK(d.entries() == 2);
  }
  SUBCASE("programs: an unwritable --plot/--csv/--save fails before training") {
    for (const std::string flag : {"--plot", "--csv", "--save"}) {
      Exec r = exec(kBuildDir + "/examples/mnist_mlp --data " + kMnistDir + " --limit-train 100 --epochs 1 " + flag +
                    " " + png + "/out");
      INFO(flag, ": ", r.out);
      CHECK(r.code == 2);
      CHECK(lines(r.out) == 1);
      CHECK(r.out.find("mnist_mlp: error: " + flag + ": cannot write '" + png + "/out'") == 0);
    }
    Exec r = exec(kBuildDir + "/examples/moons --plot " + d.dir.string());
    CHECK(r.code == 2);
    CHECK(r.out.find("is a directory") != std::string::npos);
    CHECK(r.out.find("training accuracy") == std::string::npos);
  }
}

TEST_CASE("hostile: two threads writing one output at once leave one whole file") {
  // Each write has its own temporary file, so the result is one writer's bytes,
  // never a mix (with one temp name per process, the second writer truncated the
  // first one's file under it).
  TempDir d("hostile");
  const std::string path = d / "shared.csv";
  const std::string a(200000, 'a'), b(150000, 'b');
  std::thread ta([&] { for (int k = 0; k < 50; ++k) write_file_atomically(path, a, "--csv"); });
  std::thread tb([&] { for (int k = 0; k < 50; ++k) write_file_atomically(path, b, "--csv"); });
  ta.join();
  tb.join();
  const std::string got = slurp(path);
  CHECK((got == a || got == b));
  CHECK(d.entries() == 1);  // no temp file left behind
}

TEST_CASE("hostile: --resume with changed flags applies them and says so, or refuses with exit 2" *
          doctest::test_suite("slow")) {
  if (!have_mnist()) {
    MESSAGE("MNIST not found in " << kMnistDir << ": skipped (run tools/fetch_mnist.sh)");
    return;
  }
  TempDir d("hostile");
  const std::string mlp = kBuildDir + "/examples/mnist_mlp --data " + kMnistDir + " --limit-train 200 --batch-size 100";
  const std::string ckpt = d / "a.ckpt";
  REQUIRE(exec(mlp + " --hidden 16 --lr 0.002 --epochs 1 --quiet --save " + ckpt).code == 0);

  // not given: the checkpoint's values, and the summary line prints them
  Exec r = exec(mlp + " --resume " + ckpt + " --epochs 2");
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("training mlp:784-16-10:relu:dropout=0 on 200 images, batch 100, adam lr 0.002,") !=
        std::string::npos);
  CHECK(r.out.find("resume: --epochs 2 (checkpoint had 1)") != std::string::npos);

  // given and different: applied, in one line, and the used value is printed
  r = exec(mlp + " --hidden 16 --resume " + ckpt + " --epochs 2 --lr 0.001");
  CHECK(r.code == 0);
  CHECK(r.out.find("resume: --lr 0.001 (checkpoint had 0.002)") != std::string::npos);
  CHECK(r.out.find("adam lr 0.001,") != std::string::npos);
  r = exec(kBuildDir + "/examples/mnist_mlp --data " + kMnistDir + " --resume " + ckpt + " --epochs 2 --batch-size 50 --quiet");
  CHECK(r.code == 0);
  CHECK(r.out.find("resume: --batch-size 50 (checkpoint had 100)") != std::string::npos);

  // refused: another network or another optimizer
  for (const std::string& flags : {std::string("--hidden 32"), std::string("--optimizer sgd")}) {
    r = exec(mlp + " --resume " + ckpt + " --epochs 2 " + flags);
    INFO(flags, ": ", r.out);
    CHECK(r.code == 2);
    CHECK(lines(r.out) == 1);
    CHECK(r.out.find("mnist_mlp: error: --resume: ") == 0);
  }
}
