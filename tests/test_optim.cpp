#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <tape/tape.hpp>

using namespace tape;

namespace {

const std::vector<float> kP0 = {1.f, -2.f, 0.5f};

/// The fixed gradient fed at step k (0-based).
std::vector<float> grad_at(int k) {
  return {0.5f - 0.1f * float(k), -0.3f + 0.05f * float(k), (k % 2 ? 0.2f : -0.4f)};
}

/// Runs `steps` optimizer steps on a parameter starting at kP0 with grad_at(k).
std::vector<float> run(const std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>& make, int steps) {
  Tensor p = tensor(kP0, {3}, true);
  auto opt = make({p});
  for (int k = 0; k < steps; ++k) {
    p.set_grad(tensor(grad_at(k), {3}));
    opt->step();
  }
  return p.to_vector<float>();
}

// --- reference update rules, in double ------------------------------------------

/// PyTorch SGD: g += wd·p; buf = g (first) or momentum·buf + g; g = nesterov ? g + momentum·buf : buf; p -= lr·g.
[[gnu::noinline]] std::vector<double> sgd_ref(double lr, double momentum, double wd, bool nesterov, int steps) {
  std::vector<double> p(kP0.begin(), kP0.end()), buf(p.size(), 0.0);
  for (int k = 0; k < steps; ++k) {
    const std::vector<float> g = grad_at(k);
    for (size_t j = 0; j < p.size(); ++j) {
      double d = double(g[j]) + wd * p[j];
      if (momentum != 0.0) {
        buf[j] = k == 0 ? d : momentum * buf[j] + d;
        d = nesterov ? d + momentum * buf[j] : buf[j];
      }
      p[j] -= lr * d;
    }
  }
  return p;
}

/// Kingma & Ba with PyTorch's bias correction; `decoupled` is AdamW.
[[gnu::noinline]] std::vector<double> adam_ref(double lr, double b1, double b2, double eps, double wd, bool decoupled, int steps) {
  std::vector<double> p(kP0.begin(), kP0.end()), m(p.size(), 0.0), v(p.size(), 0.0);
  for (int k = 0; k < steps; ++k) {
    const int t = k + 1;
    const std::vector<float> g = grad_at(k);
    for (size_t j = 0; j < p.size(); ++j) {
      double gj = g[j];
      if (decoupled) p[j] *= 1.0 - lr * wd;
      else gj += wd * p[j];
      m[j] = b1 * m[j] + (1 - b1) * gj;
      v[j] = b2 * v[j] + (1 - b2) * gj * gj;
      const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
      p[j] -= lr / bc1 * m[j] / (std::sqrt(v[j]) / std::sqrt(bc2) + eps);
    }
  }
  return p;
}

void check_close(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t j = 0; j < got.size(); ++j) {
    INFO("element ", j);
    CHECK(double(got[j]) == doctest::Approx(want[j]).epsilon(1e-5));
  }
}

}  // namespace

TEST_CASE("optim: SGD plain, momentum, nesterov and weight decay follow PyTorch's formulas") {
  const int n = 6;
  check_close(run([](auto ps) { return std::make_unique<optim::SGD>(ps, 0.1); }, n), sgd_ref(0.1, 0, 0, false, n));
  check_close(run([](auto ps) { return std::make_unique<optim::SGD>(ps, 0.1, 0.9); }, n), sgd_ref(0.1, 0.9, 0, false, n));
  check_close(run([](auto ps) { return std::make_unique<optim::SGD>(ps, 0.05, 0.8, 0.0, true); }, n),
              sgd_ref(0.05, 0.8, 0, true, n));
  check_close(run([](auto ps) { return std::make_unique<optim::SGD>(ps, 0.1, 0.0, 0.01); }, n),
              sgd_ref(0.1, 0, 0.01, false, n));
  check_close(run([](auto ps) {
                return std::make_unique<optim::SGD>(
                    ps, optim::SGDOptions(0.05).momentum(0.9).weight_decay(0.1).nesterov(true));
              }, n),
              sgd_ref(0.05, 0.9, 0.1, true, n));
  // One step by hand: p = 1 - 0.1·0.5 = 0.95.
  CHECK(run([](auto ps) { return std::make_unique<optim::SGD>(ps, 0.1); }, 1)[0] == doctest::Approx(0.95));
}

