#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <tape/tape.hpp>

using namespace tape;
using doctest::Contains;

namespace {

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

std::vector<std::string> names_of(const nn::NamedTensors& named) {
  std::vector<std::string> out;
  for (const auto& p : named) out.push_back(p.first);
  return out;
}

/// A user-defined model: two registered children, a nested Sequential and a raw parameter.
struct Net : nn::Module {
  std::shared_ptr<nn::Linear> fc1;
  std::shared_ptr<nn::Sequential> body;
  Tensor scale;
  Net() {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(4, 3));
    body = register_module("body", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                                       std::make_shared<nn::Linear>(3, 2), std::make_shared<nn::ReLU>(),
                                       std::make_shared<nn::Linear>(2, 1, false)}));
    scale = register_parameter("scale", ones({1}));
  }
  Tensor forward(const Tensor& x) override { return (*body)(relu((*fc1)(x))) * scale; }
};

std::shared_ptr<nn::Sequential> mlp(const std::vector<int64_t>& sizes) {
  auto seq = std::make_shared<nn::Sequential>();
  for (size_t i = 0; i + 1 < sizes.size(); ++i) {
    seq->push_back(std::make_shared<nn::Linear>(sizes[i], sizes[i + 1]));
    if (i + 2 < sizes.size()) seq->push_back(std::make_shared<nn::ReLU>());
  }
  return seq;
}

std::shared_ptr<nn::Sequential> lenet5() {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(1, 6, 5), std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Conv2d>(6, 16, 5),
      std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(256, 120),
      std::make_shared<nn::Tanh>(), std::make_shared<nn::Linear>(120, 84), std::make_shared<nn::Tanh>(),
      std::make_shared<nn::Linear>(84, 10)});
}

double mean_of(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += x;
  return s / double(v.size());
}

double std_of(const std::vector<float>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (float x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size()));
}

}  // namespace

TEST_CASE("nn: named_parameters order and dotted names for nested modules") {
  Net net;
  const auto named = net.named_parameters();
  CHECK(names_of(named) == std::vector<std::string>{"scale", "fc1.weight", "fc1.bias", "body.0.weight", "body.0.bias",
                                                    "body.2.weight"});
  // Each name maps to the module's own tensor.
  CHECK(named[1].second.is_same(net.fc1->weight));
  CHECK(named[5].second.is_same(net.body->at<nn::Linear>(2)->weight));
  for (const auto& [name, t] : named) {
    CHECK(t.requires_grad());
    CHECK(t.is_leaf());
  }
  // parameters() aliases the module's tensors.
  auto params = net.parameters();
  REQUIRE(params.size() == 6);
  CHECK(params[1].is_same(net.fc1->weight));
  CHECK(net.num_parameters() == 1 + (4 * 3 + 3) + (3 * 2 + 2) + 2 * 1);
  // Children and non-recursive listing.
  CHECK(names_of(net.named_parameters(false)) == std::vector<std::string>{"scale"});
  auto kids = net.named_children();
  REQUIRE(kids.size() == 2);
  CHECK(kids[0].first == "fc1");
  CHECK(kids[1].first == "body");
  CHECK(net.children()[1] == net.body);
  // A forward pass works through the tree.
  Tensor y = net(ones({5, 4}));
  CHECK(y.shape() == Shape{5, 1});
}

