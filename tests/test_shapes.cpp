// Shapes and semantics at the edges (issue 10): 0-element tensors through every
// op (PyTorch's results), element counts that overflow, oneDNN and std::
// exceptions wrapped as tape::Error, NaN propagation, and Sequential in O(n).
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <new>
#include <stdexcept>
#include <string>
#include <tape/tape.hpp>
#include <tape_testing/gradcheck_ops.hpp>
#include <tape_testing/registry.hpp>

#include <dnnl.hpp>  // only for dnnl::error (header-only): the wrapper below must translate it

#include "tape/backend/dnnl_error.hpp"

using namespace tape;
using namespace tape::testing;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

/// A Float32 leaf of `shape` filled with 0.5 that requires grad.
Tensor leaf(const Shape& shape) { return full(shape, 0.5f).requires_grad_(); }
Tensor labels(std::vector<int64_t> v) {
  const auto n = int64_t(v.size());
  return tensor(std::move(v), {n});
}

/// A Float32 tensor of `shape` filled with 0.5 (no grad).
Tensor plain(const Shape& shape) { return full(shape, 0.5f); }

/// Values equal, NaN equal to NaN.
void check_same(const Tensor& t, const std::vector<float>& want) {
  const auto v = t.to_vector<float>();
  REQUIRE(v.size() == want.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(want[i])) CHECK_MESSAGE(std::isnan(v[i]), "index ", i, ": ", v[i], " is not NaN");
    else CHECK_MESSAGE(v[i] == want[i], "index ", i, ": ", v[i], " != ", want[i]);
  }
}

/// f throws a tape::Error whose message contains every piece.
void check_error(const std::function<void()>& f, std::initializer_list<std::string> pieces) {
  try {
    f();
    FAIL("no exception was thrown");
  } catch (const Error& e) {
    for (const auto& p : pieces) CHECK_MESSAGE(std::string(e.what()).find(p) != std::string::npos, e.what());
  } catch (const std::exception& e) {
    FAIL("a non-tape exception escaped: ", e.what());
  }
}

/// One run of a registered op on inputs with a 0-size dim.
struct EmptyCase {
  EmptyCase(std::vector<Tensor> in, Shape out_shape, std::vector<float> want = {})
      : inputs(std::move(in)), out(std::move(out_shape)), values(std::move(want)) {}
  std::vector<Tensor> inputs;
  Shape out;
  std::vector<float> values;  ///< expected output values (empty: only the shape is checked)
};