TEST_CASE("optim: Adam and AdamW follow the published update rules") {
  const int n = 7;
  check_close(run([](auto ps) { return std::make_unique<optim::Adam>(ps, 0.01); }, n),
              adam_ref(0.01, 0.9, 0.999, 1e-8, 0, false, n));
  check_close(run([](auto ps) { return std::make_unique<optim::Adam>(ps, 0.05, 0.8, 0.99, 1e-3, 0.1); }, n),
              adam_ref(0.05, 0.8, 0.99, 1e-3, 0.1, false, n));
  check_close(run([](auto ps) {
                return std::make_unique<optim::Adam>(ps, optim::AdamOptions(0.02).betas({0.5, 0.9}).eps(1e-6));
              }, n),
              adam_ref(0.02, 0.5, 0.9, 1e-6, 0, false, n));
  check_close(run([](auto ps) { return std::make_unique<optim::AdamW>(ps, 0.01); }, n),
              adam_ref(0.01, 0.9, 0.999, 1e-8, 0.01, true, n));
  check_close(run([](auto ps) {
                return std::make_unique<optim::AdamW>(ps, optim::AdamWOptions(0.1).weight_decay(0.5).betas({0.7, 0.95}));
              }, n),
              adam_ref(0.1, 0.7, 0.95, 1e-8, 0.5, true, n));
  // The first Adam step moves every element by lr·sign(g) (bias correction makes m̂/sqrt(v̂) = ±1).
  const auto one = run([](auto ps) { return std::make_unique<optim::Adam>(ps, 0.01, 0.9, 0.999, 0.0); }, 1);
  CHECK(one[0] == doctest::Approx(1.f - 0.01f));
  CHECK(one[1] == doctest::Approx(-2.f + 0.01f));
  CHECK(one[2] == doctest::Approx(0.5f + 0.01f));
}

TEST_CASE("optim: a large parameter (parallel loop) matches the reference everywhere") {
  const int64_t n = 300 * 200;  // above the 32768-element threshold
  std::vector<float> p0(static_cast<size_t>(n)), g0(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    p0[size_t(i)] = std::sin(float(i));
    g0[size_t(i)] = std::cos(float(i) * 0.7f);
  }
  Tensor p = tensor(p0, {300, 200}, true);
  Tensor q = tensor(p0, {300, 200}, true);
  optim::SGD sgd({p}, 0.1, 0.9, 0.01, true);
  optim::Adam adam({q}, 0.01);
  std::vector<double> ps(p0.begin(), p0.end()), buf(ps.size()), qs(p0.begin(), p0.end()), m(ps.size()), v(ps.size());
  for (int k = 0; k < 3; ++k) {
    p.set_grad(tensor(g0, {300, 200}));
    q.set_grad(tensor(g0, {300, 200}));
    sgd.step();
    adam.step();
    for (size_t j = 0; j < ps.size(); ++j) {
      const double d = g0[j] + 0.01 * ps[j];
      buf[j] = k == 0 ? d : 0.9 * buf[j] + d;
      ps[j] -= 0.1 * (d + 0.9 * buf[j]);
      m[j] = 0.9 * m[j] + 0.1 * g0[j];
      v[j] = 0.999 * v[j] + 0.001 * double(g0[j]) * g0[j];
      qs[j] -= 0.01 / (1 - std::pow(0.9, k + 1)) * m[j] / (std::sqrt(v[j] / (1 - std::pow(0.999, k + 1))) + 1e-8);
    }
  }
  const auto pv = p.to_vector<float>(), qv = q.to_vector<float>();
  double worst_p = 0, worst_q = 0;
  for (size_t j = 0; j < ps.size(); ++j) {
    worst_p = std::max(worst_p, std::abs(pv[j] - ps[j]));
    worst_q = std::max(worst_q, std::abs(qv[j] - qs[j]));
  }
  CHECK(worst_p < 1e-5);
  CHECK(worst_q < 1e-5);
}