TEST_CASE("nn: Sequential names children by index, push_back(name), operator[] and shared modules") {
  auto act = std::make_shared<nn::ReLU>();
  nn::Sequential seq{std::make_shared<nn::Linear>(2, 2), act};
  seq.push_back("head", std::make_shared<nn::Linear>(2, 1));
  seq.push_back(act);  // the same module twice: its (empty) parameters are listed once
  CHECK(seq.size() == 4);
  CHECK(names_of(seq.named_parameters()) ==
        std::vector<std::string>{"0.weight", "0.bias", "head.weight", "head.bias"});
  CHECK(seq[1] == act);
  CHECK(seq.at(3) == act);
  CHECK(seq[2]->type_name() == "Linear");
  CHECK_THROWS_WITH_AS(seq[4], "Sequential: index 4 is out of range (size 4)", Error);
  CHECK_THROWS_WITH_AS(seq.at<nn::Linear>(1), "Sequential::at: child 1 is a ReLU, not the requested type", Error);
  CHECK_THROWS_WITH_AS(seq.push_back("head", std::make_shared<nn::Tanh>()),
                       "Sequential.register_module: name \"head\" is already registered (names must be unique)", Error);
  // Forward is the composition; an empty Sequential is the identity.
  auto lin = seq.at<nn::Linear>(0);
  Tensor x = tensor({1.f, -2.f}, {1, 2});
  Tensor want = linear(relu(linear(x, lin->weight, lin->bias)), seq.at<nn::Linear>(2)->weight,
                       seq.at<nn::Linear>(2)->bias);
  CHECK(max_abs_diff(seq(x), tape::relu(want)) == 0.f);
  nn::Sequential empty;
  CHECK(empty(x).is_same(x));

  // The same Linear registered twice shares its parameters: listed once.
  auto shared = std::make_shared<nn::Linear>(3, 3);
  nn::Sequential twice{shared, shared};
  CHECK(names_of(twice.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias"});
  CHECK(twice.num_parameters() == 12);
}

TEST_CASE("nn: num_parameters of the report's networks") {
  // 784·50 + 50 + 50·10 + 10 = 39200 + 50 + 500 + 10
  CHECK(mlp({784, 50, 10})->num_parameters() == 39760);
  // 784·370 + 370 = 290450;  370·115 + 115 = 42665;  115·50 + 50 = 5800;  50·10 + 10 = 510
  // 290450 + 42665 + 5800 + 510 = 339425
  CHECK(mlp({784, 370, 115, 50, 10})->num_parameters() == 339425);
  // LeNet-5: conv1 1·6·25 + 6 = 156;  conv2 6·16·25 + 16 = 2416;  fc1 256·120 + 120 = 30840;
  // fc2 120·84 + 84 = 10164;  fc3 84·10 + 10 = 850  →  44426
  CHECK(lenet5()->num_parameters() == 44426);
  CHECK(nn::Conv2d(1, 6, 5).weight.shape() == Shape{6, 1, 5, 5});
  CHECK(nn::Conv2d(nn::Conv2dOptions(3, 8, 3).bias(false)).num_parameters() == 8 * 3 * 9);
}

TEST_CASE("nn: LeNet-5 forward and summary") {
  auto net = lenet5();
  manual_seed(3);
  const auto rng_before = default_generator().state();
  net->train();
  const std::string s = net->summary({1, 1, 28, 28});
  INFO(s);
  CHECK(contains(s, "Total params: 44,426"));
  CHECK(contains(s, "Trainable params: 44,426"));
  CHECK(contains(s, "Non-trainable params: 0"));
  for (const char* row : {"0 (Conv2d)", "[1, 6, 24, 24]", "156", "1 (MaxPool2d)", "[1, 6, 12, 12]", "[1, 16, 8, 8]",
                          "2,416", "[1, 16, 4, 4]", "4 (Flatten)", "[1, 256]", "30,840", "[1, 120]", "6 (Tanh)",
                          "[1, 84]", "10,164", "9 (Linear)", "[1, 10]", "850"})
    CHECK(contains(s, row));
  // The rows come in call order.
  CHECK(s.find("[1, 6, 24, 24]") < s.find("[1, 6, 12, 12]"));
  CHECK(s.find("[1, 256]") < s.find("[1, 10]"));
  // summary() leaves training mode, grad mode and the RNG as they were.
  CHECK(net->is_training());
  CHECK((*net)[3]->is_training());
  CHECK(grad_enabled());
  CHECK(default_generator().state().s == rng_before.s);

  Tensor y = (*net)(randn({2, 1, 28, 28}));
  CHECK(y.shape() == Shape{2, 10});
  y.sum().backward();
  for (const auto& [name, p] : net->named_parameters()) {
    INFO(name);
    CHECK(p.grad().defined());
  }
}

TEST_CASE("nn: summary of a custom module and its errors") {
  Net net;
  const std::string s = net.summary({2, 4});
  INFO(s);
  CHECK(contains(s, "Model: Net"));
  CHECK(contains(s, "fc1 (Linear)"));
  CHECK(contains(s, "[2, 3]"));
  CHECK(contains(s, "body.0 (Linear)"));
  CHECK(contains(s, "body.1 (ReLU)"));
  CHECK(contains(s, "body.2 (Linear)"));
  CHECK(contains(s, "Total params: 26"));  // 1 + (12 + 3) + (6 + 2) + 2
  CHECK(nn::format_thousands(0) == "0");
  CHECK(nn::format_thousands(999) == "999");
  CHECK(nn::format_thousands(1000) == "1,000");
  CHECK(nn::format_thousands(339425) == "339,425");
  CHECK(nn::format_thousands(1234567) == "1,234,567");
  CHECK(nn::format_thousands(-5) == "-5");  // fmt 9.1's group_digits alone would print 2^64 - 5
  CHECK(nn::format_thousands(-1234567) == "-1,234,567");
  CHECK(nn::format_thousands(INT64_MIN) == "-9,223,372,036,854,775,808");
  CHECK_THROWS_WITH_AS(net.summary({2, 5}),
                       "Net.summary: forward on zeros([2, 5]) failed: Linear(in_features=4, out_features=3): expected "
                       "input [..., 4], got [2, 5]",
                       Error);
  CHECK(net.is_training());
}

TEST_CASE("nn: operator<< prints the module tree") {
  nn::Sequential seq{std::make_shared<nn::Linear>(784, 50), std::make_shared<nn::ReLU>(),
                     std::make_shared<nn::Dropout>(0.5), std::make_shared<nn::LeakyReLU>(0.2),
                     std::make_shared<nn::ELU>(), std::make_shared<nn::Softmax>(1)};
  std::ostringstream os;
  os << seq;
  CHECK(os.str() ==
        "Sequential(\n"
        "  (0): Linear(in_features=784, out_features=50, bias=true)\n"
        "  (1): ReLU()\n"
        "  (2): Dropout(p=0.5)\n"
        "  (3): LeakyReLU(negative_slope=0.2)\n"
        "  (4): ELU(alpha=1.0)\n"
        "  (5): Softmax(dim=1)\n"
        ")");
  Net net;
  CHECK(net.repr() ==
        "Net(\n"
        "  (fc1): Linear(in_features=4, out_features=3, bias=true)\n"
        "  (body): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=2, bias=true)\n"
        "    (1): ReLU()\n"
        "    (2): Linear(in_features=2, out_features=1, bias=false)\n"
        "  )\n"
        ")");
  CHECK(nn::Conv2d(nn::Conv2dOptions(1, 6, 5).padding(2)).repr() ==
        "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))");  // as PyTorch prints it
  CHECK(nn::MaxPool2d(2).repr() == "MaxPool2d(kernel_size=2, stride=2)");
  CHECK(nn::Flatten().repr() == "Flatten(start_dim=1)");
}

TEST_CASE("nn: train()/eval() propagate and change Dropout, not grad mode") {
  auto drop = std::make_shared<nn::Dropout>(0.5);
  nn::Sequential seq{std::make_shared<nn::Linear>(2, 2), std::make_shared<nn::Sequential>(
                                                             std::initializer_list<std::shared_ptr<nn::Module>>{drop})};
  CHECK(seq.is_training());
  CHECK(drop->is_training());
  Tensor x = ones({1000});
  Tensor y = (*drop)(x);
  const auto v = y.to_vector<float>();
  int zeros_n = 0, twos = 0;
  for (float e : v) zeros_n += e == 0.f, twos += e == 2.f;
  CHECK(zeros_n + twos == 1000);
  CHECK(zeros_n > 400);
  CHECK(zeros_n < 600);

  seq.eval();
  CHECK(!seq.is_training());
  CHECK(!drop->is_training());
  CHECK(!seq[0]->is_training());
  CHECK(grad_enabled());
  CHECK(max_abs_diff((*drop)(x), x) == 0.f);
  Tensor w = tensor({1.f, 2.f}, {2}, true);
  CHECK((*drop)(w).requires_grad());  // eval mode still records the graph

  seq.train();
  CHECK(drop->is_training());
  seq.train(false);
  CHECK(!drop->is_training());
}

TEST_CASE("nn: zero_grad clears every parameter's gradient") {
  Net net;
  net(randn({3, 4})).sum().backward();
  for (const auto& p : net.parameters()) CHECK(p.grad().defined());
  net.zero_grad();
  for (const auto& p : net.parameters()) CHECK(!p.grad().defined());
}

TEST_CASE("nn: Linear and Conv2d start like PyTorch's: kaiming_uniform_(a=√5) weights, U(±1/√fan_in) biases") {
  manual_seed(7);
  nn::Linear lin(1000, 400);
  const auto w = lin.weight.to_vector<float>();
  const double bound = 1.0 / std::sqrt(1000.0);
  CHECK(std::abs(mean_of(w)) < 0.002);
  CHECK(std_of(w) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.02));
  CHECK(*std::max_element(w.begin(), w.end()) <= bound);
  CHECK(*std::max_element(w.begin(), w.end()) > 0.99 * bound);
  const auto b = lin.bias.to_vector<float>();
  CHECK(*std::max_element(b.begin(), b.end()) <= bound);
  CHECK(*std::min_element(b.begin(), b.end()) >= -bound);
  CHECK(std_of(b) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.1));

  nn::Conv2d conv(16, 64, 3);  // fan_in = 16·3·3 = 144
  CHECK(std_of(conv.weight.to_vector<float>()) == doctest::Approx(1.0 / 12 / std::sqrt(3.0)).epsilon(0.03));
  const auto cb = conv.bias.to_vector<float>();
  CHECK(*std::max_element(cb.begin(), cb.end()) <= 1.0 / 12);
  // the report's He-normal is one call away
  nn::init::kaiming_normal_(lin.weight);
  CHECK(std_of(lin.weight.to_vector<float>()) == doctest::Approx(std::sqrt(2.0 / 1000)).epsilon(0.02));

  Tensor t = Tensor::empty({200, 300});
  nn::init::xavier_uniform_(t, 300, 200);
  const double a = std::sqrt(6.0 / 500);
  const auto xu = t.to_vector<float>();
  CHECK(std::all_of(xu.begin(), xu.end(), [&](float e) { return std::abs(e) <= a; }));
  CHECK(std_of(xu) == doctest::Approx(a / std::sqrt(3.0)).epsilon(0.02));
  nn::init::xavier_normal_(t, 300, 200);
  CHECK(std_of(t.to_vector<float>()) == doctest::Approx(std::sqrt(2.0 / 500)).epsilon(0.02));
  nn::init::normal_(t, 3.0, 0.5);
  CHECK(mean_of(t.to_vector<float>()) == doctest::Approx(3.0).epsilon(0.01));
  CHECK(std_of(t.to_vector<float>()) == doctest::Approx(0.5).epsilon(0.02));
  nn::init::uniform_(t, -1.0, 3.0);
  const auto un = t.to_vector<float>();
  CHECK(std::all_of(un.begin(), un.end(), [](float e) { return e >= -1.f && e < 3.f; }));
  CHECK(mean_of(t.to_vector<float>()) == doctest::Approx(1.0).epsilon(0.01));
  nn::init::ones_(t);
  CHECK(mean_of(t.to_vector<float>()) == 1.0);
  const uint32_t v = t.version();
  nn::init::zeros_(t);
  CHECK(mean_of(t.to_vector<float>()) == 0.0);
  CHECK(t.version() > v);
  CHECK(nn::init::fan_in_and_fan_out({6, 1, 5, 5}) == std::pair<int64_t, int64_t>{25, 150});
  Tensor k = Tensor::empty({64, 16, 3, 3});
  nn::init::kaiming_normal_(k);
  CHECK(std_of(k.to_vector<float>()) == doctest::Approx(std::sqrt(2.0 / 144)).epsilon(0.03));
  CHECK_THROWS_WITH_AS(nn::init::kaiming_normal_(t, 0), "init::kaiming_normal_: fan_in must be > 0, got 0", Error);
  CHECK_THROWS_WITH_AS(nn::init::uniform_(t, 2.0, 1.0), "init::uniform_: needs finite lo <= hi, got [2, 1)", Error);
}

