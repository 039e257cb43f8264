// The program of docs/tutorial.md: a small MLP trained on the moons toy set,
// saved to a checkpoint, loaded into a fresh model, used for predictions.
// The regions between "// tutorial: begin NAME" and "// tutorial: end NAME" are
// copied verbatim into docs/tutorial.md; tests/check_tutorial.py keeps them in sync.
//
// Build:  g++ -std=c++20 -O2 app.cpp $(pkg-config --cflags --libs tape) -o app
//    or:  cmake -S . -B build && cmake --build build
// Run:    ./app [checkpoint path]   (default: moons_mlp.ckpt)

// tutorial: begin includes
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <tape/tape.hpp>

using namespace tape;
// tutorial: end includes

// tutorial: begin dense
/// A dense layer written by hand: y = x·W + b, with W [in, out] He-initialised.
class Dense : public nn::Module {
 public:
  Dense(int64_t in, int64_t out) {
    weight = register_parameter("weight", randn({in, out}) * std::sqrt(2.f / float(in)));
    bias = register_parameter("bias", zeros({out}));
  }
  Tensor forward(const Tensor& x) override { return matmul(x, weight) + bias; }

  Tensor weight, bias;
};
// tutorial: end dense

// tutorial: begin mlp
/// Two layers with a ReLU in between: one of ours, one of tape's (nn::Linear).
class Mlp : public nn::Module {
 public:
  Mlp(int64_t in, int64_t hidden, int64_t classes) {
    fc1 = register_module("fc1", std::make_shared<Dense>(in, hidden));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(hidden, classes));
  }
  Tensor forward(const Tensor& x) override { return (*fc2)(relu((*fc1)(x))); }

  std::shared_ptr<Dense> fc1;
  std::shared_ptr<nn::Linear> fc2;
};
// tutorial: end mlp

// tutorial: begin predict
/// Class predictions for every row of `x`: no graph is recorded, dropout (if any) is off.
std::vector<int64_t> predict(nn::Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  model.eval();
  std::vector<int64_t> classes = argmax(model(x), 1).to_vector<int64_t>();
  model.train();
  return classes;
}

double accuracy(nn::Module& model, const data::TensorDataset& ds) {
  NoGradGuard no_grad;
  model.eval();
  Tensor correct = argmax(model(ds.images), 1) == ds.labels;  // Int64 == Int64 → Bool
  model.train();
  return correct.to(Dtype::Float64).mean().item<double>();
}
// tutorial: end predict

// tutorial: begin inspect
/// Metrics and data plumbing with tensor ops alone: masks, counts, gathering
/// rows, joining columns, a Float64 loss — no raw pointers.
void inspect(nn::Module& model, const data::TensorDataset& ds) {
  NoGradGuard no_grad;
  model.eval();
  Tensor logits = model(ds.images);                // [N, 2] Float32
  Tensor pred = argmax(logits, 1);                 // [N] Int64
  Tensor correct = pred == ds.labels;              // [N] Bool
  for (int64_t c = 0; c < 2; ++c) {                // recall per class
    Tensor in_class = ds.labels == float(c);
    const auto total = in_class.to(Dtype::Int64).sum().item<int64_t>();
    const auto hits = logical_and(in_class, correct).to(Dtype::Int64).sum().item<int64_t>();
    std::printf("class %lld: %lld of %lld right\n", (long long)c, (long long)hits, (long long)total);
  }
  // the least confident prediction, fetched by index
  Tensor confidence = max(softmax(logits, 1), 1);  // [N]
  Tensor least = argmin(confidence, 0, /*keepdim=*/true);  // [1] Int64
  Tensor point = index_select(ds.images, 0, least);        // [1, 2]
  std::printf("least confident: (%.2f, %.2f) at p = %.3f\n", point.select(1, 0).item<double>(),
              point.select(1, 1).item<double>(), index_select(confidence, 0, least).item<double>());
  // a table of x, y, label and prediction: columns joined with cat, first rows by slice
  Tensor table = cat({ds.images, stack({ds.labels, pred}, 1).to(Dtype::Float32)}, 1);  // [N, 4]
  std::cout << "first rows (x, y, label, prediction):\n" << table.slice(0, 0, 3) << "\n";
  // the same loss in Float64: ops run in the dtype of their inputs
  Tensor loss64 = cross_entropy(logits.to(Dtype::Float64), ds.labels);
  std::printf("test loss %.6f (%s)\n", loss64.item<double>(), dtype_name(loss64.dtype()));
  // wrong predictions masked out of the confidences (where / masked_fill)
  Tensor wrong_conf = confidence.masked_fill(correct, 0.0);
  std::printf("most confident mistake: p = %.3f\n", max(wrong_conf).item<double>());
  model.train();
}
// tutorial: end inspect

