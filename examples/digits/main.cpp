// Report quiz 10: find the handwritten digits in a photo or scan, classify each
// with a saved network (any mnist_mlp or mnist_lenet5 checkpoint), and write an
// annotated copy of the image.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "../common/cli.hpp"
#include "../common/models.hpp"
#include "tape_vision/annotate.hpp"
#include "tape_vision/digit_page.hpp"
#include "tape_vision/digits.hpp"
#include "tape_vision/draw.hpp"

using namespace tape;
using namespace tape::examples;

int main(int argc, char** argv) {
  return run_program("digits", [&] {
    std::string model_path, image_path, out_path, json_path, polarity = "auto";
    int threads = 0;
    bool no_verify = false;
    po::options_description desc("digits options");
    desc.add_options()("help", "show this help")
        ("model", po::value(&model_path)->required(), "checkpoint from mnist_mlp or mnist_lenet5 (--save); a,b,...: an ensemble (probabilities averaged)")
        ("image", po::value(&image_path)->required(), "PNG, JPEG or BMP to read digits from")
        ("out", po::value(&out_path), "write the image with boxes and labels here (PNG)")
        ("json", po::value(&json_path), "write the digits as a JSON list here")
        ("polarity", po::value(&polarity)->default_value(polarity), "auto | dark-on-light | light-on-dark")
        ("threads", po::value(&threads)->default_value(threads), "threads (0 = default)")
        ("no-verify", po::bool_switch(&no_verify), "split merged neighbours by width alone (the network does not check the cuts)");
    if (!parse_flags(argc, argv, desc,
                     "usage: digits --model FILE --image IN [--out annotated.png] [--json boxes.json]\n"
                     "prints one line per digit, in reading order: x y w h label confidence"))
      return 0;
    apply_threads(threads);
    vision::FindOptions find;
    if (polarity == "dark-on-light") find.polarity = vision::Polarity::DarkOnLight;
    else if (polarity == "light-on-dark") find.polarity = vision::Polarity::LightOnDark;
    else TAPE_CHECK(polarity == "auto", "unknown --polarity '", polarity, "' (expected auto, dark-on-light or light-on-dark)");

    for (const auto& [path, flag] : {std::pair{out_path, "--out"}, {json_path, "--json"}})
      if (!path.empty()) check_writable(path, flag);

    // The checkpoint says which network it holds, and whether it reads deskewed digits.
    const Classifier model = load_classifier(model_path);
    find.deskew = model.deskew;

    data::Image img = data::load_image(image_path);
    // The network checks how wide boxes are cut (whole, 2 or 3 digits) unless --no-verify.
    std::vector<vision::DigitBox> digits =
        no_verify ? vision::find_digits(img, find) : vision::find_digits_verified(img, classify_fn(model), find);
    std::vector<int64_t> labels;
    std::vector<float> conf;
    if (!digits.empty()) {
      NoGradGuard no_grad;
      Tensor probs = model.probs(vision::digits_to_batch(digits));  // all digits in one batch
      labels = argmax(probs, 1).to_vector<int64_t>();
      Tensor best = max(probs, 1);
      conf = best.to_vector<float>();
    }
    for (size_t i = 0; i < digits.size(); ++i)
      std::printf("%d %d %d %d %lld %.3f\n", digits[i].x, digits[i].y, digits[i].w, digits[i].h,
                  (long long)labels[i], conf[i]);
    if (!json_path.empty()) {
      nlohmann::ordered_json js = nlohmann::ordered_json::array();
      for (size_t i = 0; i < digits.size(); ++i)
        js.push_back({{"x", digits[i].x}, {"y", digits[i].y}, {"w", digits[i].w}, {"h", digits[i].h},
                      {"label", labels[i]}, {"confidence", conf[i]}});
      write_file_atomically(json_path, js.dump(1) + "\n", "--json");
    }
    if (!out_path.empty()) {
      data::Image rgb = data::to_rgb(img);
      vision::annotate(rgb, digits, labels, conf);
      data::save_png(rgb, out_path);
      std::fprintf(stderr, "digits: %zu found; wrote %s\n", digits.size(), out_path.c_str());
    }
    return 0;
  });
}