TEST_CASE("nn: manual_seed makes two models identical") {
  manual_seed(42);
  auto a = mlp({784, 50, 10});
  manual_seed(42);
  auto b = mlp({784, 50, 10});
  auto pa = a->parameters(), pb = b->parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) CHECK(pa[i].to_vector<float>() == pb[i].to_vector<float>());
  manual_seed(43);
  auto c = mlp({784, 50, 10});
  CHECK(c->parameters()[0].to_vector<float>() != pa[0].to_vector<float>());
}

TEST_CASE("nn: layers compute what the ops compute") {
  Tensor x = tensor({-2.f, -0.5f, 0.f, 1.5f}, {2, 2});
  CHECK(max_abs_diff(nn::ReLU()(x), relu(x)) == 0.f);
  CHECK(max_abs_diff(nn::Tanh()(x), tanh(x)) == 0.f);
  CHECK(max_abs_diff(nn::Sigmoid()(x), sigmoid(x)) == 0.f);
  CHECK(max_abs_diff(nn::LeakyReLU(0.1)(x), leaky_relu(x, 0.1f)) == 0.f);
  CHECK(max_abs_diff(nn::ELU(0.5)(x), elu(x, 0.5f)) == 0.f);
  CHECK(max_abs_diff(nn::SELU()(x), selu(x)) == 0.f);
  CHECK(max_abs_diff(nn::Softmax(0)(x), softmax(x, 0)) == 0.f);
  CHECK(nn::Flatten()(ones({2, 3, 4})).shape() == Shape{2, 12});
  CHECK(nn::Flatten(0)(ones({2, 3, 4})).shape() == Shape{24});
  nn::Linear lin(nn::LinearOptions(2, 3).bias(false));
  CHECK(!lin.bias.defined());
  CHECK(lin.num_parameters() == 6);
  CHECK(max_abs_diff(lin(x), matmul(x, lin.weight.t())) < 1e-6f);
  CHECK(lin(ones({4, 5, 2})).shape() == Shape{4, 5, 3});  // leading dims are kept
}