// Note: keyed by registry name, so an op added to the registry without an
// empty-tensor case fails the test below.
std::map<std::string, std::vector<EmptyCase>> empty_cases() {
  const float nan = kNaN;
  return {
      {"add", {{{leaf({0, 4}), leaf({4})}, {0, 4}}, {{leaf({0}), leaf({})}, {0}}}},
      {"sub", {{{leaf({2, 0, 4}), leaf({0, 1})}, {2, 0, 4}}}},
      {"mul", {{{leaf({3, 0}), leaf({3, 1})}, {3, 0}}, {{leaf({1}), leaf({0})}, {0}}}},
      {"div", {{{leaf({0}), leaf({1})}, {0}}}},
      {"scalar_ops", {{{leaf({0})}, {0}}}},
      {"neg", {{{leaf({0, 3})}, {0, 3}}}},
      {"exp", {{{leaf({0, 3})}, {0, 3}}}},
      {"log", {{{leaf({0, 3})}, {0, 3}}}},
      {"sqrt", {{{leaf({3, 0})}, {3, 0}}}},
      {"abs", {{{leaf({0})}, {0}}}},
      {"log1p", {{{leaf({0, 3})}, {0, 3}}}},
      {"expm1", {{{leaf({0, 3})}, {0, 3}}}},
      {"sin", {{{leaf({3, 0})}, {3, 0}}}},
      {"cos", {{{leaf({0})}, {0}}}},
      {"rsqrt", {{{leaf({0, 2})}, {0, 2}}}},
      {"square", {{{leaf({0})}, {0}}}},
      {"sign", {{{leaf({2, 0})}, {2, 0}}}},
      {"clamp", {{{leaf({0, 4})}, {0, 4}}}},
      {"maximum", {{{leaf({0, 4}), leaf({4})}, {0, 4}}}},
      {"minimum", {{{leaf({3, 0}), leaf({3, 1})}, {3, 0}}}},
      {"gelu", {{{leaf({0, 5})}, {0, 5}}}},
      {"silu", {{{leaf({5, 0})}, {5, 0}}}},
      {"softplus", {{{leaf({0})}, {0}}}},
      {"pow", {{{leaf({0, 2})}, {0, 2}}}},
      {"relu", {{{leaf({0, 5})}, {0, 5}}}},
      {"leaky_relu", {{{leaf({0, 5})}, {0, 5}}}},
      {"elu", {{{leaf({0, 5})}, {0, 5}}}},
      {"selu", {{{leaf({0, 5})}, {0, 5}}}},
      {"tanh", {{{leaf({0, 5})}, {0, 5}}}},
      {"sigmoid", {{{leaf({5, 0})}, {5, 0}}}},
      {"matmul",
       {{{leaf({0, 3}), leaf({3, 4})}, {0, 4}},
        {{leaf({2, 0}), leaf({0, 3})}, {2, 3}, std::vector<float>(6, 0.f)},
        {{leaf({2, 3}), leaf({3, 0})}, {2, 0}}}},
      {"matmul_batched",
       {{{leaf({0, 3, 4}), leaf({0, 4, 2})}, {0, 3, 2}},
        {{leaf({2, 1, 0}), leaf({2, 0, 2})}, {2, 1, 2}, std::vector<float>(4, 0.f)}}},
      {"matmul_transposed",
       {{{leaf({5, 0}), leaf({5, 4})}, {0, 4}}, {{leaf({0, 3}), leaf({0, 2})}, {3, 2}, std::vector<float>(6, 0.f)}}},
      {"linear",
       {{{leaf({0, 6}), leaf({3, 6}), leaf({3})}, {0, 3}},
        {{leaf({2, 0}), leaf({3, 0}), leaf({3})}, {2, 3}, std::vector<float>(6, 0.5f)}}},
      {"reshape", {{{leaf({0, 3})}, {3, 0}}}},
      {"flatten", {{{leaf({0, 3, 2})}, {0, 6}}}},
      {"transpose", {{{leaf({0, 3, 4})}, {4, 3, 0}}}},
      {"view", {{{leaf({0, 3, 4})}, {3, 2, 2, 0}}}},
      {"select", {{{leaf({3, 4, 0})}, {0, 3}}}},
      {"narrow", {{{leaf({4, 0})}, {0, 2}}}},
      {"slice", {{{leaf({0, 6})}, {3, 0}}}},
      {"squeeze", {{{leaf({0, 1, 4})}, {0, 4}}}},
      {"unsqueeze", {{{leaf({0, 4})}, {4, 0, 1}}}},
      {"permute", {{{leaf({2, 0, 4})}, {4, 2, 0}}}},
      {"expand", {{{leaf({1, 0})}, {2, 0, 3}}}},
      {"cat", {{{leaf({0, 2}), leaf({4, 0}), leaf({0, 1})}, {0, 7}}}},
      {"stack", {{{leaf({0, 4}), leaf({4, 0})}, {0, 2, 4}}}},
      {"split", {{{leaf({5, 0})}, {0, 5}}}},  // the parts joined back (in reverse)
      {"chunk", {{{leaf({7, 0})}, {7, 0}}}},
      {"index_select", {{{leaf({0, 4}), labels({2, 2})}, {0, 2}}, {{leaf({3, 4}), labels({})}, {3, 0}}}},
      {"gather", {{{leaf({3, 4}), tensor(std::vector<int64_t>{}, {3, 0})}, {3, 0}}}},
      {"scatter_add", {{{leaf({3, 4}), tensor(std::vector<int64_t>{}, {3, 0}), leaf({3, 0})}, {3, 4},
                        std::vector<float>(12, 0.5f)}}},
      {"to", {{{leaf({0, 3}), zeros({0}, Dtype::Float64)}, {0, 3}}}},
      {"sum_to", {{{leaf({0, 3, 4})}, {3, 1}, {0.f, 0.f, 0.f}}}},
      {"eq", {{{plain({0, 4}), plain({1})}, {0, 4}}}},
      {"ne", {{{plain({0, 4}), plain({4})}, {0, 4}}}},
      {"lt", {{{plain({2, 0}), plain({2, 1})}, {2, 0}}}},
      {"le", {{{plain({0}), plain({})}, {0}}}},
      {"gt", {{{plain({0, 4})}, {0, 4}}}},  // the scalar form
      {"ge", {{{plain({3, 0}), plain({1})}, {3, 0}}}},
      {"logical_and", {{{zeros({0, 4}, Dtype::Bool), zeros({1}, Dtype::Bool)}, {0, 4}}}},
      {"logical_or", {{{zeros({2, 0}, Dtype::Bool), zeros({2, 1}, Dtype::Bool)}, {2, 0}}}},
      {"logical_not", {{{zeros({0, 2}, Dtype::Bool)}, {0, 2}}}},
      {"isnan", {{{leaf({0, 3})}, {0, 3}}}},
      {"isfinite", {{{leaf({3, 0})}, {3, 0}}}},
      {"argmax", {{{leaf({0, 4})}, {0}}}},
      {"argmin", {{{leaf({3, 0})}, {1, 0}}}},
      {"one_hot", {{{labels({})}, {0, 4}}}},
      {"where", {{{zeros({0, 1}, Dtype::Bool), leaf({4}), leaf({0, 4})}, {0, 4}}}},
      {"masked_fill", {{{leaf({0, 3}), zeros({3}, Dtype::Bool)}, {0, 3}}}},
      {"sum", {{{leaf({0, 3})}, {}, {0.f}}}},
      {"sum_dim", {{{leaf({2, 0, 4})}, {2, 1, 4}, std::vector<float>(8, 0.f)}}},
      {"mean", {{{leaf({0, 3})}, {}, {nan}}}},
      {"mean_dim", {{{leaf({3, 0})}, {3}, {nan, nan, nan}}, {{leaf({0, 3})}, {0}}}},
      {"max_dim", {{{leaf({0, 4})}, {0}}}},
      {"min_dim", {{{leaf({3, 0})}, {1, 0}}}},
      {"prod", {{{leaf({0, 3})}, {}, {1.f}}}},
      {"var", {{{leaf({3, 0})}, {3}, {nan, nan, nan}}, {{leaf({0, 4})}, {0}}}},
      {"std", {{{leaf({0, 3})}, {1, 3}, {nan, nan, nan}}}},
      {"logsumexp", {{{leaf({2, 0})}, {2}, {-std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}}, {{leaf({0, 3})}, {0}}}},
      {"norm", {{{leaf({0, 3})}, {}, {0.f}}}},
      {"norm_p1", {{{leaf({0})}, {}, {0.f}}}},
      {"norm_p3", {{{leaf({2, 0})}, {}, {0.f}}}},
      {"softmax", {{{leaf({0, 5})}, {0, 5}}, {{leaf({3, 0})}, {3, 0}}}},
      {"softmax_dim0", {{{leaf({0, 3})}, {0, 3}}}},
      {"log_softmax", {{{leaf({0, 5})}, {0, 5}}}},
      {"cross_entropy", {{{leaf({0, 5}), labels({})}, {}, {nan}}}},
      {"cross_entropy_probs", {{{leaf({0, 4}), zeros({0, 4})}, {}, {nan}}}},
      {"nll_loss", {{{leaf({0, 3}), labels({})}, {}, {nan}}}},
      {"mse_loss", {{{leaf({0, 4}), leaf({0, 4})}, {}, {nan}}}},
      {"cross_entropy_options", {{{leaf({0, 5}), labels({}), zeros({0})}, {}, {nan}}}},
      {"bce_with_logits", {{{leaf({0, 4}), leaf({0, 4})}, {}, {nan}}}},
      {"l1_loss", {{{leaf({0, 4}), leaf({0, 4})}, {}, {nan}}}},
      {"smooth_l1_loss", {{{leaf({0, 4}), leaf({0, 4})}, {}, {nan}}}},
      {"huber_loss", {{{leaf({0, 4}), leaf({0, 4})}, {}, {nan}}}},
      {"dropout", {{{leaf({0, 6})}, {0, 6}}}},
      {"conv2d",
       {{{leaf({0, 3, 7, 7}), leaf({4, 3, 3, 3}), leaf({4})}, {0, 4, 7, 7}},
        {{leaf({2, 3, 7, 7}), leaf({0, 3, 3, 3}), leaf({0})}, {2, 0, 7, 7}}}},
      {"conv2d_stride2", {{{leaf({0, 2, 7, 6}), leaf({3, 2, 3, 2})}, {0, 3, 3, 3}}}},
      {"max_pool2d", {{{leaf({0, 3, 6, 6})}, {0, 3, 3, 3}}, {{leaf({2, 0, 6, 6})}, {2, 0, 3, 3}}}},
      {"max_pool2d_overlap", {{{leaf({0, 2, 7, 8})}, {0, 2, 3, 3}}}},
      {"conv2d_relu_max_pool2d", {{{leaf({0, 3, 8, 8}), leaf({4, 3, 3, 3}), leaf({4})}, {0, 4, 3, 3}}}},
      {"conv2d_groups", {{{leaf({0, 4, 7, 5}), leaf({6, 2, 3, 2}), leaf({6})}, {0, 6, 3, 8}}}},
      {"conv2d_depthwise", {{{leaf({0, 3, 6, 6}), leaf({3, 1, 3, 3})}, {0, 3, 4, 4}}}},
      {"conv_transpose2d", {{{leaf({0, 4, 3, 3}), leaf({4, 3, 3, 2}), leaf({6})}, {0, 6, 6, 6}}}},
      {"conv_transpose2d_dilation", {{{leaf({0, 2, 3, 4}), leaf({2, 3, 3, 3})}, {0, 3, 6, 7}}}},
      {"avg_pool2d", {{{leaf({0, 3, 7, 6})}, {0, 3, 4, 3}}, {{leaf({2, 0, 7, 6})}, {2, 0, 4, 3}}}},
      {"avg_pool2d_exclude_pad", {{{leaf({0, 3, 7, 6})}, {0, 3, 4, 7}}}},
      {"avg_pool2d_ceil", {{{leaf({0, 2, 5, 7})}, {0, 2, 3, 3}}}},
      {"avg_pool2d_ceil_exclude_pad", {{{leaf({0, 2, 5, 7})}, {0, 2, 3, 4}}}},
      {"adaptive_avg_pool2d", {{{leaf({0, 3, 7, 5})}, {0, 3, 3, 2}}}},
      // normalization: an empty batch normalises nothing (PyTorch 1.13 gives the empty output, no error)
      {"batch_norm", {{{leaf({0, 3, 2}), leaf({3}), leaf({3})}, {0, 3, 2}}}},
      {"batch_norm_eval", {{{leaf({0, 3, 2}), leaf({3}), leaf({3})}, {0, 3, 2}}}},
      {"layer_norm", {{{leaf({0, 4}), leaf({4}), leaf({4})}, {0, 4}}, {{leaf({2, 0, 4}), leaf({4}), leaf({4})}, {2, 0, 4}}}},
      {"group_norm", {{{leaf({0, 4, 3}), leaf({4}), leaf({4})}, {0, 4, 3}}}},
      // embedding: no indices → no rows; the weight's gradient is zero
      {"embedding", {{{leaf({4, 2}), labels({}).reshape({0, 3})}, {0, 3, 2}}}},
      {"embedding_padding_idx", {{{leaf({4, 2}), labels({})}, {0, 2}}}},
      // recurrent layers over an empty batch: [T, 0, H] outputs (lstm's entry concatenates y and c_n)
      {"lstm", {{{leaf({2, 0, 2}), leaf({12, 2}), leaf({12, 3}), leaf({12}), leaf({12})}, {0}}}},
      {"gru", {{{leaf({2, 0, 2}), leaf({9, 2}), leaf({9, 3}), leaf({9}), leaf({9})}, {2, 0, 3}}}},
  };
}

}  // namespace