namespace {
/// Like run(), with a Float64 parameter and Float64 gradients: the values in double.
std::vector<double> run64(const std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>& make, int steps) {
  Tensor p = tensor(std::vector<double>(kP0.begin(), kP0.end()), {3}, true);
  auto opt = make({p});
  for (int k = 0; k < steps; ++k) {
    const std::vector<float> g = grad_at(k);
    p.set_grad(tensor(std::vector<double>(g.begin(), g.end()), {3}));
    opt->step();
  }
  REQUIRE(p.dtype() == Dtype::Float64);
  return p.to_vector<double>();
}

void check_exact(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t j = 0; j < got.size(); ++j) {
    INFO("element ", j);
    CHECK(got[j] == doctest::Approx(want[j]).epsilon(1e-14));
  }
}
}  // namespace

TEST_CASE("optim: Float64 parameters step in double with Float64 state") {
  const int n = 6;
  check_exact(run64([](auto ps) { return std::make_unique<optim::SGD>(ps, 0.1); }, n), sgd_ref(0.1, 0, 0, false, n));
  check_exact(run64([](auto ps) {
                return std::make_unique<optim::SGD>(
                    ps, optim::SGDOptions(0.05).momentum(0.9).weight_decay(0.1).nesterov(true));
              }, n),
              sgd_ref(0.05, 0.9, 0.1, true, n));
  check_exact(run64([](auto ps) { return std::make_unique<optim::SGD>(ps, 0.1, 0.9, 0.01); }, n),
              sgd_ref(0.1, 0.9, 0.01, false, n));
  check_exact(run64([](auto ps) { return std::make_unique<optim::Adam>(ps, 0.05, 0.8, 0.99, 1e-3, 0.1); }, n),
              adam_ref(0.05, 0.8, 0.99, 1e-3, 0.1, false, n));
  check_exact(run64([](auto ps) { return std::make_unique<optim::AdamW>(ps, 0.01); }, n),
              adam_ref(0.01, 0.9, 0.999, 1e-8, 0.01, true, n));

  // one SGD step with momentum and weight decay by hand: d = 0.5 + 0.1·1 = 0.6, p = 1 − 0.1·0.6
  CHECK(run64([](auto ps) { return std::make_unique<optim::SGD>(ps, 0.1, 0.9, 0.1); }, 1)[0] == 0.94);
  // one Adam step by hand: m̂ = g, v̂ = g², p = 1 − 0.1·0.5/(0.5 + 1e-8), exact to double precision
  // (in Float32 the 1e-8 would vanish)
  const double adam1 = run64([](auto ps) { return std::make_unique<optim::Adam>(ps, 0.1); }, 1)[0];
  CHECK(adam1 == doctest::Approx(1 - 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-15));
  CHECK(adam1 != 0.9);

  // state tensors have the parameter's dtype, and a Float32 and a Float64 parameter share one optimizer
  Tensor p64 = tensor(std::vector<double>{1, 2}, {2}, true), p32 = tensor({1.f, 2.f}, {2}, true);
  optim::Adam adam({p64, p32}, 0.1);
  p64.set_grad(tensor(std::vector<double>{1, -1}, {2}));
  p32.set_grad(tensor({1.f, -1.f}, {2}));
  adam.step();
  const optim::OptimizerState st = adam.state_dict();
  CHECK(st.tensors.at("param.0.exp_avg").dtype() == Dtype::Float64);
  CHECK(st.tensors.at("param.1.exp_avg_sq").dtype() == Dtype::Float32);
  CHECK(p64.to_vector<double>()[0] == doctest::Approx(1 - 0.1 / (1 + 1e-8)).epsilon(1e-15));
  CHECK(p32.to_vector<float>()[0] == doctest::Approx(0.9f));
  optim::Adam again({p64, p32}, 0.1);
  again.load_state_dict(st);  // round trip
  auto bad = st;
  bad.tensors["param.0.exp_avg"] = zeros({2});
  CHECK_THROWS_WITH_AS(again.load_state_dict(bad),
                       "Adam.load_state_dict: param.0.exp_avg must be a defined Float64 tensor (the parameter's dtype)",
                       Error);

  // a gradient of another dtype, and parameters that are not floating, are errors
  p64.set_grad(tensor({1.f, 1.f}, {2}));
  CHECK_THROWS_WITH_AS(adam.step(), "Adam: gradient of parameter 0 has shape [2] (Float32), expected [2] (Float64)",
                       Error);
  CHECK_THROWS_WITH_AS(optim::SGD({tensor(std::vector<int64_t>{1}, {1})}, 0.1),
                       "SGD: parameter 0 must be Float32 or Float64, got Int64", Error);
}