TEST_CASE("nn: errors name the layer and the value") {
  nn::Linear lin(784, 50);
  CHECK_THROWS_WITH_AS(lin(ones({32, 100})),
                       "Linear(in_features=784, out_features=50): expected input [..., 784], got [32, 100]", Error);
  CHECK_THROWS_WITH_AS(nn::Linear(0, 5), "Linear: in_features and out_features must be > 0, got in_features=0, out_features=5",
                       Error);
  CHECK_THROWS_WITH_AS(nn::Dropout(1.5), "Dropout: p must be in [0, 1), got 1.5", Error);
  CHECK_THROWS_WITH_AS(nn::Dropout(-0.1), "Dropout: p must be in [0, 1), got -0.1", Error);
  CHECK_THROWS_WITH_AS(nn::Conv2d(1, 6, 0), "Conv2d: kernel_size must be > 0, got 0", Error);
  CHECK_THROWS_WITH_AS(nn::Conv2d(1, 6, 3, 0), "Conv2d: stride must be > 0, got 0", Error);
  CHECK_THROWS_WITH_AS(nn::Conv2d(1, 6, 3, 1, -1), "Conv2d: padding must be >= 0, got -1", Error);
  CHECK_THROWS_WITH_AS(nn::Conv2d(0, 6, 3),
                       "Conv2d: in_channels and out_channels must be > 0, got in_channels=0, out_channels=6", Error);
  CHECK_THROWS_WITH_AS(nn::Conv2d(3, 6, 5)(ones({1, 1, 28, 28})),
                       "Conv2d(3, 6, kernel_size=(5, 5), stride=(1, 1)): expected input [N, 3, H, W], got [1, 1, 28, 28]",
                       Error);
  CHECK_THROWS_WITH_AS(nn::Conv2d(1, 6, 5)(ones({1, 1, 4, 4})),
                       "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1)): input [1, 1, 4, 4] with padding 0 is "
                       "smaller than the kernel",
                       Error);
  CHECK_THROWS_WITH_AS(nn::MaxPool2d(0), "MaxPool2d: kernel_size must be > 0, got 0", Error);
  CHECK_THROWS_WITH_AS(nn::MaxPool2d(2, 0), "MaxPool2d: stride must be > 0 (or -1 for kernel_size), got 0", Error);
  CHECK_THROWS_WITH_AS(nn::MaxPool2d(2)(ones({6, 24, 24})),
                       "MaxPool2d(kernel_size=2, stride=2): expected input [N, C, H, W] with H, W >= 2, got [6, 24, 24]",
                       Error);
  CHECK_THROWS_WITH_AS(nn::Flatten(2)(ones({3, 4})), "Flatten(start_dim=2): input of shape [3, 4] has no dim 2", Error);
  CHECK_THROWS_WITH_AS(nn::Softmax(2)(ones({3, 4})), "Softmax(dim=2): input of shape [3, 4] has no dim 2", Error);
  CHECK_THROWS_WITH_AS(nn::ReLU()(Tensor()), "ReLU: input is an undefined tensor", Error);

  struct Dup : nn::Module {
    Dup() {
      register_parameter("w", zeros({2}));
      register_module("w", std::make_shared<nn::ReLU>());
    }
    Tensor forward(const Tensor& x) override { return x; }
  };
  CHECK_THROWS_WITH_AS(Dup(), "Dup.register_module: name \"w\" is already registered (names must be unique)", Error);
  struct Dotted : nn::Module {
    Dotted() { register_buffer("a.b", zeros({2})); }
    Tensor forward(const Tensor& x) override { return x; }
  };
  CHECK_THROWS_WITH_AS(Dotted(), "Dotted.register_buffer: name \"a.b\" must not contain '.'", Error);
}

TEST_CASE("nn: buffers are listed with dotted names but are not parameters") {
  struct WithStats : nn::Module {
    Tensor running_mean, weight;
    WithStats() {
      weight = register_parameter("weight", ones({3}));
      running_mean = register_buffer("running_mean", zeros({3}));
    }
    Tensor forward(const Tensor& x) override { return x * weight; }
  };
  nn::Sequential seq{std::make_shared<WithStats>(), std::make_shared<nn::Linear>(3, 1)};
  CHECK(names_of(seq.named_buffers()) == std::vector<std::string>{"0.running_mean"});
  CHECK(names_of(seq.named_parameters()) == std::vector<std::string>{"0.weight", "1.weight", "1.bias"});
  CHECK(seq.buffers().size() == 1);
  CHECK(!seq.buffers()[0].requires_grad());
  CHECK(seq.num_parameters() == 3 + 3 + 1);
  int visited = 0;
  seq.apply([&](nn::Module&) { ++visited; });
  CHECK(visited == 3);
}
