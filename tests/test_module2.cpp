// The second wave's Module API (state_dict, load_state_dict, modules, named_modules)
// and nn::init's PyTorch initialisers (kaiming_uniform_, kaiming_normal_ with a
// mode, xavier_* from the shape, orthogonal_, calculate_gain).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tape/tape.hpp>

using namespace tape;
using doctest::Contains;

namespace {

double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }
double std_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double e : v) s += (e - m) * (e - m);
  return std::sqrt(s / double(v.size()));
}
std::vector<double> values(const Tensor& t) { return t.to(Dtype::Float64).to_vector<double>(); }
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double e : v) m = std::max(m, std::abs(e));
  return m;
}

struct Block : nn::Module {
  Block() {
    fc = register_module("fc", std::make_shared<nn::Linear>(3, 2));
    scale = register_buffer("scale", tape::full({2}, 1.5));
  }
  Tensor forward(const Tensor& x) override { return (*fc)(x) * scale; }
  std::shared_ptr<nn::Linear> fc;
  Tensor scale;
};

struct Net : nn::Module {
  Net() {
    a = register_module("a", std::make_shared<Block>());
    seq = register_module("seq", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
                                     std::make_shared<nn::Linear>(2, 2), std::make_shared<nn::ReLU>()}));
  }
  Tensor forward(const Tensor& x) override { return (*seq)((*a)(x)); }
  std::shared_ptr<Block> a;
  std::shared_ptr<nn::Sequential> seq;
};

}  // namespace

TEST_CASE("init: calculate_gain matches torch.nn.init.calculate_gain") {
  using nn::init::Nonlinearity;
  CHECK(nn::init::calculate_gain(Nonlinearity::Linear) == 1.0);
  CHECK(nn::init::calculate_gain(Nonlinearity::Sigmoid) == 1.0);
  CHECK(nn::init::calculate_gain(Nonlinearity::Tanh) == doctest::Approx(5.0 / 3.0));
  CHECK(nn::init::calculate_gain(Nonlinearity::ReLU) == doctest::Approx(std::sqrt(2.0)));
  CHECK(nn::init::calculate_gain(Nonlinearity::SELU) == 0.75);
  // leaky_relu with a = √5 (what Linear and Conv2d use): √(2 / 6) = 1/√3
  CHECK(nn::init::calculate_gain(Nonlinearity::LeakyReLU, std::sqrt(5.0)) == doctest::Approx(1.0 / std::sqrt(3.0)));
  CHECK(nn::init::calculate_gain(Nonlinearity::LeakyReLU) == doctest::Approx(std::sqrt(2.0 / (1 + 1e-4))));
}

TEST_CASE("init: kaiming_uniform_ and kaiming_normal_ scale by the chosen fan") {
  using nn::init::FanMode;
  using nn::init::Nonlinearity;
  manual_seed(3);
  Tensor w = Tensor::empty({200, 50, 3, 3});  // fan_in 450, fan_out 1800
  // PyTorch's Linear/Conv2d weight: a = √5 → bound = √(1/3)·√(3/450) = 1/√450
  nn::init::kaiming_uniform_(w, std::sqrt(5.0));
  auto v = values(w);
  const double bound = 1.0 / std::sqrt(450.0);
  CHECK(max_abs(v) <= bound);
  CHECK(max_abs(v) > 0.99 * bound);
  CHECK(std_of(v) == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.02));
  // default a = 0, fan_out, relu: bound = √2·√(3/1800)
  nn::init::kaiming_uniform_(w, 0.0, FanMode::FanOut, Nonlinearity::ReLU);
  v = values(w);
  CHECK(max_abs(v) <= std::sqrt(2.0) * std::sqrt(3.0 / 1800));
  CHECK(std_of(v) == doctest::Approx(std::sqrt(2.0 / 1800)).epsilon(0.02));
  nn::init::kaiming_normal_(w, 0.0, FanMode::FanOut, Nonlinearity::ReLU);
  CHECK(std_of(values(w)) == doctest::Approx(std::sqrt(2.0 / 1800)).epsilon(0.02));
  nn::init::kaiming_normal_(w, 0.0, FanMode::FanIn, Nonlinearity::Tanh);
  CHECK(std_of(values(w)) == doctest::Approx(5.0 / 3.0 / std::sqrt(450.0)).epsilon(0.02));
  // Float64 tensors get the same draws as Float32, widened
  manual_seed(9);
  Tensor f32 = Tensor::empty({40, 30});
  nn::init::kaiming_uniform_(f32, std::sqrt(5.0));
  manual_seed(9);
  Tensor f64 = Tensor::empty({40, 30}, Dtype::Float64);
  nn::init::kaiming_uniform_(f64, std::sqrt(5.0));
  CHECK(values(f32) == f64.to_vector<double>());
  Tensor vec = Tensor::empty({5});
  CHECK_THROWS_WITH_AS(nn::init::kaiming_uniform_(vec), Contains("at least 2 dims, got shape [5]"), Error);
  Tensor ints = tape::zeros({2, 2}, Dtype::Int64);
  CHECK_THROWS_WITH_AS(nn::init::kaiming_uniform_(ints), Contains("must be Float32 or Float64, got Int64"), Error);
}