TEST_CASE("optim: step skips parameters without a gradient, runs without recording, zero_grad clears") {
  Tensor a = tensor({1.f, 2.f}, {2}, true);
  Tensor b = tensor({3.f}, {1}, true);
  optim::Adam opt({a, b}, 0.1);
  a.set_grad(tensor({1.f, -1.f}, {2}));
  const uint32_t va = a.version(), vb = b.version();
  opt.step();
  CHECK(b.item() == 3.f);
  CHECK(b.version() == vb);
  CHECK(a.version() > va);
  CHECK(a.is_leaf());
  CHECK(a.requires_grad());
  CHECK(grad_enabled());
  CHECK(opt.step_count() == 1);
  const auto sd = opt.state_dict();
  CHECK(sd.tensors.count("param.0.exp_avg") == 1);
  CHECK(sd.tensors.count("param.1.exp_avg") == 0);
  CHECK(sd.scalars.at("param.0.step") == 1.0);
  CHECK(sd.scalars.count("param.1.step") == 0);
  opt.zero_grad();
  CHECK(!a.grad().defined());
  CHECK(!b.grad().defined());
  opt.step();  // nothing has a gradient: a no-op
  CHECK(opt.state_dict().scalars.at("param.0.step") == 1.0);

  // A model's gradients through backward.
  nn::Linear lin(3, 2);
  optim::SGD sgd(lin.parameters(), 0.5);
  const auto w0 = lin.weight.to_vector<float>();
  lin(ones({1, 3})).sum().backward();
  sgd.step();
  const auto w1 = lin.weight.to_vector<float>();
  for (size_t j = 0; j < w0.size(); ++j) CHECK(w1[j] == doctest::Approx(w0[j] - 0.5f));  // d/dw = 1
  sgd.zero_grad();
  CHECK(!lin.weight.grad().defined());
}

