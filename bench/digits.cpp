// bench/digits: how well find_digits() (and, with --model, a trained network) reads
// the test pages of docs/digits.md — handwriting sheets (scan, photo, dense) and the
// generated pages of tape-digit-page — over several seeds. Per page: digits, found
// (a box with IoU >= 0.5 against a true box, one-to-one), found and read right,
// spurious boxes, why the others were missed (merged with a neighbour, cut, lost),
// and the seconds spent finding and classifying.
//   usage: digits [--data DIR] [--model CKPT] [--seeds 1,2,3] [--pages scan,photo,generated]
//                 [--count N] [--save DIR]
// "dense" is the stress sheet (HandwritingOptions::dense(), a scan with 18 % of the
// digits touching a neighbour); it is reported, not held to the targets.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <tape/tape.hpp>

#include "cli.hpp"
#include "models.hpp"
#include "tape_vision/digit_page.hpp"
#include "tape_vision/digits.hpp"

using namespace tape;
using namespace tape::examples;
using namespace tape::vision;

namespace {

struct Score {
  int64_t digits = 0, found = 0, right = 0, spurious = 0;
  int64_t merged = 0, cut = 0, lost = 0;  // why digits were missed (see classify_miss)
  double find_s = 0, classify_s = 0;
  void add(const Score& o) {
    digits += o.digits, found += o.found, right += o.right, spurious += o.spurious;
    merged += o.merged, cut += o.cut, lost += o.lost;
    find_s += o.find_s, classify_s += o.classify_s;
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Why a true box was missed: the found box overlapping it most is much wider or
/// taller (merged with a neighbour), smaller (cut, or only a fragment found), or
/// there is none (lost).
void classify_miss(const TruthBox& t, const std::vector<DigitBox>& found, Score& s) {
  const DigitBox* best = nullptr;
  int64_t best_ov = 0;
  for (const DigitBox& d : found) {
    const int64_t ix = std::max(0, std::min(t.x + t.w, d.x + d.w) - std::max(t.x, d.x));
    const int64_t iy = std::max(0, std::min(t.y + t.h, d.y + d.h) - std::max(t.y, d.y));
    if (ix * iy > best_ov) best_ov = ix * iy, best = &d;
  }
  if (!best) ++s.lost;
  else if (int64_t(best->w) * best->h > int64_t(t.w) * t.h) ++s.merged;
  else ++s.cut;
}

/// Finds (and classifies, when `model` is set) the digits of one page and scores them.
Score score_page(const data::Image& page, const std::vector<TruthBox>& truth, const Classifier* model,
                 FindOptions find, bool verify) {
  Score s;
  find.deskew = model && model->deskew;
  auto t0 = std::chrono::steady_clock::now();
  const std::vector<DigitBox> found =
      model && verify ? find_digits_verified(page, classify_fn(*model), find) : find_digits(page, find);
  s.find_s = seconds_since(t0);
  std::vector<int64_t> labels;
  if (model && !found.empty()) {
    t0 = std::chrono::steady_clock::now();
    NoGradGuard no_grad;
    labels = argmax(model->probs(digits_to_batch(found)), 1).to_vector<int64_t>();
    s.classify_s = seconds_since(t0);
  }
  const std::vector<int> match = match_boxes(truth, found, 0.5f);
  s.digits = int64_t(truth.size());
  for (size_t i = 0; i < truth.size(); ++i) {
    if (match[i] < 0) {
      classify_miss(truth[i], found, s);
      continue;
    }
    ++s.found;
    s.right += model && labels[size_t(match[i])] == truth[i].label;
  }
  s.spurious = int64_t(found.size()) - s.found;
  return s;
}

std::string pct(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * f);
  return buf;
}

void print_row(const std::string& name, const Score& s, bool classified) {
  const double n = double(std::max<int64_t>(1, s.digits));
  std::printf("%-26s %6lld  %7.2f%%  %10s  %5lld  %6lld %4lld %4lld  %7.2fs  %7.2fs\n", name.c_str(),
              (long long)s.digits, 100.0 * double(s.found) / n, classified ? pct(double(s.right) / n).c_str() : "-",
              (long long)s.spurious, (long long)s.merged, (long long)s.cut, (long long)s.lost, s.find_s,
              s.classify_s);
}

}  // namespace

int main(int argc, char** argv) {
  return run_program("bench/digits", [&] {
    std::string data_dir = "data/mnist", model_path, seeds_text = "1,2,3", pages_text = "scan,photo,dense,generated", save;
    int count = HandwritingOptions{}.count;
    float touching = -1, min_space = -1, verify_margin = FindOptions{}.verify_margin;
    po::options_description desc("bench/digits options");
    desc.add_options()("help", "show this help")
        ("data", po::value(&data_dir)->default_value(data_dir), "MNIST directory")
        ("model", po::value(&model_path), "checkpoint to read the digits with (else: finding only); a,b,...: an ensemble")
        ("seeds", po::value(&seeds_text)->default_value(seeds_text), "page seeds, comma-separated")
        ("pages", po::value(&pages_text)->default_value(pages_text), "scan, photo, dense (the stress sheet), generated (comma-separated)")
        ("count", po::value(&count)->default_value(count), "digits per handwriting sheet")
        ("save", po::value(&save), "also write each page as DIR/<kind>-<seed>.png")
        ("touching", po::value(&touching), "override HandwritingOptions::touching (calibration)")
        ("min-space", po::value(&min_space), "override HandwritingOptions::min_space (calibration)")
        ("no-split", "do not split merged neighbours (FindOptions::split_width = 0)")
        ("no-verify", "with --model: split by the width rule only (find_digits, not find_digits_verified)")
        ("verify-margin", po::value(&verify_margin)->default_value(verify_margin, "1"),
         "FindOptions::verify_margin: how much surer the classifier must be to overrule the width rule")
        ("no-merge", "do not merge fragments (FindOptions::merge_* off)");
    std::set<std::string> given;
    if (!parse_flags(argc, argv, desc, "usage: bench/digits [options]  — digits found and read on test pages", &given))
      return 0;
    const std::vector<int64_t> seeds = parse_sizes(seeds_text);
    std::vector<std::string> kinds;
    std::stringstream ks(pages_text);
    for (std::string k; std::getline(ks, k, ',');) {
      TAPE_CHECK(k == "scan" || k == "photo" || k == "dense" || k == "generated", "--pages: unknown page kind '", k,
                 "' (expected scan, photo, dense or generated)");
      kinds.push_back(k);
    }
    FindOptions find;
    if (given.count("no-split")) find.split_width = 0;
    find.verify_margin = verify_margin;
    if (given.count("no-merge")) find.merge_box_overlap = 2.f, find.merge_touch_gap = find.merge_gap = -1.f;
    const data::TensorDataset test = data::load_mnist(data_dir, "test");
    std::optional<Classifier> model;
    if (!model_path.empty()) model = load_classifier(model_path);

    std::printf("%-26s %6s  %8s  %10s  %5s  %6s %4s %4s  %8s  %8s\n", "page", "digits", "found", "read right",
                "spur.", "merged", "cut", "lost", "find", "classify");
    for (const std::string& kind : kinds) {
      Score total;
      for (int64_t seed : seeds) {
        // Generated pages come in both polarities; a sheet is one page.
        std::vector<std::pair<std::string, data::Image>> pages;
        std::vector<std::vector<TruthBox>> truths;
        if (kind == "generated") {
          for (Polarity pol : {Polarity::DarkOnLight, Polarity::LightOnDark}) {
            PageOptions po;
            po.seed = uint64_t(seed);
            po.polarity = pol;
            truths.emplace_back();
            pages.emplace_back(str_cat(kind, "-", polarity_name(pol), "-", seed), make_digit_page(test, po, &truths.back()));
          }
        } else {
          HandwritingOptions ho = kind == "dense" ? HandwritingOptions::dense() : HandwritingOptions{};
          ho.seed = uint64_t(seed);
          ho.count = count;
          if (touching >= 0) ho.touching = touching;
          if (min_space >= 0) ho.min_space = min_space;
          ho.photo = kind == "photo";
          truths.emplace_back();
          pages.emplace_back(str_cat(kind, "-", seed), make_handwriting_page(test, ho, &truths.back()));
        }
        for (size_t i = 0; i < pages.size(); ++i) {
          if (!save.empty()) data::save_png(pages[i].second, save + "/" + pages[i].first + ".png");
          const Score s = score_page(pages[i].second, truths[i], model ? &*model : nullptr, find,
                                     !given.count("no-verify"));
          print_row(pages[i].first, s, model.has_value());
          total.add(s);
        }
      }
      print_row(str_cat("all ", kind), total, model.has_value());
    }
    return 0;
  });
}
