// Writes the binary seed files of tests/fuzz/corpus (the committed ones came
// from this program): tiny IDX files, checkpoints of mlp:784-1-10 (also in the
// old format version 1), their payloads, and small PNG/BMP/JPEG/TGA images.
//   build-fuzz/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
#include <tape/tape.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#pragma GCC diagnostic pop

#include "models.hpp"

namespace fs = std::filesystem;
using namespace tape;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string be32(uint32_t v) {
  return {char(v >> 24), char(v >> 16 & 0xff), char(v >> 8 & 0xff), char(v & 0xff)};
}

void idx(const fs::path& dir) {
  std::string images = be32(0x803) + be32(2) + be32(3) + be32(4);
  for (int i = 0; i < 24; ++i) images.push_back(char(i * 10));
  std::string labels = be32(0x801) + be32(3) + std::string{1, 7, 9};
  write(dir / "images-2x3x4", images);
  write(dir / "labels-3", labels);
  write(dir / "images-0x28x28", be32(0x803) + be32(0) + be32(28) + be32(28));
  write(dir / "images-truncated", images.substr(0, 20));
  write(dir / "labels-truncated", labels.substr(0, 9));
}

/// The same checkpoint in format version 1: the version field set to 1 and the
/// payload signed with FNV-1a-64 instead of XXH3-64 (the payload is unchanged).
std::string as_format1(std::string file) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 32; i < file.size(); ++i) h = (h ^ uint8_t(file[i])) * 0x100000001b3ull;
  file[8] = 1;
  for (int i = 0; i < 8; ++i) file[24 + size_t(i)] = char(h >> (8 * i));
  return file;
}

void checkpoints(const fs::path& whole, const fs::path& payload) {
  const fs::path tmp = fs::temp_directory_path() / "tape-make-seeds";
  fs::create_directories(tmp);
  manual_seed(1);
  const examples::ModelSpec spec = examples::ModelSpec::parse("mlp:784-1-10:relu:dropout=0");
  auto model = examples::build_model(spec);
  optim::Adam opt(model->parameters());
  Tensor x = ones({2, 1, 28, 28});
  Tensor y = zeros({2}, Dtype::Int64);
  Tensor loss = cross_entropy((*model)(x), y);
  loss.backward();
  opt.step();
  CheckpointMeta meta;
  meta.model_spec = spec.to_string();
  meta.epoch = 1;
  meta.scalars["test_accuracy"] = 0.5;
  meta.strings["note"] = "seed";
  save_checkpoint((tmp / "adam.ckpt").string(), *model, &opt, meta);
  save(*model, (tmp / "model.ckpt").string());
  // named without ".ckpt", which .gitignore skips
  for (const std::string name : {"adam", "model"}) {
    const std::string bytes = read(tmp / (name + ".ckpt"));
    write(whole / name, bytes);
    write(whole / (name + "-truncated"), bytes.substr(0, bytes.size() / 2));
    write(whole / (name + "-format1"), as_format1(bytes));
    write(payload / name, bytes.substr(32));
  }
  write(whole / "header-only", read(tmp / "model.ckpt").substr(0, 32));
  fs::remove_all(tmp);
}

void images(const fs::path& dir) {
  fs::create_directories(dir);
  const int w = 3, h = 2;
  unsigned char rgb[w * h * 3];
  for (int i = 0; i < w * h * 3; ++i) rgb[i] = static_cast<unsigned char>(i * 13);
  const std::string d = dir.string();
  stbi_write_png((d + "/rgb.png").c_str(), w, h, 3, rgb, w * 3);
  stbi_write_png((d + "/grey.png").c_str(), w, h, 1, rgb, w);
  stbi_write_bmp((d + "/rgb.bmp").c_str(), w, h, 3, rgb);
  stbi_write_jpg((d + "/rgb.jpg").c_str(), w, h, 3, rgb, 90);
  stbi_write_tga((d + "/rgba.tga").c_str(), w, h / 2, 4, rgb);
  const std::string png = read(dir / "rgb.png");
  write(dir / "rgb.png.truncated", png.substr(0, png.size() - 12));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_seeds CORPUS_DIR\n";
    return 2;
  }
  const fs::path root = argv[1];
  idx(root / "idx");
  checkpoints(root / "checkpoint", root / "checkpoint_payload");
  images(root / "image");
  return 0;
}