TEST_CASE("shapes: every registered op on 0-element tensors, forward and backward") {
  const auto cases = empty_cases();
  int ran = 0;
  for (const OpInfo& op : op_registry()) {
    CAPTURE(op.name);
    auto it = cases.find(op.name);
    if (op.name == "max_all") {  // max over no elements has no value: an error, as in PyTorch
      check_error([] { max(leaf({0, 3})); }, {"max", "[0, 3]"});
      continue;
    }
    REQUIRE_MESSAGE(it != cases.end(), "no empty-tensor case for registered op ", op.name);
    for (const EmptyCase& c : it->second) {
      std::vector<Tensor> in;  // fresh leaves: no gradient left over from another case
      for (const Tensor& t : c.inputs) {
        Tensor copy = t.detach().clone();
        if (t.requires_grad()) copy.requires_grad_();
        in.push_back(copy);
      }
      Tensor y = op.fn(in);
      CHECK(y.shape() == c.out);
      if (!c.values.empty()) check_same(y, c.values);
      // backward: every input that requires grad gets a gradient of its own shape;
      // when no output element exists nothing flows, so every gradient is zero
      if (!y.requires_grad()) {  // Bool / Int64 results (comparisons, argmax, one_hot): no backward
        const bool differentiable_float = is_floating(y.dtype()) && op.differentiable;
        CHECK_FALSE(differentiable_float);
        ++ran;
        continue;
      }
      sum(y).backward();
      for (const Tensor& t : in) {
        if (!t.requires_grad()) continue;
        REQUIRE(t.grad().defined());
        CHECK(t.grad().shape() == t.shape());
        if (y.numel() == 0) check_same(t.grad(), std::vector<float>(size_t(t.numel()), 0.f));
      }
      ++ran;
    }
  }
  CHECK(ran >= 50);
}

