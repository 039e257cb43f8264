// End-to-end checks of the example programs: digit reading with a freshly
// trained LeNet-5, exact resume across processes, and bad-input handling.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <tape/tape.hpp>
#include <tape_vision/annotate.hpp>
#include <tape_vision/digit_page.hpp>
#include <tape_vision/digits.hpp>
#include <tape_vision/draw.hpp>
#include <tape_vision/plot.hpp>

#include "mnist.hpp"
#include "run_command.hpp"
#include "models.hpp"
#include "trainer.hpp"

using namespace tape;
using namespace tape::examples;
namespace fs = std::filesystem;

namespace {
const std::string kMnist = tape_test::mnist_dir();
const std::string kBuild = TAPE_BUILD_DIR;

using tape_test::Run;
Run run(const std::string& cmd) { return tape_test::run_command(cmd); }

std::string tmp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("tape_test_" + name + "_" + std::to_string(getpid()));
  fs::create_directories(d);
  return d.string();
}
}  // namespace

TEST_CASE("examples: bad input gives a one-line error and exit code 2" * doctest::test_suite("slow")) {
  const std::string mlp = kBuild + "/examples/mnist_mlp";
  for (const std::string& args : {std::string("--activation swish"), std::string("--dropout 1.5"),
                                  std::string("--dropout -0.1"), std::string("--batch-size 0"),
                                  std::string("--hidden 0"), std::string("--hidden 370,,50"),
                                  std::string("--data /nonexistent/mnist"), std::string("--epochs 0"),
                                  std::string("--no-such-flag"), std::string("--lr abc")}) {
    Run r = run(mlp + " " + args);
    INFO("mnist_mlp ", args, " → ", r.out);
    CHECK(r.code == 2);
    CHECK(r.out.rfind("mnist_mlp: error: ", 0) == 0);
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  }
  Run r = run(mlp + " --activation swish");
  CHECK(r.out.find("unknown activation 'swish'") != std::string::npos);
  r = run(kBuild + "/examples/digits --model /nonexistent.ckpt --image x.png");
  CHECK(r.code == 2);
  CHECK(r.out.find("/nonexistent.ckpt") != std::string::npos);
  r = run(kBuild + "/examples/moons --samples 0");
  CHECK(r.code == 2);
  r = run(kBuild + "/examples/mnist_lenet5 --threads -1");
  CHECK(r.code == 2);
  CHECK(run(mlp + " --help").code == 0);
}

TEST_CASE("examples: moons reaches 97% training accuracy" * doctest::test_suite("slow")) {
  Run r = run(kBuild + "/examples/moons");
  REQUIRE(r.code == 0);
  auto at = r.out.find("training accuracy: ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(r.out.substr(at + 19)) >= 97.0);
}

TEST_CASE("examples: a resumed run is bit-identical to an uninterrupted one" * doctest::test_suite("slow") *
          doctest::skip(!tape_test::mnist_available())) {
  const std::string d = tmp_dir("resume");
  const std::string base = kBuild + "/examples/mnist_mlp --data " + kMnist +
                           " --limit-train 3000 --hidden 64,32 --dropout 0.2 --batch-size 100 --quiet";
  REQUIRE(run(base + " --epochs 2 --save " + d + "/straight.ckpt").code == 0);
  REQUIRE(run(base + " --epochs 1 --save " + d + "/half.ckpt").code == 0);
  Run resumed = run(base + " --epochs 2 --resume " + d + "/half.ckpt --save " + d + "/resumed.ckpt");
  REQUIRE(resumed.code == 0);
  ModelSpec spec = ModelSpec::parse(read_checkpoint_meta(d + "/straight.ckpt").model_spec);
  auto a = build_model(spec), b = build_model(spec);
  load_checkpoint(d + "/straight.ckpt", *a);
  load_checkpoint(d + "/resumed.ckpt", *b);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    CHECK(pa[i].second.to_vector<float>() == pb[i].second.to_vector<float>());
  }
  fs::remove_all(d);
}