TEST_CASE("optim: state_dict round trip continues identically") {
  auto check_resume = [](const std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>& make,
                         const std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>& make_other) {
    Tensor p = tensor(kP0, {3}, true);
    auto a = make({p});
    for (int k = 0; k < 3; ++k) p.set_grad(tensor(grad_at(k), {3})), a->step();
    const optim::OptimizerState sd = a->state_dict();
    const std::vector<float> saved = p.to_vector<float>();
    std::map<std::string, std::vector<float>> snapshot;
    for (const auto& [k, t] : sd.tensors) snapshot[k] = t.to_vector<float>();
    for (int k = 3; k < 6; ++k) p.set_grad(tensor(grad_at(k), {3})), a->step();
    // state_dict() is a snapshot, not a view of the live buffers.
    for (const auto& [k, t] : sd.tensors) CHECK(t.to_vector<float>() == snapshot[k]);

    Tensor q = tensor(saved, {3}, true);
    auto b = make_other({q});
    b->load_state_dict(sd);
    CHECK(b->lr() == a->lr());
    CHECK(b->step_count() == 3);
    for (int k = 3; k < 6; ++k) q.set_grad(tensor(grad_at(k), {3})), b->step();
    CHECK(q.to_vector<float>() == p.to_vector<float>());  // bit-identical
    const auto sa = a->state_dict(), sb = b->state_dict();
    CHECK(sa.scalars == sb.scalars);
    for (const auto& [k, t] : sa.tensors) CHECK(sb.tensors.at(k).to_vector<float>() == t.to_vector<float>());
  };
  check_resume([](auto ps) { return std::make_unique<optim::Adam>(ps, 0.05, 0.8, 0.99, 1e-6, 0.01); },
               [](auto ps) { return std::make_unique<optim::Adam>(ps, 0.5); });
  check_resume([](auto ps) { return std::make_unique<optim::AdamW>(ps, 0.05); },
               [](auto ps) { return std::make_unique<optim::AdamW>(ps, 0.001, 0.5, 0.5, 0.1, 0.9); });
  check_resume([](auto ps) { return std::make_unique<optim::SGD>(ps, 0.1, 0.9, 0.01, true); },
               [](auto ps) { return std::make_unique<optim::SGD>(ps, 1.0); });
  check_resume([](auto ps) { return std::make_unique<optim::SGD>(ps, 0.1); },
               [](auto ps) { return std::make_unique<optim::SGD>(ps, 0.3, 0.5); });

  Tensor p = tensor(kP0, {3}, true);
  optim::SGD sgd({p}, 0.1, 0.9);
  p.set_grad(ones({3}));
  sgd.step();
  const auto sd = sgd.state_dict();
  CHECK(sd.tensors.count("param.0.momentum_buffer") == 1);
  for (const char* k : {"step", "lr", "initial_lr", "momentum", "dampening", "weight_decay", "nesterov", "param.0.step"})
    CHECK(sd.scalars.count(k) == 1);
}

TEST_CASE("optim: load_state_dict errors name the entry and leave the optimizer unchanged") {
  std::vector<Tensor> ps{zeros({2}).requires_grad_(), zeros({3}).requires_grad_(), zeros({4}).requires_grad_(),
                         zeros({50, 784}).requires_grad_()};
  optim::Adam opt(ps, 0.01);
  for (auto& p : ps) p.set_grad(ones_like(p));
  opt.step();
  const optim::OptimizerState good = opt.state_dict();

  optim::Adam fresh(ps, 0.5);
  auto bad = good;
  bad.tensors["param.3.exp_avg"] = zeros({50});
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(bad), "Adam.load_state_dict: param.3.exp_avg has shape [50], expected [50, 784]",
                       Error);
  bad = good;
  bad.tensors.erase("param.3.exp_avg_sq");
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(bad), "Adam.load_state_dict: missing entry param.3.exp_avg_sq", Error);
  bad = good;
  bad.scalars.erase("beta1");
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(bad), "Adam.load_state_dict: missing entry beta1", Error);
  bad = good;
  bad.tensors["param.9.exp_avg"] = zeros({2});
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(bad), "Adam.load_state_dict: unexpected entry param.9.exp_avg", Error);
  bad = good;
  bad.scalars["beta2"] = 1.5;
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(bad), "Adam: beta2 must be in [0, 1), got 1.5", Error);
  bad = good;
  bad.scalars.erase("param.1.step");
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(bad), "Adam.load_state_dict: unexpected entry param.1.exp_avg", Error);
  CHECK(fresh.lr() == 0.5);
  CHECK(fresh.beta2() == 0.999);
  CHECK(fresh.step_count() == 0);
  CHECK(fresh.state_dict().tensors.empty());

  optim::SGD sgd(ps, 0.1);
  CHECK_THROWS_WITH_AS(sgd.load_state_dict(good), "SGD.load_state_dict: missing entry dampening", Error);
  fresh.load_state_dict(good);
  CHECK(fresh.lr() == 0.01);
  CHECK(fresh.state_dict().tensors.size() == 8);
}