TEST_CASE("init: xavier_* take the fans from the shape, with a gain") {
  manual_seed(4);
  Tensor w = Tensor::empty({300, 200});  // fan_in 200, fan_out 300
  nn::init::xavier_uniform_(w, 2.0);
  const double a = 2.0 * std::sqrt(6.0 / 500);
  auto v = values(w);
  CHECK(max_abs(v) <= a);
  CHECK(std_of(v) == doctest::Approx(a / std::sqrt(3.0)).epsilon(0.02));
  nn::init::xavier_normal_(w);
  CHECK(std_of(values(w)) == doctest::Approx(std::sqrt(2.0 / 500)).epsilon(0.02));
}

TEST_CASE("init: orthogonal_ gives orthonormal rows (wide) or columns (tall), times the gain") {
  manual_seed(5);
  for (const Shape& s : {Shape{4, 7}, Shape{7, 4}, Shape{3, 2, 2, 2}, Shape{5, 5}}) {
    INFO("shape ", s);
    for (Dtype d : {Dtype::Float32, Dtype::Float64}) {
      Tensor t = Tensor::empty(s, d);
      nn::init::orthogonal_(t, 2.0);
      const int64_t rows = s[0], cols = t.numel() / rows;
      Tensor m = t.reshape({rows, cols}).to(Dtype::Float64);
      // wide: M·Mᵀ = gain²·I (rows × rows); tall: Mᵀ·M = gain²·I (cols × cols)
      Tensor gram = rows <= cols ? matmul(m, m.t()) : matmul(m.t(), m);
      const int64_t k = std::min(rows, cols);
      std::vector<double> g = gram.to_vector<double>();
      double worst = 0;
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j) worst = std::max(worst, std::abs(g[size_t(i * k + j)] - (i == j ? 4.0 : 0.0)));
      CHECK(worst < (d == Dtype::Float64 ? 1e-12 : 1e-5));
    }
  }
  Tensor vec = Tensor::empty({4});
  CHECK_THROWS_WITH_AS(nn::init::orthogonal_(vec), "init::orthogonal_: needs a tensor with at least 2 dims, got shape [4]",
                       Error);
  Tensor c = Tensor::empty({2, 3}, Dtype::Float64);
  nn::init::constant_(c, 0.25);
  CHECK(c.to_vector<double>() == std::vector<double>(6, 0.25));
}

TEST_CASE("module: modules() and named_modules() are pre-order, each module once") {
  Net net;
  std::vector<std::string> names;
  for (auto& [name, m] : net.named_modules()) names.push_back(name + ":" + m->type_name());
  CHECK(names == std::vector<std::string>{":Net", "a:Block", "a.fc:Linear", "seq:Sequential", "seq.0:Linear",
                                          "seq.1:ReLU"});
  const auto all = net.modules();
  REQUIRE(all.size() == 6);
  CHECK(all[0] == &net);
  CHECK(all[2] == net.a->fc.get());
  // apply visits children before parents, every module once
  int linears = 0;
  net.apply([&](nn::Module& m) { linears += m.type_name() == "Linear"; });
  CHECK(linears == 2);
}

TEST_CASE("module: state_dict has parameters and buffers by dotted name, sharing storage") {
  manual_seed(1);
  Net net;
  const auto sd = net.state_dict();
  std::vector<std::string> keys;
  for (auto& [k, v] : sd) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"a.fc.bias", "a.fc.weight", "a.scale", "seq.0.bias", "seq.0.weight"});
  CHECK(!sd.at("a.fc.weight").requires_grad());
  CHECK(sd.at("a.fc.weight").shape() == Shape{2, 3});
  // detached, but the same storage: an in-place edit of the module shows
  { NoGradGuard g; net.a->fc->weight.fill_(0.5); }
  CHECK(sd.at("a.fc.weight").to_vector<float>() == std::vector<float>(6, 0.5f));
}