TEST_CASE("shapes: matmul, Linear, Conv2d and MaxPool2d on an empty batch, forward and backward") {
  // matmul with K = 0 is a sum over nothing: zeros, and dA, dB are empty / zero
  Tensor a = leaf({2, 0}), b = leaf({0, 3});
  Tensor c = matmul(a, b);
  check_same(c, std::vector<float>(6, 0.f));
  sum(c).backward();
  CHECK(a.grad().shape() == Shape{2, 0});
  CHECK(b.grad().shape() == Shape{0, 3});
  // dB = Aᵀ·G with an empty batch: zeros of B's shape
  Tensor a2 = leaf({0, 3}), b2 = leaf({3, 4});
  sum(matmul(a2, b2)).backward();
  check_same(b2.grad(), std::vector<float>(12, 0.f));

  // a LeNet-shaped model on a batch of 0 images: shapes like PyTorch, zero parameter gradients
  nn::Sequential net{std::make_shared<nn::Conv2d>(1, 6, 5), std::make_shared<nn::ReLU>(),
                     std::make_shared<nn::MaxPool2d>(2), std::make_shared<nn::Flatten>(),
                     std::make_shared<nn::Linear>(6 * 12 * 12, 10)};
  Tensor x = zeros({0, 1, 28, 28}).requires_grad_();
  Tensor h = net.at<nn::MaxPool2d>(2)->forward(relu(net.at<nn::Conv2d>(0)->forward(x)));
  CHECK(h.shape() == Shape{0, 6, 12, 12});
  Tensor logits = net(x);
  CHECK(logits.shape() == Shape{0, 10});
  Tensor loss = cross_entropy(logits, labels({}));
  CHECK(std::isnan(loss.item()));  // PyTorch: mean over an empty batch is NaN
  sum(logits).backward();
  CHECK(x.grad().shape() == Shape{0, 1, 28, 28});
  for (const auto& [name, p] : net.named_parameters()) {
    CAPTURE(name);
    REQUIRE(p.grad().defined());
    check_same(p.grad(), std::vector<float>(size_t(p.numel()), 0.f));
  }
  // linear on 3-D input with an empty middle dim, and with zero in-features (y = bias)
  CHECK(linear(zeros({2, 0, 4}), zeros({3, 4}), zeros({3})).shape() == Shape{2, 0, 3});
  check_same(linear(zeros({2, 1, 0}), zeros({3, 0}), full({3}, 2.f)), std::vector<float>(6, 2.f));
  // conv2d with an empty batch and a bias: the bias gradient is zero
  Tensor w = leaf({4, 3, 3, 3}), bias = leaf({4});
  Tensor y = conv2d(zeros({0, 3, 5, 5}), w, bias, 1, 1);
  CHECK(y.shape() == Shape{0, 4, 5, 5});
  sum(y).backward();
  check_same(bias.grad(), {0.f, 0.f, 0.f, 0.f});
  // max_pool2d of an empty batch with nothing recorded (inference path)
  CHECK(max_pool2d(zeros({0, 2, 4, 4}), 2).shape() == Shape{0, 2, 2, 2});
}

