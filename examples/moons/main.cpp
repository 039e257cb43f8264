// Report quizzes 1–8 on a three-class moons set: row softmax, a dense layer,
// He initialisation, a 2-layer network, one-hot labels, cross-entropy, the
// training loss, and prediction — then a picture of the decision regions.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "../common/cli.hpp"
#include "../common/models.hpp"
#include "../common/progress.hpp"
#include "tape_vision/plot.hpp"

using namespace tape;
using namespace tape::examples;

int main(int argc, char** argv) {
  return run_program("moons", [&] {
    int64_t samples = 300, hidden = 100, epochs = 2000;
    int classes = 3, threads = 0;
    float noise = 0.1f, lr = 0.5f;
    uint64_t seed = 0;
    std::string activation = "relu", plot, precision = "f32";
    po::options_description desc("moons options");
    desc.add_options()("help", "show this help")
        ("samples", po::value(&samples)->default_value(samples), "number of points")
        ("noise", po::value(&noise)->default_value(noise, "0.1"), "standard deviation of the Gaussian noise")
        ("classes", po::value(&classes)->default_value(classes), "2 or 3 moons")
        ("hidden", po::value(&hidden)->default_value(hidden), "hidden units of the 2-layer network")
        ("activation", po::value(&activation)->default_value(activation), "hidden activation")
        ("lr", po::value(&lr)->default_value(lr, "0.5"), "learning rate (full-batch gradient descent)")
        ("epochs", po::value(&epochs)->default_value(epochs), "gradient-descent steps")
        ("seed", po::value(&seed)->default_value(seed), "random seed (data and init)")
        ("threads", po::value(&threads)->default_value(threads), "threads (0 = default)")
        ("plot", po::value(&plot), "write the decision regions to this PNG");
    add_precision_flag(desc, precision);
    if (!parse_flags(argc, argv, desc, "usage: moons [options]  — a 2-layer network on a moons set")) return 0;
    TAPE_CHECK(samples >= 2 * classes, "--samples must be at least ", 2 * classes, ", got ", samples);
    TAPE_CHECK(hidden >= 1, "--hidden must be at least 1, got ", hidden);
    TAPE_CHECK(epochs >= 1, "--epochs must be at least 1, got ", epochs);
    TAPE_CHECK(lr > 0, "--lr must be positive, got ", lr);
    TAPE_CHECK(noise >= 0, "--noise must be >= 0, got ", noise);
    validate_precision(precision);
    if (!plot.empty()) check_writable(plot, "--plot");
    apply_threads(threads);
    const bool bf16 = use_bf16(precision);

    // Quiz 1: softmax of a row; quiz 5: one-hot; quiz 6: cross-entropy.
    std::cout << "quiz 1  softmax([1, 2, 3])      = " << softmax(tensor({1, 2, 3}, {1, 3}), 1) << "\n";
    Tensor demo_labels = tensor(std::vector<int64_t>{0, 2, 1}, {3});
    std::cout << "quiz 5  one_hot([0, 2, 1], 3)   = " << one_hot(demo_labels, 3) << "\n";
    std::cout << "quiz 6  cross_entropy(0, [0, 2, 1]) = "
              << cross_entropy(zeros({3, 3}), demo_labels).item() << " (= ln 3 for uniform predictions)\n";

    data::TensorDataset ds = data::make_moons(samples, noise, seed, classes);
    manual_seed(seed);
    // Quizzes 2–4: dense layers with He initialisation (nn::Linear's default), a 2-layer net.
    nn::Sequential net{std::make_shared<nn::Linear>(2, hidden), make_activation(activation),
                       std::make_shared<nn::Linear>(hidden, classes)};
    std::cout << "quiz 4  " << net << "\n";
    if (precision != "f32") std::printf("training with %s\n", precision_label(bf16).c_str());
    optim::SGD opt(net.parameters(), lr);

    // Quiz 7: the training loss, full-batch gradient descent.
    const auto t0 = std::chrono::steady_clock::now();
    ProgressBar bar(epochs);
    Tensor loss;
    for (int64_t e = 1; e <= epochs; ++e) {
      {
        MaybeAutocast autocast(bf16);
        loss = cross_entropy(net(ds.images), ds.labels);
      }
      opt.zero_grad();
      loss.backward();
      opt.step();
      bar.update(e, str_cat("loss ", loss.item()));
      if (e == 1 || e % (epochs / 10 > 0 ? epochs / 10 : 1) == 0) {
        bar.clear();
        std::printf("quiz 7  step %5lld  loss %.4f\n", (long long)e, loss.item());
      }
    }
    bar.clear();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    // Quiz 8: predict = argmax of the network's scores.
    auto predict = [&](const Tensor& x) {
      NoGradGuard no_grad;
      MaybeAutocast autocast(bf16);
      return argmax(net(x), 1);
    };
    auto pred = predict(ds.images).to_vector<int64_t>();
    auto truth = ds.labels.to_vector<int64_t>();
    int64_t correct = 0;
    for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == truth[i];
    const double acc = double(correct) / double(pred.size());
    std::printf("trained in %.2fs (%lld steps)\n", secs, (long long)epochs);
    std::printf("training accuracy: %.2f%% (%lld/%lld)\n", 100 * acc, (long long)correct, (long long)pred.size());
    if (!plot.empty()) {
      data::Image img = vision::plot_decision_regions(
          [&](const std::vector<float>& xy) {
            return predict(tensor(xy, {int64_t(xy.size() / 2), 2})).to_vector<int64_t>();
          },
          ds.images, ds.labels, 640, 480, str_cat(classes, "-class moons: decision regions (accuracy ", 100 * acc, "%)"));
      data::save_png(img, plot);
      std::printf("wrote %s\n", plot.c_str());
    }
    return 0;
  });
}
