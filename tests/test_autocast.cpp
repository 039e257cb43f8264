// bf16 autocast (docs/precision.md): AutocastGuard's state, matmul / linear /
// conv2d on oneDNN's bf16 kernels against their Float32 results, gradients,
// Float64 untouched, and the trainers' --precision flag (with the fallback on a
// CPU that oneDNN is told has no bf16).
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <functional>
#include <optional>
#include <cmath>
#include <string>
#include <thread>
#include <tape/tape.hpp>

#include "mnist.hpp"
#include "run_command.hpp"
#include "tape/backend/dnnl.hpp"

using namespace tape;

namespace {
const std::string kBuild = TAPE_BUILD_DIR;

/// max |a − b| / max |b|: the error of a bf16 result relative to the Float32 one.
double rel_err(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto vb = b.to(Dtype::Float64).to_vector<double>();
  double scale = 0;
  for (double v : vb) scale = std::max(scale, std::fabs(v));
  return max_abs_diff(a, b) / std::max(scale, 1e-30);
}

/// bf16 rounds each operand by at most 2⁻⁹ relative; sums of a few hundred products stay well within this.
constexpr double kBf16Tol = 1e-2;

/// Bitwise equality of two Float32 tensors.
bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<float>() == b.to_vector<float>();
}

/// The gradients of loss = Σ f(inputs)·wave for inputs requiring grad, in Float32 or under autocast.
template <class F>
std::vector<Tensor> grads_of(F&& f, const std::vector<Tensor>& in, bool autocast) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : in) leaves.push_back(t.detach().requires_grad_());
  Tensor y;
  {
    std::optional<AutocastGuard> guard;
    if (autocast) guard.emplace();
    y = f(leaves);
  }
  Tensor wave = sin(arange(y.numel(), Dtype::Float32).reshape(y.shape()) * 0.37f);
  sum(y * wave).backward();  // backward outside the guard: the node remembers its forward's precision
  std::vector<Tensor> g;
  for (const Tensor& t : leaves) g.push_back(t.grad());
  return g;
}

/// Under autocast the gradients of every input are Float32, within bf16 tolerance of
/// the Float32 ones (a 10 % error would not be), and those of the two multiplied
/// operands differ from Float32 in their bits (backward ran in bf16 too).
template <class F>
void check_autocast_grads(F&& f, const std::vector<Tensor>& in) {
  const auto g32 = grads_of(f, in, false), g16 = grads_of(f, in, true);
  for (size_t i = 0; i < in.size(); ++i) {
    CAPTURE(i);
    REQUIRE(g16[i].defined());
    CHECK(g16[i].dtype() == Dtype::Float32);
    CHECK(rel_err(g16[i], g32[i]) < kBf16Tol);
    CHECK(rel_err(g32[i] * 1.1f, g32[i]) > kBf16Tol);
    if (bf16_supported() && i < 2) CHECK(!same_bits(g16[i], g32[i]));
  }
}
}  // namespace

TEST_CASE("autocast: the guard nests, restores and is per thread") {
  CHECK(!autocast_enabled());
  CHECK(autocast_dtype() == Dtype::BFloat16);
  {
    AutocastGuard outer;
    CHECK(autocast_enabled() == bf16_supported());
    {
      AutocastGuard inner(Dtype::BFloat16);
      CHECK(autocast_enabled() == bf16_supported());
      bool other_thread = true;
      std::thread([&] { other_thread = autocast_enabled(); }).join();
      CHECK(!other_thread);  // thread-local, like NoGradGuard
    }
    CHECK(autocast_enabled() == bf16_supported());
  }
  CHECK(!autocast_enabled());
  // the ISA name is readable and agrees with bf16_supported()
  const std::string isa = cpu_isa_name();
  CHECK(!isa.empty());
  CHECK((isa.find("bf16") != std::string::npos || isa.find("amx") != std::string::npos) == bf16_supported());
}

TEST_CASE("autocast: only BFloat16 is accepted") {
  for (Dtype d : {Dtype::Float32, Dtype::Float64, Dtype::Int64}) {
    try {
      AutocastGuard g(d);
      FAIL("AutocastGuard accepted ", dtype_name(d));
    } catch (const Error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("only BFloat16") != std::string::npos);
      CHECK(msg.find('\n') == std::string::npos);
    }
    CHECK(!autocast_enabled());  // a refused guard changes nothing
  }
}