TEST_CASE("shapes: reductions, softmax, losses and elementwise ops on empties") {
  CHECK(sum(zeros({0})).item() == 0.f);
  CHECK(std::isnan(mean(zeros({0})).item()));
  CHECK(std::isnan(mean(zeros({2, 0, 3})).item()));
  check_same(sum(zeros({0, 3}), 0), {0.f, 0.f, 0.f});
  check_same(mean(zeros({0, 3}), 0), {kNaN, kNaN, kNaN});
  CHECK(mean(zeros({0, 3}), 1).shape() == Shape{0});
  CHECK(max(zeros({0, 3}), 1).shape() == Shape{0});
  CHECK(argmax(zeros({0, 3}), 1, true).shape() == Shape{0, 1});
  // PyTorch errors when the reduced dim itself is empty
  check_error([] { max(zeros({0, 3}), 0); }, {"max", "[0, 3]"});
  check_error([] { argmax(zeros({3, 0}), 1); }, {"argmax", "[3, 0]"});
  check_error([] { max(zeros({0})); }, {"max", "[0]", "no elements"});
  // losses on empty batches: NaN for the mean reduction, like PyTorch
  CHECK(std::isnan(nll_loss(zeros({0, 4}), labels({})).item()));
  CHECK(std::isnan(mse_loss(zeros({0}), zeros({0})).item()));
  CHECK(one_hot(labels({}), 3).shape() == Shape{0, 3});
  // elementwise and broadcast, in-place methods
  CHECK((zeros({0, 3}) + ones({1, 3})).shape() == Shape{0, 3});
  CHECK((ones({}) * zeros({4, 0})).shape() == Shape{4, 0});
  check_error([] { zeros({0, 3}) + ones({2, 3}); }, {"add", "[0, 3]", "[2, 3]"});
  Tensor e = zeros({0, 3});
  e.add_(ones({3})).mul_(2.f).fill_(1.f).zero_();
  e.copy_(zeros({0, 3}));
  CHECK(e.numel() == 0);
  CHECK(sum_to(zeros({0, 3}), {1, 3}).shape() == Shape{1, 3});
  CHECK(zeros({0, 3}).t().clone().shape() == Shape{3, 0});
  CHECK(dropout(zeros({0}), 0.5f, true).numel() == 0);
  CHECK(max_abs_diff(zeros({0}), zeros({0})) == 0.f);
  CHECK(allclose(zeros({2, 0}), zeros({2, 0})));
  CHECK(zeros({0}).to_vector<float>().empty());
  check_error([] { zeros({0}).item(); }, {"item", "[0]"});
}

