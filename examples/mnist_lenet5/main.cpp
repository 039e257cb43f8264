// Report quiz 12: LeNet-5 (44,426 parameters) on MNIST.
#include "../common/trainer.hpp"

using namespace tape::examples;

int main(int argc, char** argv) {
  return run_program("mnist_lenet5", [&] {
    TrainConfig cfg;  // the report's recipe: Adam, lr 0.001, batch 2500, 50 epochs
    cfg.lr = 0.001;
    cfg.batch_size = 2500;
    cfg.epochs = 50;
    po::options_description desc("mnist_lenet5 options");
    std::string net = "lenet5";
    desc.add_options()("help", "show this help")
        ("net", po::value(&net)->default_value(net), "lenet5 (44 426 parameters) or lenet5-wide (80 202)");
    add_training_flags(desc, cfg);
    if (!parse_flags(argc, argv, desc, "usage: mnist_lenet5 [options]  — train LeNet-5 on MNIST", &cfg.given)) return 0;
    TAPE_CHECK(net == "lenet5" || net == "lenet5-wide", "--net must be lenet5 or lenet5-wide, got '", net, "'");
    train_mnist(net == "lenet5" ? ModelSpec::lenet5() : ModelSpec::lenet5_wide(), cfg);
    return 0;
  });
}
