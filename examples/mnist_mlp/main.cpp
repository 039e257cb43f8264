// Report quizzes 9 and 11: a 2-layer (--hidden 50) or deep (--hidden 370,115,50)
// MLP on MNIST with Adam and minibatches.
#include "../common/trainer.hpp"

using namespace tape::examples;

int main(int argc, char** argv) {
  return run_program("mnist_mlp", [&] {
    TrainConfig cfg;  // the report's quiz 9: Adam, lr 0.01, batch 1000, 10 epochs
    std::string hidden = "50", activation = "relu";
    float dropout = 0.f;
    po::options_description desc("mnist_mlp options");
    desc.add_options()("help", "show this help")
        ("hidden", po::value(&hidden)->default_value(hidden), "hidden layer sizes, e.g. 50 or 370,115,50")
        ("activation", po::value(&activation)->default_value(activation), "relu | tanh | sigmoid | leaky_relu | elu | selu")
        ("dropout", po::value(&dropout)->default_value(dropout, "0"), "inverted-dropout probability after each hidden layer, in [0, 1)");
    add_training_flags(desc, cfg);
    if (!parse_flags(argc, argv, desc, "usage: mnist_mlp [options]  — train an MLP on MNIST", &cfg.given)) return 0;
    TAPE_CHECK(dropout >= 0.f && dropout < 1.f, "--dropout must be in [0, 1), got ", dropout);
    ModelSpec spec;
    spec.hidden = parse_sizes(hidden);
    spec.activation = activation;
    make_activation(activation);  // unknown names fail before any work
    spec.dropout = dropout;
    train_mnist(spec, cfg);
    return 0;
  });
}
