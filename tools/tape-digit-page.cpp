// tape-digit-page: renders MNIST test digits on a synthetic "photo" of a page and
// writes the page (PNG) plus the true boxes and labels (JSON), to exercise
// tape::vision::find_digits(). The work is done by tape::vision::make_digit_page().
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <iostream>
#include <string>
#include <vector>

#include <tape/data/dataset.hpp>
#include <tape/data/image.hpp>
#include <tape/io/file.hpp>

#include "cli.hpp"
#include "tape_vision/annotate.hpp"
#include "tape_vision/digit_page.hpp"
#include "tape_vision/digits.hpp"
#include "tape_vision/draw.hpp"

using namespace tape;
using namespace tape::data;
using namespace tape::vision;
using namespace tape::examples;
namespace fs = std::filesystem;

namespace {

struct Page {
  PageOptions opt;
  std::string file;
  std::vector<TruthBox> truth;
  int width = 0, height = 0;
};

/// `dir/stem-suffix.ext` for "both" mode.
std::string with_suffix(const std::string& path, const std::string& suffix) {
  const fs::path p(path);
  return (p.parent_path() / (p.stem().string() + "-" + suffix + p.extension().string())).string();
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

void write_truth(const std::string& path, const std::string& data_dir, const std::vector<Page>& pages) {
  std::ostringstream f;
  f << "{\n  \"source\": \"" << json_escape(data_dir) << " (MNIST test split)\",\n  \"pages\": [\n";
  for (size_t p = 0; p < pages.size(); ++p) {
    const Page& pg = pages[p];
    f << "    {\"file\": \"" << json_escape(pg.file) << "\", \"mode\": \"" << polarity_name(pg.opt.polarity)
      << "\", \"seed\": " << pg.opt.seed << ", \"width\": " << pg.width << ", \"height\": " << pg.height
      << ",\n     \"digits\": [\n";
    for (size_t i = 0; i < pg.truth.size(); ++i) {
      const TruthBox& t = pg.truth[i];
      f << "       {\"label\": " << t.label << ", \"index\": " << t.index << ", \"x\": " << t.x << ", \"y\": " << t.y
        << ", \"w\": " << t.w << ", \"h\": " << t.h << "}" << (i + 1 < pg.truth.size() ? ",\n" : "\n");
    }
    f << "     ]}" << (p + 1 < pages.size() ? ",\n" : "\n");
  }
  f << "  ]\n}\n";
  write_file_atomically(path, f.str(), "--truth");
}

}  // namespace

int main(int argc, char** argv) {
  return run_program("tape-digit-page", [&] {
    std::string data = "data/mnist", out = "page.png", truth_path = "truth.json", mode = "both";
    int count = 40, min_height = 28, max_height = 90;
    int64_t seed = 1;
    float gradient = PageOptions{}.gradient, noise = PageOptions{}.noise;
    po::options_description desc("Options");
    desc.add_options()
        ("help,h", "show this help")
        ("data", po::value(&data)->default_value(data), "directory with the MNIST IDX files")
        ("out", po::value(&out)->default_value(out), "output PNG")
        ("truth", po::value(&truth_path)->default_value(truth_path), "output JSON with the true boxes and labels")
        ("count", po::value(&count)->default_value(count), "digits per page")
        ("seed", po::value(&seed)->default_value(seed), "random seed (same seed, same page)")
        ("mode", po::value(&mode)->default_value(mode), "dark-on-light | light-on-dark | both")
        ("min-height", po::value(&min_height)->default_value(min_height), "smallest digit height in pixels")
        ("max-height", po::value(&max_height)->default_value(max_height), "largest digit height in pixels")
        ("gradient", po::value(&gradient)->default_value(gradient, "0.55"), "lighting fall-off across the page, in [0, 1)")
        ("noise", po::value(&noise)->default_value(noise, "0.03"), "pixel noise std-dev, in [0, 0.5]");
    const std::string usage =
        "usage: tape-digit-page [options]\n"
        "Renders random MNIST test digits (random size, position and stroke weight) on a\n"
        "page: dark ink on paper under a lighting gradient, or light chalk on a dark board,\n"
        "with mild noise. Writes the PNG and a JSON with each digit's box, label and index.\n"
        "--mode both writes two pages, <out stem>-dark-on-light.png and\n"
        "<out stem>-light-on-dark.png (the second with seed+1, so other digits); the JSON\n"
        "lists every page.";
    if (!parse_flags(argc, argv, desc, usage)) return 0;
    TAPE_CHECK(count > 0, "--count must be positive, got ", count);
    TAPE_CHECK(seed >= 0, "--seed must be >= 0, got ", seed);
    TAPE_CHECK(min_height >= 8 && max_height >= min_height, "--min-height/--max-height: need 8 <= min <= max, got ",
               min_height, " and ", max_height);
    TAPE_CHECK(gradient >= 0 && gradient < 1, "--gradient must be in [0, 1), got ", gradient);
    TAPE_CHECK(noise >= 0 && noise <= 0.5f, "--noise must be in [0, 0.5], got ", noise);
    TAPE_CHECK(mode == "dark-on-light" || mode == "light-on-dark" || mode == "both",
               "--mode must be dark-on-light, light-on-dark or both, got '", mode, "'");

    PageOptions base;
    base.count = count;
    base.seed = uint64_t(seed);
    base.min_height = min_height;
    base.max_height = max_height;
    base.gradient = gradient;
    base.noise = noise;
    std::vector<Page> pages;
    if (mode != "light-on-dark") {
      Page p{base, mode == "both" ? with_suffix(out, "dark-on-light") : out, {}};
      p.opt.polarity = Polarity::DarkOnLight;
      pages.push_back(p);
    }
    if (mode != "dark-on-light") {
      Page p{base, mode == "both" ? with_suffix(out, "light-on-dark") : out, {}};
      p.opt.polarity = Polarity::LightOnDark;
      if (mode == "both") p.opt.seed += 1;
      pages.push_back(p);
    }

    const Dataset test = load_mnist(data, "test");
    for (Page& p : pages) {
      const Image img = make_digit_page(test, p.opt, &p.truth);
      p.width = img.width;
      p.height = img.height;
      save_png(img, p.file);
      std::cout << "wrote " << p.file << " (" << img.width << "x" << img.height << ", " << p.truth.size() << " "
                << polarity_name(p.opt.polarity) << " digits)\n";
    }
    write_truth(truth_path, data, pages);
    std::cout << "wrote " << truth_path << "\n";
    return 0;
  });
}