TEST_CASE("shapes: reshape of empties") {
  Tensor e = zeros({0, 3});
  CHECK(reshape(e, {-1}).shape() == Shape{0});
  CHECK(reshape(e, {3, 0}).shape() == Shape{3, 0});
  CHECK(reshape(e, {2, -1, 3}).shape() == Shape{2, 0, 3});
  CHECK(flatten(zeros({2, 0, 3})).shape() == Shape{2, 0});
  // PyTorch: "the unspecified dimension size -1 can be any value and is ambiguous"
  check_error([&] { reshape(e, {0, -1}); }, {"reshape", "[0, 3]", "[0, -1]", "ambiguous"});
  check_error([&] { reshape(e, {1}); }, {"reshape", "[0, 3]", "[1]"});
}

TEST_CASE("shapes: printing an empty tensor shows its shape") {
  CHECK(to_string(zeros({0, 3})) == "tensor([], shape=[0, 3], dtype=Float32)");
  CHECK(to_string(zeros({0})) == "tensor([], shape=[0], dtype=Float32)");
  CHECK(to_string(zeros({2, 0, 3}, Dtype::Int64)) == "tensor([], shape=[2, 0, 3], dtype=Int64)");
  CHECK(to_string(leaf({3, 0})) == "tensor([], shape=[3, 0], dtype=Float32, requires_grad=true)");
}

TEST_CASE("shapes: element counts and byte sizes that overflow are errors, never heap overflows") {
  const int64_t big = int64_t(1) << 32;  // big·big = 2^64: wraps to 0 in int64
  const Shape huge{big, big};
  check_error([&] { Tensor::empty(huge); }, {"[4294967296, 4294967296]", "overflow"});
  check_error([&] { zeros(huge); }, {"overflow"});
  check_error([&] { zeros(huge, Dtype::Int64); }, {"overflow"});
  check_error([&] { ones(huge); }, {"overflow"});
  check_error([&] { full(huge, 1.f); }, {"overflow"});
  check_error([&] { randn(huge); }, {"overflow"});
  check_error([&] { conv2d(zeros({1, 1, 3, 3}), zeros({1, 1, 3, 3}), {}, 1, int64_t(1) << 62); },
              {"conv2d: padding 4611686018427387904 overflows"});
  check_error([&] { rand(huge); }, {"overflow"});
  check_error([&] { tensor({1.f}, {big, big, 3}); }, {"overflow"});
  check_error([&] { tensor(std::vector<int64_t>{1}, {big, big}); }, {"overflow"});
  check_error([&] { Tensor::empty({0, big, big}); }, {"overflow"});  // strides would overflow
  check_error([&] { Tensor::empty({-1, 3}); }, {"[-1, 3]", "non-negative"});
  // the element count fits, the bytes do not (2^62 floats = 2^64 bytes)
  check_error([&] { zeros({int64_t(1) << 62}); }, {"[4611686018427387904]", "bytes"});
  check_error([&] { arange(std::numeric_limits<int64_t>::max()); }, {"bytes"});
  check_error([&] { arange(0.f, std::numeric_limits<float>::infinity()); }, {"arange"});
  check_error([&] { arange(0.f, 1e30f, 1e-10f); }, {"arange"});
  check_error([&] { arange(0.f, kNaN); }, {"arange"});
  // reshape: the product of the sizes, and of the known sizes next to a -1
  Tensor x = zeros({4});
  check_error([&] { reshape(x, {big, big}); }, {"reshape", "overflow"});
  check_error([&] { reshape(x, {-1, big, big}); }, {"reshape", "overflow"});
  check_error([&] { reshape(zeros({0}), {0, big, big}); }, {"reshape", "overflow"});
  // numel of a hand-made TensorImpl
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = huge;
  impl->strides = {big, 1};
  check_error([&] { Tensor(impl).numel(); }, {"overflow"});
  CHECK(shape_numel({3, 0, big, 5}) == 0);
  check_error([&] { shape_numel(huge); }, {"overflow"});
  // Layers size their parameters through the same checked path.
  check_error([&] { nn::Linear(big, big); }, {"overflow"});
#if !defined(__SANITIZE_ADDRESS__)  // ASan aborts on an allocation it cannot serve
  // allocation failure: 4 TiB is never available; the message names the bytes and shape
  check_error([&] { zeros({int64_t(1) << 40}); }, {"4398046511104 bytes", "[1099511627776]"});
#endif
}