TEST_CASE("optim: hyper-parameters are validated with one-line errors") {
  std::vector<Tensor> ps{zeros({2}).requires_grad_()};
  CHECK_THROWS_WITH_AS(optim::SGD(ps, -1.0), "SGD: lr must be >= 0, got -1", Error);
  CHECK_THROWS_WITH_AS(optim::SGD(ps, 0.1, -0.5), "SGD: momentum must be >= 0, got -0.5", Error);
  CHECK_THROWS_WITH_AS(optim::SGD(ps, 0.1, 0.0, -1.0), "SGD: weight_decay must be >= 0, got -1", Error);
  CHECK_THROWS_WITH_AS(optim::SGD(ps, 0.1, 0.0, 0.0, true),
                       "SGD: nesterov needs momentum > 0 and dampening = 0, got momentum=0, dampening=0", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(ps, 0.001, 1.0), "Adam: beta1 must be in [0, 1), got 1", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(ps, optim::AdamOptions(0.01).betas({0.9, -0.1})),
                       "Adam: beta2 must be in [0, 1), got -0.1", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(ps, -0.1), "Adam: lr must be >= 0, got -0.1", Error);
  CHECK_THROWS_WITH_AS(optim::AdamW(ps, optim::AdamWOptions().eps(-1.0)), "AdamW: eps must be >= 0, got -1", Error);
  CHECK_THROWS_WITH_AS(optim::AdamW(ps, 0.1, 0.9, 0.999, 1e-8, -0.01), "AdamW: weight_decay must be >= 0, got -0.01",
                       Error);
  CHECK_THROWS_WITH_AS(optim::SGD(std::vector<Tensor>{}, 0.1), "SGD: got an empty parameter list", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(std::vector<Tensor>{ps[0], ps[0]}), "Adam: parameter 1 is the same tensor as parameter 0",
                       Error);
  CHECK_THROWS_WITH_AS(optim::Adam(std::vector<Tensor>{ps[0], Tensor()}), "Adam: parameter 1 is an undefined tensor", Error);
  CHECK_THROWS_WITH_AS(optim::Adam(std::vector<Tensor>{ps[0] * 2.f}), "Adam: parameter 0 of shape [2] is not a leaf tensor",
                       Error);
  optim::Adam adam(ps);
  CHECK(adam.lr() == 1e-3);
  CHECK(adam.type_name() == "Adam");
  CHECK(optim::AdamW(ps).weight_decay() == 0.01);
  CHECK(optim::AdamW(ps).type_name() == "AdamW");
  CHECK_THROWS_WITH_AS(adam.set_lr(-0.1), "Adam.set_lr: lr must be >= 0, got -0.1", Error);
  adam.set_lr(0.2);
  CHECK(adam.lr() == 0.2);
  CHECK(adam.initial_lr() == 1e-3);
}