TEST_CASE("examples: mnist_resnet trains, saves BatchNorm buffers and resumes bit-identically" *
          doctest::test_suite("slow") * doctest::skip(!tape_test::mnist_available())) {
  // a tiny run of the recipe (augmentation, onecycle per batch, BatchNorm), stopped and resumed
  const std::string d = tmp_dir("resnet");
  const std::string base = kBuild + "/examples/mnist_resnet --data " + kMnist +
                           " --limit-train 512 --batch-size 64 --widths 4,8 --threads 1";
  Run straight = run(base + " --epochs 2 --csv " + d + "/run.csv --save " + d + "/straight.ckpt");
  REQUIRE(straight.code == 0);
  CHECK(straight.out.find("resnet:4-8 on 512 images (augmented)") != std::string::npos);
  CHECK(straight.out.find("onecycle schedule") != std::string::npos);
  CHECK(straight.out.find("layer2.downsample.1 (BatchNorm2d)") != std::string::npos);
  std::ifstream csv(d + "/run.csv");
  std::string header;
  std::getline(csv, header);
  CHECK(header == "epoch,train_loss,test_loss,test_accuracy,seconds");
  // exact resume (a schedule over the run's length, like onecycle, changes with --epochs: none here)
  const std::string flat = base + " --schedule none --quiet";
  REQUIRE(run(flat + " --epochs 2 --save " + d + "/straight.ckpt").code == 0);
  REQUIRE(run(flat + " --epochs 1 --save " + d + "/half.ckpt").code == 0);
  REQUIRE(run(flat + " --epochs 2 --resume " + d + "/half.ckpt --save " + d + "/resumed.ckpt").code == 0);
  const ModelSpec spec = ModelSpec::parse(read_checkpoint_meta(d + "/straight.ckpt").model_spec);
  CHECK(spec.to_string() == "resnet:4-8");
  auto a = build_model(spec), b = build_model(spec);
  load_checkpoint(d + "/straight.ckpt", *a);
  load_checkpoint(d + "/resumed.ckpt", *b);
  const auto sa = a->state_dict(), sb = b->state_dict();
  REQUIRE(sa.size() == sb.size());
  CHECK(sa.count("layer1.bn1.running_var") == 1);
  CHECK(sa.at("layer1.bn1.num_batches_tracked").item<int64_t>() == 16);  // 2 epochs of 8 batches
  for (const auto& [name, t] : sa) {
    INFO(name);
    CHECK(t.to(Dtype::Float64).to_vector<double>() == sb.at(name).to(Dtype::Float64).to_vector<double>());
  }
  Run off = run(base + " --epochs 1 --quiet --augment=0");
  CHECK(off.code == 0);
  fs::remove_all(d);
}

TEST_CASE("examples: LeNet-5 reads >= 95% of the digits on a generated page" * doctest::test_suite("slow") *
          doctest::skip(!tape_test::mnist_available())) {
  // A short training: 20 000 images, 2 epochs of batch 64.
  const std::string d = tmp_dir("digits");
  Run train = run(kBuild + "/examples/mnist_lenet5 --data " + kMnist +
                  " --limit-train 20000 --epochs 2 --batch-size 64 --quiet --save " + d + "/lenet5.ckpt");
  REQUIRE(train.code == 0);
  data::TensorDataset test = data::load_mnist(kMnist, "test");
  int total = 0, right = 0;
  for (vision::Polarity pol : {vision::Polarity::DarkOnLight, vision::Polarity::LightOnDark}) {
    vision::PageOptions po;
    po.polarity = pol;
    po.seed = 7;
    std::vector<vision::TruthBox> truth;
    data::save_png(vision::make_digit_page(test, po, &truth), d + "/page.png");
    Run r = run(kBuild + "/examples/digits --model " + d + "/lenet5.ckpt --image " + d + "/page.png --out " + d +
                "/annotated.png --json " + d + "/digits.json");
    REQUIRE(r.code == 0);
    // --json holds the same digits as stdout, in the same order
    std::ifstream js_in(d + "/digits.json");
    const nlohmann::json js = nlohmann::json::parse(js_in);
    REQUIRE(js.is_array());
    // parse "x y w h label confidence" lines and match them to the truth boxes
    std::vector<vision::DigitBox> found;
    std::vector<int64_t> labels;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      vision::DigitBox b;
      long long label;
      float conf;
      if (std::sscanf(line.c_str(), "%d %d %d %d %lld %f", &b.x, &b.y, &b.w, &b.h, &label, &conf) == 6) {
        found.push_back(b);
        labels.push_back(label);
      }
    }
    REQUIRE(js.size() == found.size());
    for (size_t i = 0; i < found.size(); ++i) {
      CHECK(js[i].at("x").get<int>() == found[i].x);
      CHECK(js[i].at("w").get<int>() == found[i].w);
      CHECK(js[i].at("label").get<int64_t>() == labels[i]);
    }
    std::vector<int> match = vision::match_boxes(truth, found);
    for (size_t i = 0; i < truth.size(); ++i) {
      ++total;
      right += match[i] >= 0 && labels[size_t(match[i])] == truth[i].label;
    }
    CHECK(fs::exists(d + "/annotated.png"));
  }
  MESSAGE("digits found and classified: " << right << "/" << total);
  CHECK(double(right) / total >= 0.95);
  fs::remove_all(d);
}

TEST_CASE("examples: tape-digit-page writes valid JSON whatever the path holds" *
          doctest::skip(!tape_test::mnist_available())) {
  // The old hand-written escaper let control characters through: a data directory
  // whose name holds a tab and a \x01 gave a file no JSON parser accepts.
  const std::string d = tmp_dir("json");
  const std::string odd = d + "/mn\t\x01ist";
  fs::create_directory_symlink(fs::absolute(kMnist), odd);
  Run r = run(kBuild + "/tools/tape-digit-page --mode dark-on-light --count 5 --data '" + odd + "' --out " + d +
              "/page.png");
  INFO(r.out);
  REQUIRE(r.code == 0);
  std::ifstream in(d + "/page.json");  // next to --out by default
  REQUIRE(in);
  const nlohmann::json js = nlohmann::json::parse(in);  // throws on invalid JSON
  CHECK(js.at("source").get<std::string>().find(odd) == 0);
  REQUIRE(js.at("pages").size() == 1);
  CHECK(js["pages"][0].at("digits").size() == 5);
  fs::remove_all(d);
}