TEST_CASE("autocast: matmul and linear run in bf16 with Float32 outputs and gradients") {
  manual_seed(7);
  const Tensor a = randn({48, 96}), b = randn({96, 40}), w = randn({40, 96}), bias = randn({40});
  const Tensor a3 = randn({3, 20, 30}), b3 = randn({3, 30, 10});
  Tensor c32 = matmul(a, b), l32 = linear(a, w, bias), c3_32 = matmul(a3, b3);
  Tensor c16, l16, c3_16;
  {
    AutocastGuard g;
    c16 = matmul(a, b);
    l16 = linear(a, w, bias);
    c3_16 = matmul(a3, b3);
  }
  for (const Tensor* t : {&c16, &l16, &c3_16}) CHECK(t->dtype() == Dtype::Float32);
  CHECK(rel_err(c16, c32) < kBf16Tol);
  CHECK(rel_err(l16, l32) < kBf16Tol);
  CHECK(rel_err(c3_16, c3_32) < kBf16Tol);
  if (bf16_supported()) {  // the bf16 kernels really ran: rounding shows
    CHECK(!same_bits(c16, c32));
    CHECK(!same_bits(l16, l32));
    CHECK(!same_bits(c3_16, c3_32));
    // and exactly what f32 gives on the operands rounded to bf16 (up to summation order)
    Tensor ref = matmul(a.to(Dtype::BFloat16).to(Dtype::Float32), b.to(Dtype::BFloat16).to(Dtype::Float32));
    CHECK(rel_err(c16, ref) < 1e-5);
  }
  // after the guard: Float32 again, bit for bit
  CHECK(same_bits(matmul(a, b), c32));
}

/// The bits of to_bf16(t) for a Float32 t: the AVX512-BF16 loop when t is contiguous.
std::vector<uint16_t> bf16_bits(const Tensor& t) {
  const Tensor t16 = backend::to_bf16(t);
  std::vector<uint16_t> v;
  for (int64_t i = 0; i < t16.numel(); ++i) v.push_back(t16.data<BFloat16>()[i].bits);
  return v;
}

/// The same through oneDNN's reorder: to_bf16 of a strided copy of t (t [n] → [n, 2] → column 0).
std::vector<uint16_t> reorder_bits(const Tensor& t) {
  const Tensor strided = stack({t, t}, 1).select(1, 0);
  REQUIRE((t.numel() == 1 || !strided.is_contiguous()));  // (one element is contiguous at any stride)
  return bf16_bits(strided);
}

std::vector<uint16_t> bits_of_to(const Tensor& t) {
  const Tensor t16 = t.to(Dtype::BFloat16);
  std::vector<uint16_t> v;
  for (int64_t i = 0; i < t16.numel(); ++i) v.push_back(t16.data<BFloat16>()[i].bits);
  return v;
}

TEST_CASE("autocast: the f32 → bf16 conversion rounds bit for bit as oneDNN's reorder") {
  // special values: ties to even (both ways), NaNs (quiet, signalling, payloads), ±inf,
  // ±0, denormals, the largest floats (round to inf), values just below/above a tie
  const std::vector<uint32_t> special{0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0x7fc00000, 0xffc00001,
                                      0x7f800001, 0x7fbfffff, 0xff812345, 0x7f800000, 0xff800000, 0x00000000,
                                      0x80000000, 0x00000001, 0x807fffff, 0x00408000, 0x007f8000, 0x7f7fffff,
                                      0xff7fffff, 0x7f7f8000, 0x00800000, 0x80800000, 0x0080ffff, 0x3fff8000};
  Generator gen(5);
  // sizes around the 32-element vector and the tail mask, and one large enough for the thread team
  for (int64_t n : {1, 7, 15, 16, 17, 31, 32, 33, 63, 100, 1000, 70001}) {
    std::vector<float> v(static_cast<size_t>(n));
    const Tensor r = randn({n}, gen) * 1e3f;
    const Tensor u = rand({n}, gen);
    for (int64_t i = 0; i < n; ++i) {
      const float x = r.data<float>()[i], ui = u.data<float>()[i];
      uint32_t b = std::bit_cast<uint32_t>(x);
      if (ui < 0.2f) b = special[size_t(i) % special.size()];
      else if (ui < 0.4f) b = (b & 0xffff0000u) | 0x8000u;  // an exact tie
      else if (ui < 0.45f) b &= 0x807fffffu;                 // a denormal of the same sign
      v[size_t(i)] = std::bit_cast<float>(b);
    }
    const Tensor t = tensor(v, {n});
    const auto want = reorder_bits(t);
    CHECK(bf16_bits(t) == want);
    // a contiguous view at an odd offset (unaligned loads)
    if (n > 2) {
      const Tensor view = t.narrow(0, 1, n - 1);
      REQUIRE(view.is_contiguous());
      CHECK(bf16_bits(view) == std::vector<uint16_t>(want.begin() + 1, want.end()));
    }
    // and as Tensor::to(BFloat16) (software) for every value it rounds the same way: all
    // but denormals, which the instruction (and so oneDNN's reorder) flushes to ±0
    const auto soft = bits_of_to(t);
    int64_t differ = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const uint32_t b = std::bit_cast<uint32_t>(v[i]);
      const bool denormal = (b & 0x7f800000u) == 0 && (b & 0x007fffffu) != 0;
      differ += denormal ? (want[i] & 0x7fffu) != 0 : want[i] != soft[i];
    }
    CHECK(differ == 0);
  }
}