TEST_CASE("module: load_state_dict copies values, checks everything first, strict and non-strict") {
  manual_seed(1);
  Net src;
  manual_seed(2);
  Net dst;
  REQUIRE(src.a->fc->weight.to_vector<float>() != dst.a->fc->weight.to_vector<float>());
  auto sd = src.state_dict();
  const auto r = dst.load_state_dict(sd);
  CHECK(r.missing_keys.empty());
  CHECK(r.unexpected_keys.empty());
  CHECK(dst.a->fc->weight.to_vector<float>() == src.a->fc->weight.to_vector<float>());
  CHECK(dst.seq->at<nn::Linear>(0)->bias.to_vector<float>() == src.seq->at<nn::Linear>(0)->bias.to_vector<float>());
  // the copy is a copy: later changes to src do not reach dst
  { NoGradGuard g; src.a->fc->weight.fill_(7.0); }
  CHECK(dst.a->fc->weight.to_vector<float>() != src.a->fc->weight.to_vector<float>());
  // dst's parameters are the same tensors (optimizers keep working) and still require grad
  CHECK(dst.a->fc->weight.requires_grad());

  manual_seed(3);
  Net fresh;
  const auto before = fresh.a->fc->bias.to_vector<float>();
  auto bad = src.state_dict();
  bad.erase("a.scale");
  bad["extra.weight"] = tape::zeros({1});
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(bad),
                       "Module::load_state_dict: Net: missing keys: a.scale, unexpected keys: extra.weight (nothing was "
                       "loaded)",
                       Error);
  CHECK(fresh.a->fc->bias.to_vector<float>() == before);  // nothing was written
  const auto loose = fresh.load_state_dict(bad, /*strict=*/false);
  CHECK(loose.missing_keys == std::vector<std::string>{"a.scale"});
  CHECK(loose.unexpected_keys == std::vector<std::string>{"extra.weight"});
  CHECK(fresh.a->fc->bias.to_vector<float>() == src.a->fc->bias.to_vector<float>());

  // a shape mismatch is an error even when not strict, and loads nothing
  auto wrong = src.state_dict();
  wrong["a.fc.weight"] = tape::zeros({3, 2});
  manual_seed(4);
  Net other;
  const auto w0 = other.seq->at<nn::Linear>(0)->weight.to_vector<float>();
  CHECK_THROWS_WITH_AS(other.load_state_dict(wrong, false),
                       Contains("a.fc.weight has shape [3, 2] in the state but [2, 3] in the module"), Error);
  CHECK(other.seq->at<nn::Linear>(0)->weight.to_vector<float>() == w0);

  // values are cast to the module's dtype (a Float64 state into a Float32 module)
  std::map<std::string, Tensor> f64;
  for (auto& [k, v] : src.state_dict()) f64[k] = v.to(Dtype::Float64) * 2.0;
  other.load_state_dict(f64);
  CHECK(other.a->fc->weight.dtype() == Dtype::Float32);
  const auto doubled = (src.a->fc->weight * 2.0).to_vector<float>();
  CHECK(other.a->fc->weight.to_vector<float>() == doubled);
  // loading a module's own state_dict is a no-op
  const auto self = other.state_dict();
  other.load_state_dict(self);
  CHECK(other.a->fc->weight.to_vector<float>() == doubled);
}

#include "models.hpp"

TEST_CASE("module: the report's networks keep He-normal draws; plain layers take PyTorch's init") {
  // build_model rewinds the generator and redraws He-normal: the same values as
  // drawing kaiming_normal_ into each weight in order from the same seed, and the
  // generator ends in the same state
  manual_seed(11);
  auto net = examples::build_model(examples::ModelSpec::lenet5());
  const auto next_after_build = tape::rand({3}).to_vector<float>();
  manual_seed(11);
  std::vector<Tensor> want;
  for (auto& [name, p] : net->named_parameters()) {
    Tensor t = Tensor::empty(p.shape());
    if (p.dim() >= 2)
      nn::init::kaiming_normal_(t);
    else
      nn::init::zeros_(t);
    want.push_back(t);
  }
  CHECK(tape::rand({3}).to_vector<float>() == next_after_build);
  const auto params = net->parameters();
  REQUIRE(params.size() == want.size());
  for (size_t i = 0; i < params.size(); ++i) CHECK(params[i].to_vector<float>() == want[i].to_vector<float>());
  // the layers alone start like PyTorch's (uniform, non-zero biases)
  manual_seed(11);
  auto plain = examples::build_layers(examples::ModelSpec::lenet5());
  const auto b = plain->at<nn::Linear>(7)->bias.to_vector<float>();
  CHECK(std::any_of(b.begin(), b.end(), [](float v) { return v != 0.f; }));
  CHECK(max_abs(values(plain->at<nn::Linear>(7)->weight)) <= 1.0 / std::sqrt(256.0));
}