TEST_CASE("shapes: oneDNN and std:: exceptions reach the user as tape::Error") {
  const Shape s{2, 3};
  // a real dnnl::error (as oneDNN throws for an invalid primitive configuration)
  check_error(
      [&] {
        backend::translate_errors("matmul", {&s}, [] {
          throw dnnl::error(dnnl_invalid_arguments, "could not create a primitive descriptor for a matmul primitive");
        });
      },
      {"matmul", "[2, 3]", "oneDNN", "invalid_arguments", "could not create a primitive descriptor"});
  check_error([&] { backend::translate_errors("conv2d", {&s, &s}, [] { throw std::bad_alloc(); }); },
              {"conv2d", "[2, 3]", "out of memory"});
  check_error([&] { backend::translate_errors("pool", {}, [] { throw std::out_of_range("vector"); }); },
              {"pool", "vector"});
  // a tape::Error passes through unchanged
  CHECK_THROWS_WITH_AS(backend::translate_errors("op", {&s}, [] { throw Error("mine"); }), "mine", Error);
  // the happy path returns the value
  CHECK(backend::translate_errors("op", {&s}, [] { return 7; }) == 7);
  // public API: std:: containers' exceptions never escape
  nn::Sequential seq;
  check_error([&] { seq.at(3); }, {"index 3"});
}