TEST_CASE("autocast: gradients of matmul and linear are Float32 and match Float32 within bf16 tolerance") {
  manual_seed(11);
  const std::vector<Tensor> mm_in{randn({64, 128}), randn({128, 32})};
  const auto mm_f = [](const std::vector<Tensor>& t) { return matmul(t[0], t[1]); };
  const std::vector<Tensor> lin_in{randn({64, 128}), randn({32, 128}), randn({32})};
  const auto lin_f = [](const std::vector<Tensor>& t) { return linear(t[0], t[1], t[2]); };
  const std::vector<Tensor> bmm_in{randn({2, 16, 24}), randn({2, 24, 8})};
  for (auto [f, in] : {std::pair{std::function(mm_f), mm_in}, {std::function(lin_f), lin_in},
                       {std::function(mm_f), bmm_in}}) {
    check_autocast_grads(f, in);
  }
}

TEST_CASE("autocast: conv2d and conv_transpose2d run in bf16 with Float32 outputs and gradients") {
  manual_seed(13);
  // LeNet's conv2 geometry (blocked layouts) and a strided, padded, grouped one
  const std::vector<Tensor> lenet{randn({8, 6, 12, 12}), randn({16, 6, 5, 5}), randn({16})};
  const auto lenet_f = [](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t[2]); };
  const std::vector<Tensor> odd{randn({3, 4, 11, 9}), randn({6, 2, 3, 3}), randn({6})};
  const auto odd_f = [](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t[2], 2, 1, 1, 2); };
  const std::vector<Tensor> tr{randn({2, 6, 7, 7}), randn({6, 4, 3, 3})};
  const auto tr_f = [](const std::vector<Tensor>& t) { return conv_transpose2d(t[0], t[1], {}, 2, 1); };
  for (auto [f, in] : {std::pair{std::function(lenet_f), lenet}, {std::function(odd_f), odd},
                       {std::function(tr_f), tr}}) {
    Tensor y32 = f(in), y16;
    {
      AutocastGuard g;
      y16 = f(in);
    }
    CHECK(y16.dtype() == Dtype::Float32);
    CHECK(rel_err(y16, y32) < kBf16Tol);
    if (bf16_supported()) CHECK(!same_bits(y16, y32));
    check_autocast_grads(f, in);
  }
}