// tutorial: begin function
/// Swish, y = x·σ(x), as a custom autograd Function: forward computes without
/// recording, backward gets one gradient per output and returns one per input.
struct Swish : autograd::Function<Swish> {
  static Tensor forward(autograd::AutogradContext* ctx, const Tensor& x) {
    Tensor s = sigmoid(x);
    ctx->save_for_backward({x, s});
    return x * s;
  }
  static std::vector<Tensor> backward(autograd::AutogradContext* ctx, std::vector<Tensor> grad) {
    auto saved = ctx->get_saved_variables();
    const Tensor& x = saved[0];
    const Tensor& s = saved[1];
    return {grad[0] * (s + x * s * (1.0 - s))};  // written with ops: differentiable again
  }
};
// tutorial: end function

// tutorial: begin penalty
/// A gradient penalty (as in WGAN-GP): how far the norm of ∂score/∂x is from 1 at
/// each point. create_graph records the gradient computation itself, so the
/// penalty can be minimised like any loss.
Tensor gradient_penalty(nn::Module& model, const Tensor& points) {
  Tensor x = points.detach().requires_grad_();
  Tensor logits = model(x);
  Tensor score = logits.select(1, 1) - logits.select(1, 0);  // [N]
  Tensor g = autograd::grad({score.sum()}, {x}, {}, /*retain_graph=*/false, /*create_graph=*/true)[0];  // [N, 2]
  return ((g * g).sum(1).sqrt() - 1.0).pow(2).mean();
}

/// A few steps that trade some accuracy for a smoother decision function.
void smooth(nn::Module& model, const data::TensorDataset& train, const data::TensorDataset& test) {
  Tensor x = randn({5, 3}, Dtype::Float64).requires_grad_();  // the custom Function against x·σ(x)
  Tensor g_custom = autograd::grad({Swish::apply(x).sum()}, {x})[0];
  Tensor g_ops = autograd::grad({(x * sigmoid(x)).sum()}, {x})[0];
  std::printf("custom Function: Swish gradient vs x*sigmoid(x): max difference %.1e\n", max_abs_diff(g_custom, g_ops));

  optim::Adam opt(model.parameters(), /*lr=*/0.003);
  const double before = gradient_penalty(model, train.images).item<double>();
  for (int step = 0; step < 30; ++step) {
    Tensor loss = cross_entropy(model(train.images), train.labels) + 0.1 * gradient_penalty(model, train.images);
    opt.zero_grad();
    loss.backward();  // through the penalty's recorded gradient: second derivatives
    opt.step();
  }
  std::printf("gradient penalty %.3f -> %.3f, test accuracy %.2f%%\n", before,
              gradient_penalty(model, train.images).item<double>(), 100 * accuracy(model, test));
}
// tutorial: end penalty

// tutorial: begin rings
/// Your own data: implement size() and get(i). Two noisy concentric rings, each
/// point made from its index with its own generator, so get() is a pure function
/// (DataLoader workers call it from several threads at once).
class Rings : public data::Dataset {
 public:
  Rings(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  int64_t size() const override { return n_; }
  data::Example get(int64_t i) const override {
    Generator g(seed_ * 1'000'003 + uint64_t(i));
    const int64_t label = i % 2;  // inner ring 0, outer ring 1
    const double angle = 2 * std::numbers::pi * g.uniform(), radius = 1.0 + double(label) + 0.2 * g.normal();
    return {tensor({float(radius * std::cos(angle)), float(radius * std::sin(angle))}, {2}),
            full({}, double(label), Dtype::Int64)};
  }

 private:
  int64_t n_;
  uint64_t seed_;
};

/// BatchNorm between two layers: batch statistics while training, the running
/// ones (buffers, saved in state_dict and checkpoints) after eval().
class BnMlp : public nn::Module {
 public:
  BnMlp() {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(2, 32));
    bn1 = register_module("bn1", std::make_shared<nn::BatchNorm1d>(32));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(32, 2));
  }
  Tensor forward(const Tensor& x) override { return (*fc2)(relu((*bn1)((*fc1)(x)))); }

  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::BatchNorm1d> bn1;
};
// tutorial: end rings