TEST_CASE("shapes: NaN propagates like PyTorch") {
  // activations, on the scalar path and on the bulk (oneDNN eltwise) path
  for (int64_t n : {int64_t(5), int64_t(8192)}) {
    CAPTURE(n);
    Tensor x = full({n}, 0.25f);
    x.data<float>()[1] = kNaN;
    x.data<float>()[n - 1] = kNaN;
    for (auto [name, f] : std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>>{
             {"relu", [](const Tensor& t) { return relu(t); }},
             {"leaky_relu", [](const Tensor& t) { return leaky_relu(t, 0.1f); }},
             {"elu", [](const Tensor& t) { return elu(t); }},
             {"selu", [](const Tensor& t) { return selu(t); }},
             {"tanh", [](const Tensor& t) { return tanh(t); }},
             {"sigmoid", [](const Tensor& t) { return sigmoid(t); }},
             {"exp", [](const Tensor& t) { return exp(t); }},
             {"abs", [](const Tensor& t) { return abs(t); }}}) {
      CAPTURE(name);
      const auto y = f(x).to_vector<float>();
      CHECK(std::isnan(y[1]));
      CHECK(std::isnan(y[size_t(n - 1)]));
      CHECK(!std::isnan(y[0]));
    }
  }
  // relu: forward NaN, backward 0 at NaN (PyTorch's threshold_backward: g where y > 0)
  Tensor r = tensor({kNaN, 2.f, -1.f}, {3}, true);
  Tensor ry = relu(r);
  check_same(ry, {kNaN, 2.f, 0.f});
  sum(ry).backward();
  check_same(r.grad(), {0.f, 1.f, 0.f});

  // max_pool2d: a window holding a NaN gives NaN; the others are untouched
  Tensor x = arange(0.f, 16.f).reshape({1, 1, 4, 4}).detach();
  x.data<float>()[5] = kNaN;  // window (0, 0)
  check_same(max_pool2d(x, 2), {kNaN, 7.f, 13.f, 15.f});
  check_same(max_pool2d(x, 3, 1), {kNaN, kNaN, kNaN, kNaN});
  // ... with grad: the NaN's position receives the window's gradient
  Tensor xg = x.clone().requires_grad_();
  Tensor yg = max_pool2d(xg, 2);
  check_same(yg, {kNaN, 7.f, 13.f, 15.f});
  sum(yg).backward();
  const auto gx = xg.grad().to_vector<float>();
  CHECK(gx[5] == 1.f);
  CHECK(gx[0] + gx[1] + gx[4] == 0.f);
  CHECK(gx[7] == 1.f);
  CHECK(gx[15] == 1.f);
  // a large pooling (the fast path's size) with one NaN
  Tensor big = zeros({2, 4, 32, 32});
  big.data<float>()[3 * 32 * 32 + 10 * 32 + 11] = kNaN;  // image 0, channel 3, (10, 11)
  const auto pooled = max_pool2d(big, 2).to_vector<float>();
  int nans = 0;
  for (float v : pooled) nans += std::isnan(v);
  CHECK(nans == 1);
  CHECK(std::isnan(pooled[size_t(3 * 16 * 16 + 5 * 16 + 5)]));

  // max / argmax along a dim: max is NaN, argmax is the NaN's index
  Tensor m = tensor({1.f, kNaN, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  check_same(max(m, 1), {kNaN, 6.f});
  CHECK(argmax(m, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  Tensor m0 = tensor({kNaN, 1.f, 2.f}, {3});
  CHECK(argmax(m0, 0).to_vector<int64_t>() == std::vector<int64_t>{0});
  CHECK(std::isnan(max(m0).item()));
  // softmax: a row with a NaN is all NaN, other rows are finite
  Tensor s = tensor({1.f, kNaN, 2.f, 1.f, 2.f, 3.f}, {2, 3});
  for (const Tensor& out : {softmax(s, 1), log_softmax(s, 1)}) {
    const auto v = out.to_vector<float>();
    CHECK((std::isnan(v[0]) && std::isnan(v[1]) && std::isnan(v[2])));
    CHECK((std::isfinite(v[3]) && std::isfinite(v[4]) && std::isfinite(v[5])));
  }
  // reductions and losses
  CHECK(std::isnan(sum(m).item()));
  CHECK(std::isnan(cross_entropy(s, labels({0, 1})).item()));
  CHECK(std::isnan(mse_loss(m, zeros({2, 3})).item()));
}

TEST_CASE("shapes: Sequential builds in O(n)") {
  // Note: no timing assertion. Before the fix each push_back scanned every name
  // and renamed every parameter of the whole model (with an O(p²) duplicate
  // check), so these loops ran for hours.
  constexpr int kLayers = 100000;
  nn::Sequential seq;
  for (int i = 0; i < kLayers; ++i) seq.push_back(std::make_shared<nn::ReLU>());
  CHECK(seq.size() == size_t(kLayers));
  CHECK(seq.named_children().back().first == "99999");
  check_error([&] { seq.push_back("5", std::make_shared<nn::ReLU>()); }, {"\"5\"", "already registered"});

  constexpr int kLinear = 50000;
  nn::Sequential lin;
  for (int i = 0; i < kLinear; ++i) lin.push_back(std::make_shared<nn::Linear>(1, 1));
  const auto named = lin.named_parameters();
  REQUIRE(named.size() == size_t(2 * kLinear));
  CHECK(named[2 * kLinear - 1].first == "49999.bias");
  CHECK(named[2 * kLinear - 2].second.is_same(lin.at<nn::Linear>(kLinear - 1)->weight));
  CHECK(lin.num_parameters() == 2 * kLinear);

  // nested: names are relative to the module that registered them, then prefixed
  struct Net : nn::Module {
    std::shared_ptr<nn::Sequential> body;
    Net() {
      body = register_module("body", std::make_shared<nn::Sequential>());
      body->push_back(std::make_shared<nn::Linear>(2, 2));  // added after registration
    }
    Tensor forward(const Tensor& x) override { return (*body)(x); }
  };
  Net net;
  const auto net_named = net.named_parameters();
  REQUIRE(net_named.size() == 2);
  CHECK(net_named[0].first == "body.0.weight");
  CHECK(net_named[1].first == "body.0.bias");
  CHECK(net_named[1].second.is_same(net.body->at<nn::Linear>(0)->bias));
}