TEST_CASE("autocast: create_graph through an autocast product stays exact Float32") {
  manual_seed(3);
  Tensor x = randn({8, 16}).requires_grad_(), w = randn({4, 16}).requires_grad_();
  Tensor y;
  {
    AutocastGuard g;
    y = linear(x, w);
  }
  // d/dx Σ y² = 2 y W; its gradient w.r.t. w is recorded and differentiates again
  auto gx = autograd::grad({sum(y * y)}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  CHECK(gx.dtype() == Dtype::Float32);
  CHECK(gx.requires_grad());
  sum(gx).backward();
  REQUIRE(w.grad().defined());
  CHECK(w.grad().dtype() == Dtype::Float32);
  // the same for conv2d: the recorded backward ops are exact Float32, so they match f32's double backward
  const Tensor xc = randn({2, 3, 8, 8}), wc = randn({4, 3, 3, 3});
  std::vector<Tensor> second;
  for (bool autocast : {false, true}) {
    Tensor xi = xc.detach().requires_grad_(), wi = wc.detach().requires_grad_();
    Tensor yc;
    {
      std::optional<AutocastGuard> guard;
      if (autocast) guard.emplace();
      yc = conv2d(xi, wi);
    }
    Tensor gxc = autograd::grad({sum(yc)}, {xi}, {}, true, true)[0];  // depends on w only
    sum(gxc * gxc).backward();
    second.push_back(wi.grad());
  }
  CHECK(second[1].dtype() == Dtype::Float32);
  CHECK(rel_err(second[1], second[0]) < 1e-5);
}

TEST_CASE("autocast: Float64 is not affected") {
  manual_seed(5);
  const Tensor a = randn({16, 24}, Dtype::Float64), b = randn({24, 8}, Dtype::Float64);
  const Tensor x = randn({2, 3, 9, 9}, Dtype::Float64), k = randn({4, 3, 3, 3}, Dtype::Float64);
  Tensor c = matmul(a, b), y = conv2d(x, k);
  AutocastGuard g;
  Tensor c2 = matmul(a, b), y2 = conv2d(x, k);
  CHECK(c2.dtype() == Dtype::Float64);
  CHECK(c2.to_vector<double>() == c.to_vector<double>());
  CHECK(y2.to_vector<double>() == y.to_vector<double>());
}

TEST_CASE("autocast: a small MLP trains under autocast") {
  manual_seed(1);
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(std::make_shared<nn::Linear>(20, 64));
  net->push_back(std::make_shared<nn::ReLU>());
  net->push_back(std::make_shared<nn::Linear>(64, 3));
  const Tensor x = randn({256, 20});
  const Tensor labels = argmax(matmul(x, randn({20, 3})), 1);  // a linear rule to learn
  optim::Adam opt(net->parameters(), 0.01);
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    Tensor loss;
    {
      AutocastGuard g;
      loss = cross_entropy((*net)(x), labels);
    }
    CHECK(loss.dtype() == Dtype::Float32);
    opt.zero_grad();
    loss.backward();
    for (const Tensor& p : net->parameters()) CHECK(p.grad().dtype() == Dtype::Float32);
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  CHECK(last < 0.5 * first);
}

TEST_CASE("autocast: mnist_mlp --precision bf16 trains and says so" * doctest::test_suite("slow") *
          doctest::skip(!tape_test::mnist_available())) {
  const std::string base = kBuild + "/examples/mnist_mlp --data " + tape_test::mnist_dir() +
                           " --limit-train 2000 --hidden 64 --batch-size 100 --epochs 2";
  tape_test::Run r = tape_test::run_command(base + " --precision bf16");
  INFO(r.out);
  REQUIRE(r.code == 0);
  if (bf16_supported()) {
    CHECK(r.out.find("precision bf16 (oneDNN " + cpu_isa_name().substr(0, cpu_isa_name().find(' '))) !=
          std::string::npos);
    CHECK(r.out.find("has no bf16 kernels") == std::string::npos);
  } else {
    CHECK(r.out.find("has no bf16 kernels") != std::string::npos);
    CHECK(r.out.find("precision f32") != std::string::npos);
  }
  const auto at = r.out.find("final test accuracy: ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(r.out.substr(at + 21)) > 80.0);  // 2 000 images, 2 epochs: f32 gets ~88 %
  tape_test::Run f32 = tape_test::run_command(base);
  CHECK(f32.out.find("precision f32") != std::string::npos);
}

TEST_CASE("autocast: an unknown --precision is a one-line error with exit code 2" * doctest::test_suite("slow")) {
  for (const std::string prog : {"mnist_mlp", "mnist_lenet5", "char_rnn", "moons"}) {
    tape_test::Run r = tape_test::run_command(kBuild + "/examples/" + prog + " --precision fp8");
    INFO(prog, " → ", r.out);
    CHECK(r.code == 2);
    CHECK(r.out == prog + ": error: unknown --precision 'fp8' (expected f32 or bf16)\n");
  }
}

TEST_CASE("autocast: without bf16 kernels the trainer says so once and trains in f32" * doctest::test_suite("slow") *
          doctest::skip(!tape_test::mnist_available())) {
  // oneDNN reads ONEDNN_MAX_CPU_ISA once per process: a child process sees a CPU without bf16
  tape_test::Run r = tape_test::run_command("ONEDNN_MAX_CPU_ISA=AVX512_CORE " + kBuild +
                                            "/examples/mnist_mlp --data " + tape_test::mnist_dir() +
                                            " --limit-train 2000 --hidden 64 --batch-size 100 --epochs 2 "
                                            "--precision bf16");
  INFO(r.out);
  REQUIRE(r.code == 0);
  const std::string line =
      "tape: bf16 autocast: this CPU (ISA avx512_core (AVX-512)) has no bf16 kernels; "
      "matmul/linear/conv stay float32\n";
  const auto first = r.out.find(line);
  CHECK(first != std::string::npos);
  CHECK(r.out.find(line, first + 1) == std::string::npos);  // once per process, not per step
  CHECK(r.out.find(", precision f32\n") != std::string::npos);
  const auto at = r.out.find("final test accuracy: ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(r.out.substr(at + 21)) > 80.0);
  // moons too (the guard is in the library: every program gets the same line)
  tape_test::Run m = tape_test::run_command("ONEDNN_MAX_CPU_ISA=AVX512_CORE " + kBuild +
                                            "/examples/moons --epochs 50 --precision bf16");
  CHECK(m.code == 0);
  CHECK(m.out.find(line) != std::string::npos);
  CHECK(m.out.find("training with precision f32") != std::string::npos);
}
