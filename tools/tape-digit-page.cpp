// tape-digit-page: renders MNIST test digits on a synthetic page (a loose grid of
// varied digits, or a dense handwriting sheet, scanned or photographed) and writes
// the page (PNG) plus the true boxes and labels (JSON), to exercise
// tape::vision::find_digits(). The work is done by tape::vision::make_digit_page()
// and make_handwriting_page().
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
  std::string mode;  // dark-on-light | light-on-dark | scan | photo
  PageOptions opt;   // generated pages
  HandwritingOptions sheet;  // handwriting sheets (scan, photo)
  std::string file;
  std::vector<TruthBox> truth;
  int width = 0, height = 0;
};

/// `dir/stem-suffix.ext` for modes that write two pages.
std::string with_suffix(const std::string& path, const std::string& suffix) {
  const fs::path p(path);
  return (p.parent_path() / (p.stem().string() + "-" + suffix + p.extension().string())).string();
}

/// The truth JSON goes next to the page unless --truth says otherwise: page.png → page.json.
std::string default_truth(const std::string& out) { return fs::path(out).replace_extension(".json").string(); }

void write_truth(const std::string& path, const std::string& data_dir, const std::vector<Page>& pages) {
  nlohmann::ordered_json doc;
  doc["source"] = data_dir + " (MNIST test split)";
  doc["pages"] = nlohmann::ordered_json::array();
  for (const Page& pg : pages) {
    nlohmann::ordered_json page;
    page["file"] = pg.file;
    page["mode"] = pg.mode;
    page["seed"] = pg.mode == "scan" || pg.mode == "photo" || pg.mode == "dense" ? pg.sheet.seed : pg.opt.seed;
    page["width"] = pg.width;
    page["height"] = pg.height;
    page["digits"] = nlohmann::ordered_json::array();
    for (const TruthBox& t : pg.truth)
      page["digits"].push_back({{"label", t.label}, {"index", t.index}, {"x", t.x}, {"y", t.y}, {"w", t.w}, {"h", t.h}});
    doc["pages"].push_back(std::move(page));
  }
  write_file_atomically(path, doc.dump(1) + "\n", "--truth");
}

}  // namespace