// tutorial: begin rings-train
void train_rings() {
  manual_seed(0);
  BnMlp net;
  // two worker threads prepare batches ahead; the batches are the same for any count
  data::DataLoader loader(Rings(2000, 1), {.batch_size = 64, .shuffle = true, .seed = 0, .num_workers = 2});
  optim::SGD opt(net.parameters(), optim::SGDOptions(0.05).momentum(0.9));
  for (int epoch = 0; epoch < 10; ++epoch) {
    for (data::Batch& b : loader) {  // b.data and b.target (or b.x and b.y)
      Tensor loss = cross_entropy(net(b.data), b.target);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  net.eval();  // BatchNorm switches to its running statistics
  data::DataLoader test(Rings(1000, 2), {.batch_size = 1000});
  data::Batch all = *test.begin();
  NoGradGuard no_grad;
  const double acc = (argmax(net(all.data), 1) == all.target).to(Dtype::Float64).mean().item<double>();
  std::printf("rings: BatchNorm MLP test accuracy %.2f%% (eval mode)\n", 100 * acc);
  std::printf("state_dict:");
  for (const auto& [name, t] : net.state_dict()) std::printf(" %s", name.c_str());  // bn1.running_mean ...
  std::printf("\n");
}
// tutorial: end rings-train

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "moons_mlp.ckpt";
  try {
    // tutorial: begin model
    manual_seed(42);  // parameter initialisation draws from the global generator
    Mlp model(2, 32, 2);
    std::cout << model << "\n";
    for (const auto& [name, p] : model.named_parameters())
      std::cout << name << " " << shape_str(p.shape()) << "\n";  // fc1.weight [2, 32] ...
    std::cout << model.num_parameters() << " parameters\n";
    // tutorial: end model

    // tutorial: begin train
    data::TensorDataset train = data::make_moons(1000, 0.15f, /*seed=*/1);
    data::TensorDataset test = data::make_moons(500, 0.15f, /*seed=*/2);
    data::DataLoader loader(train, /*batch_size=*/32, /*shuffle=*/true, /*seed=*/0);
    optim::Adam opt(model.parameters(), /*lr=*/0.01);

    const int epochs = 20;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      double loss_sum = 0;
      for (data::Batch& batch : loader) {
        Tensor loss = cross_entropy(model(batch.x), batch.y);
        opt.zero_grad();
        loss.backward();
        opt.step();
        loss_sum += loss.item() * double(batch.x.size(0));
      }
      if (epoch % 5 == 0)
        std::printf("epoch %2d  loss %.4f  test accuracy %.2f%%\n", epoch, loss_sum / double(train.size()),
                    100 * accuracy(model, test));
    }
    const double acc = accuracy(model, test);
    std::printf("final test accuracy: %.2f%%\n", 100 * acc);
    inspect(model, test);
    // tutorial: end train

    // tutorial: begin smooth
    smooth(model, train, test);  // a custom Function and a gradient penalty (section 7)
    // tutorial: end smooth
    train_rings();  // your own Dataset and BatchNorm (section 4)

    // tutorial: begin save
    CheckpointMeta meta;
    meta.model_spec = "mlp:2-32-2";
    meta.epoch = epochs;
    meta.scalars["test_accuracy"] = acc;
    save_checkpoint(path, model, &opt, meta);  // model + Adam state + RNG, written atomically
    save(model, path + ".weights");            // or just the parameters
    // tutorial: end save

    // tutorial: begin load
    Mlp fresh(2, 32, 2);  // same architecture, different random weights
    CheckpointMeta loaded = load_checkpoint(path, fresh);
    std::vector<int64_t> before = predict(model, test.images);
    std::vector<int64_t> after = predict(fresh, test.images);
    std::printf("loaded checkpoint %s (%s, epoch %lld, accuracy %.2f%%): %s predictions on %zu test points\n",
                path.c_str(), loaded.model_spec.c_str(), (long long)loaded.epoch,
                100 * loaded.scalars.at("test_accuracy"), before == after ? "same" : "DIFFERENT", after.size());

    Tensor points = tensor({-1.f, 0.5f, 2.f, 0.f}, {2, 2});  // two new points, one per row
    Tensor probs;
    {
      NoGradGuard no_grad;
      probs = softmax(fresh(points), 1);
    }
    std::cout << "class probabilities of (-1, 0.5) and (2, 0):\n" << probs << "\n";
    // tutorial: end load
    return before == after ? 0 : 1;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
