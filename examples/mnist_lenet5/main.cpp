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
    desc.add_options()("help", "show this help");
    add_training_flags(desc, cfg);
    if (!parse_flags(argc, argv, desc, "usage: mnist_lenet5 [options]  — train LeNet-5 on MNIST", &cfg.given)) return 0;
    train_mnist(ModelSpec::lenet5(), cfg);
    return 0;
  });
}