TEST_CASE("optim: StepLR and CosineAnnealingLR follow PyTorch's closed forms") {
  std::vector<Tensor> ps{zeros({1}).requires_grad_()};
  {
    optim::SGD opt(ps, 0.1);
    optim::StepLR sched(opt, 3, 0.5);
    CHECK(sched.last_epoch() == 0);
    CHECK(opt.lr() == 0.1);
    CHECK(sched.get_last_lr() == 0.1);
    for (int e = 1; e <= 10; ++e) {
      sched.step();
      const double want = 0.1 * std::pow(0.5, e / 3);
      CHECK(sched.last_epoch() == e);
      CHECK(sched.get_last_lr() == doctest::Approx(want).epsilon(1e-12));
      CHECK(opt.lr() == sched.get_last_lr());
    }
    CHECK(opt.lr() == doctest::Approx(0.0125));  // epochs 9-11: 0.1·0.5³
  }
  {
    optim::Adam opt(ps, 0.01);
    optim::CosineAnnealingLR sched(opt, 10, 0.001);
    CHECK(opt.lr() == doctest::Approx(0.01));
    for (int e = 1; e <= 15; ++e) {
      sched.step();
      const double want = 0.001 + (0.01 - 0.001) * (1 + std::cos(std::numbers::pi * e / 10)) / 2;
      CHECK(opt.lr() == doctest::Approx(want).epsilon(1e-12));
    }
    CHECK(optim::CosineAnnealingLR(opt, 10, 0.001).lr_at(10) == doctest::Approx(0.001));
    CHECK(optim::CosineAnnealingLR(opt, 10, 0.001).lr_at(5) == doctest::Approx(0.0055));
  }
  {
    // Resume: a new scheduler on a new optimizer jumps to the saved epoch.
    optim::SGD opt(ps, 0.1);
    opt.set_lr(7.0);  // schedules scale initial_lr, not the current lr
    optim::StepLR sched(opt, 2, 0.1);
    CHECK(opt.lr() == 0.1);
    sched.set_last_epoch(5);
    CHECK(opt.lr() == doctest::Approx(0.1 * 0.01));
    sched.step();
    CHECK(sched.last_epoch() == 6);
    CHECK(opt.lr() == doctest::Approx(0.1 * 0.001));
    CHECK_THROWS_WITH_AS(sched.set_last_epoch(-1), "StepLR.set_last_epoch: epoch must be >= 0, got -1", Error);
    CHECK_THROWS_WITH_AS(optim::StepLR(opt, 0), "StepLR: step_size must be > 0, got 0", Error);
    CHECK_THROWS_WITH_AS(optim::CosineAnnealingLR(opt, 0), "CosineAnnealingLR: T_max must be > 0, got 0", Error);
    CHECK_THROWS_WITH_AS(optim::CosineAnnealingLR(opt, 5, -1.0), "CosineAnnealingLR: eta_min must be >= 0, got -1",
                         Error);
  }
}

TEST_CASE("optim: Linear(1,1) fits y = 3x + 1 with every optimizer") {
  Tensor x = reshape(arange(-1.f, 1.f, 1.f / 16.f), {32, 1});
  Tensor y = x * 3.f + 1.f;
  struct Case {
    const char* name;
    std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)> make;
    int steps;
  };
  const std::vector<Case> cases{
      {"SGD", [](auto ps) { return std::make_unique<optim::SGD>(ps, 0.3); }, 300},
      {"SGD momentum", [](auto ps) { return std::make_unique<optim::SGD>(ps, 0.05, 0.9); }, 300},
      {"SGD nesterov", [](auto ps) { return std::make_unique<optim::SGD>(ps, 0.05, 0.9, 0.0, true); }, 300},
      {"SGD weight decay", [](auto ps) { return std::make_unique<optim::SGD>(ps, 0.3, 0.0, 1e-4); }, 300},
      {"Adam", [](auto ps) { return std::make_unique<optim::Adam>(ps, 0.05); }, 1000},
      {"AdamW", [](auto ps) { return std::make_unique<optim::AdamW>(ps, 0.05); }, 1000},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    manual_seed(1);
    nn::Linear model(1, 1);
    auto opt = c.make(model.parameters());
    float loss_value = 0.f;
    for (int i = 0; i < c.steps; ++i) {
      opt->zero_grad();
      Tensor loss = pow(model(x) - y, 2.f).mean();
      loss.backward();
      opt->step();
      loss_value = loss.item();
    }
    CHECK(loss_value < 1e-3f);
    CHECK(model.weight.item() == doctest::Approx(3.0).epsilon(0.01));
    CHECK(model.bias.item() == doctest::Approx(1.0).epsilon(0.01));
  }
}