int main(int argc, char** argv) {
  return run_program("tape-digit-page", [&] {
    std::string data = "data/mnist", out = "page.png", truth_path, mode = "both";
    int count = 40, min_height = 28, max_height = 90;
    int64_t seed = 1;
    float gradient = PageOptions{}.gradient, noise = PageOptions{}.noise;
    po::options_description desc("Options");
    desc.add_options()
        ("help,h", "show this help")
        ("data", po::value(&data)->default_value(data), "directory with the MNIST IDX files")
        ("out", po::value(&out)->default_value(out), "output PNG")
        ("truth", po::value(&truth_path), "output JSON with the true boxes and labels (default: --out with .json)")
        ("count", po::value(&count), "digits per page (default 40; 2500 for scan/photo sheets)")
        ("seed", po::value(&seed)->default_value(seed), "random seed (same seed, same page)")
        ("mode", po::value(&mode)->default_value(mode),
         "dark-on-light | light-on-dark | both (generated pages); scan | photo | dense | sheets (handwriting sheets)")
        ("min-height", po::value(&min_height), "smallest digit height in pixels (default 28; 24 for sheets)")
        ("max-height", po::value(&max_height), "largest digit height in pixels (default 90; 40 for sheets)")
        ("gradient", po::value(&gradient)->default_value(gradient, "0.55"), "lighting fall-off across the page, in [0, 1) (generated pages)")
        ("noise", po::value(&noise)->default_value(noise, "0.03"), "pixel noise std-dev, in [0, 0.5] (generated pages)");
    const std::string usage =
        "usage: tape-digit-page [options]\n"
        "Renders random MNIST test digits on a page and writes the PNG and a JSON with each\n"
        "digit's box, label and index (next to the PNG: page.png -> page.json).\n"
        "Generated pages: random size, position and stroke weight, dark ink on paper under a\n"
        "lighting gradient or light chalk on a dark board; --mode both writes\n"
        "<out stem>-dark-on-light.png and <out stem>-light-on-dark.png (seed+1).\n"
        "Handwriting sheets (docs/digits.md): thousands of digits in rows of numbers, some\n"
        "touching, slanted, blurred, on textured paper; scan is evenly lit, photo has\n"
        "uneven light, a shadow, low contrast, noise and JPEG-like blocks; --mode sheets\n"
        "writes <out stem>-scan.png and <out stem>-photo.png (seed+1); dense is the stress\n"
        "sheet, a scan with 18 % of the digits touching a neighbour. One JSON lists every page.";
    std::set<std::string> given;
    if (!parse_flags(argc, argv, desc, usage, &given)) return 0;
    TAPE_CHECK(mode == "dark-on-light" || mode == "light-on-dark" || mode == "both" || mode == "scan" ||
                   mode == "photo" || mode == "dense" || mode == "sheets",
               "--mode must be dark-on-light, light-on-dark, both, scan, photo, dense or sheets, got '", mode, "'");
    const bool sheets = mode == "scan" || mode == "photo" || mode == "dense" || mode == "sheets";
    if (!given.count("count")) count = sheets ? HandwritingOptions{}.count : PageOptions{}.count;
    if (!given.count("min-height")) min_height = sheets ? HandwritingOptions{}.min_height : PageOptions{}.min_height;
    if (!given.count("max-height")) max_height = sheets ? HandwritingOptions{}.max_height : PageOptions{}.max_height;
    TAPE_CHECK(count > 0 && count <= 100000, "--count must be in [1, 100000], got ", count);
    TAPE_CHECK(seed >= 0, "--seed must be >= 0, got ", seed);
    TAPE_CHECK(min_height >= 8 && max_height >= min_height && max_height <= 400,
               "--min-height/--max-height: need 8 <= min <= max <= 400, got ", min_height, " and ", max_height);
    TAPE_CHECK(gradient >= 0 && gradient < 1, "--gradient must be in [0, 1), got ", gradient);
    TAPE_CHECK(noise >= 0 && noise <= 0.5f, "--noise must be in [0, 0.5], got ", noise);
    if (truth_path.empty()) truth_path = default_truth(out);
    TAPE_CHECK(fs::path(truth_path) != fs::path(out), "--truth must differ from --out ('", out, "')");

    // The pages this mode writes: [mode, suffix when two are written].
    std::vector<std::string> modes;
    if (mode == "both") modes = {"dark-on-light", "light-on-dark"};
    else if (mode == "sheets") modes = {"scan", "photo"};
    else modes = {mode};
    std::vector<Page> pages;
    for (size_t i = 0; i < modes.size(); ++i) {
      Page p;
      p.mode = modes[i];
      p.file = modes.size() > 1 ? with_suffix(out, modes[i]) : out;
      p.opt.count = p.sheet.count = count;
      p.opt.seed = p.sheet.seed = uint64_t(seed) + i;  // the second page shows other digits
      p.opt.min_height = p.sheet.min_height = min_height;
      p.opt.max_height = p.sheet.max_height = max_height;
      p.opt.gradient = gradient;
      p.opt.noise = noise;
      p.opt.polarity = p.mode == "light-on-dark" ? Polarity::LightOnDark : Polarity::DarkOnLight;
      if (p.mode == "dense") {  // the stress sheet: 18 % of the digits touch a neighbour
        const HandwritingOptions dense = HandwritingOptions::dense();
        p.sheet.touching = dense.touching, p.sheet.min_space = dense.min_space, p.sheet.max_space = dense.max_space;
      }
      p.sheet.photo = p.mode == "photo";
      pages.push_back(std::move(p));
    }
    for (const Page& p : pages) check_writable(p.file, "--out");
    check_writable(truth_path, "--truth");

    const TensorDataset test = load_mnist(data, "test");
    for (Page& p : pages) {
      const Image img = sheets ? make_handwriting_page(test, p.sheet, &p.truth) : make_digit_page(test, p.opt, &p.truth);
      p.width = img.width;
      p.height = img.height;
      save_png(img, p.file);
      std::cout << "wrote " << p.file << " (" << img.width << "x" << img.height << ", " << p.truth.size() << " "
                << p.mode << " digits)\n";
    }
    write_truth(truth_path, data, pages);
    std::cout << "wrote " << truth_path << "\n";
    return 0;
  });
}
