#include "models.hpp"

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace tape::examples {

namespace {

/// `s` made safe for a one-line message: non-printable bytes become '?', and
/// anything past 60 characters is cut (a crafted checkpoint can hold any spec).
std::string shown(const std::string& s) {
  std::string out = s.substr(0, 60);
  for (char& c : out)
    if (c < 32 || c > 126) c = '?';
  return s.size() > 60 ? out + "..." : out;
}

/// The report's initialisation for its networks: He-normal weights N(0, 2/fan_in) and
/// zero biases (tape's Linear and Conv2d now start like PyTorch's). The generator is
/// rewound to `before` (its state before the layers were built) so the draws are the
/// very ones the layers made when He-normal was their default: seeded runs of the
/// report's networks are bit-identical to earlier versions of tape.
void report_init(nn::Module& net, const Generator::State& before) {
  default_generator().set_state(before);
  for (nn::Module* m : net.modules()) {
    Tensor *w = nullptr, *b = nullptr;
    if (auto* lin = dynamic_cast<nn::Linear*>(m)) w = &lin->weight, b = &lin->bias;
    if (auto* conv = dynamic_cast<nn::Conv2d*>(m)) w = &conv->weight, b = &conv->bias;
    if (!w) continue;
    nn::init::kaiming_normal_(*w);
    if (b->defined()) nn::init::zeros_(*b);
  }
}

/// torchvision's ResNet initialisation: convolutions kaiming_normal_(fan_out, relu),
/// BatchNorm weight 1 and bias 0 (their defaults), the classifier PyTorch's default.
void resnet_init(nn::Module& net) {
  for (nn::Module* m : net.modules())
    if (auto* conv = dynamic_cast<nn::Conv2d*>(m))
      nn::init::kaiming_normal_(conv->weight, 0.0, nn::init::FanMode::FanOut, nn::init::Nonlinearity::ReLU);
}

}  // namespace

std::vector<int64_t> parse_sizes(const std::string& s) {
  TAPE_CHECK(s.size() <= kMaxSpecLength, "hidden sizes: '", shown(s), "' is longer than ", kMaxSpecLength,
             " characters");
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    TAPE_CHECK(used == part.size() && !part.empty(), "hidden sizes: '", shown(part), "' in '", shown(s),
               "' is not a number");
    TAPE_CHECK(v > 0, "hidden sizes: every size must be positive, got ", v, " in '", shown(s), "'");
    out.push_back(v);
  }
  TAPE_CHECK(!out.empty(), "hidden sizes: expected a list like 370,115,50, got '", s, "'");
  return out;
}

std::shared_ptr<nn::Module> make_activation(const std::string& name) {
  if (name == "relu") return std::make_shared<nn::ReLU>();
  if (name == "tanh") return std::make_shared<nn::Tanh>();
  if (name == "sigmoid") return std::make_shared<nn::Sigmoid>();
  if (name == "leaky_relu") return std::make_shared<nn::LeakyReLU>(0.01f);
  if (name == "elu") return std::make_shared<nn::ELU>(1.f);
  if (name == "selu") return std::make_shared<nn::SELU>();
  throw Error(str_cat("unknown activation '", shown(name), "' (expected relu, tanh, sigmoid, leaky_relu, elu or selu)"));
}

ModelSpec ModelSpec::lenet5() {
  ModelSpec s;
  s.kind = "lenet5";
  s.hidden = {120, 84};
  s.activation = "tanh";
  return s;
}

ModelSpec ModelSpec::lenet5_wide() {
  ModelSpec s;
  s.kind = "lenet5-wide";
  s.hidden = {128};
  s.activation = "relu";
  return s;
}

ModelSpec ModelSpec::resnet(std::vector<int64_t> widths) {
  ModelSpec s;
  s.kind = "resnet";
  s.hidden = std::move(widths);
  s.activation = "relu";
  return s;
}

ResidualBlock::ResidualBlock(int64_t in, int64_t out, int64_t stride) {
  auto conv3 = [](int64_t i, int64_t o, int64_t s) {
    return std::make_shared<nn::Conv2d>(nn::Conv2dOptions(i, o, 3).stride(s).padding(1).bias(false));
  };
  conv1 = register_module("conv1", conv3(in, out, stride));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(out));
  conv2 = register_module("conv2", conv3(out, out, 1));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(out));
  if (stride != 1 || in != out) {
    downsample = register_module("downsample", std::make_shared<nn::Sequential>());
    downsample->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
    downsample->push_back(std::make_shared<nn::BatchNorm2d>(out));
  }
}

Tensor ResidualBlock::forward(const Tensor& x) {
  const Tensor y = (*bn2)((*conv2)(relu((*bn1)((*conv1)(x)))));
  return relu(y + (downsample ? (*downsample)(x) : x));
}

std::string ModelSpec::to_string() const {
  if (kind == "lenet5" || kind == "lenet5-wide") return kind;
  if (kind == "resnet") {
    std::ostringstream os;
    os << "resnet:";
    for (size_t i = 0; i < hidden.size(); ++i) os << (i ? "-" : "") << hidden[i];
    return os.str();
  }
  std::ostringstream os;
  os << "mlp:784";
  for (int64_t h : hidden) os << '-' << h;
  os << "-10:" << activation << ":dropout=" << dropout;
  return os.str();
}

int64_t ModelSpec::parameter_count() const {
  if (kind == "lenet5") return 44426;
  if (kind == "lenet5-wide") return 80202;
  if (kind == "resnet") {
    // stem conv 3×3 (1 → W1) + BN; per block: two 3×3 convs + 2 BNs (+ 1×1 conv + BN
    // when the shape changes); head: Linear(W_last → 10)
    int64_t total = 9 * hidden[0] + 2 * hidden[0], in = hidden[0];
    for (size_t i = 0; i < hidden.size(); ++i) {
      const int64_t out = hidden[i];
      total += 9 * in * out + 9 * out * out + 4 * out;
      if (i > 0 || in != out) total += in * out + 2 * out;
      in = out;
    }
    return total + (in + 1) * 10;
  }
  int64_t total = 0, in = 784;
  for (int64_t out : hidden) {
    total += (in + 1) * out;  // validate() keeps every size <= kMaxLayerSize: no overflow
    in = out;
  }
  return total + (in + 1) * 10;
}

void ModelSpec::validate() const {
  if (kind == "lenet5" || kind == "lenet5-wide") return;
  TAPE_CHECK(kind == "mlp" || kind == "resnet", "unknown model kind '", shown(kind),
             "' (expected mlp, lenet5, lenet5-wide or resnet)");
  if (kind == "resnet") {
    TAPE_CHECK(!hidden.empty() && hidden.size() <= 4, "model: a resnet has 1 to 4 stages, got ", hidden.size());
    for (size_t i = 0; i < hidden.size(); ++i)
      TAPE_CHECK(hidden[i] > 0 && hidden[i] <= 1024, "model: resnet stage ", i + 1, " has width ", hidden[i],
                 " (expected 1..1024)");
    return;
  }
  TAPE_CHECK(hidden.size() <= size_t(kMaxHiddenLayers), "model: ", hidden.size(), " hidden layers, more than the limit of ",
             kMaxHiddenLayers);
  for (size_t i = 0; i < hidden.size(); ++i)
    TAPE_CHECK(hidden[i] > 0 && hidden[i] <= kMaxLayerSize, "model: hidden size ", i + 1, " is ", hidden[i],
               " (expected 1..", kMaxLayerSize, ")");
  TAPE_CHECK(dropout >= 0.f && dropout < 1.f, "dropout must be in [0, 1), got ", dropout);
  make_activation(activation);  // validates the name
  const int64_t params = parameter_count();
  TAPE_CHECK(params <= kMaxModelParameters, "model: ", to_string(), " has ", params,
             " parameters, more than the limit of ", kMaxModelParameters);
}

ModelSpec ModelSpec::parse(const std::string& s) {
  if (s == "lenet5") return lenet5();
  if (s == "lenet5-wide") return lenet5_wide();
  TAPE_CHECK(s.size() <= kMaxSpecLength, "model spec '", shown(s), "' is longer than ", kMaxSpecLength,
             " characters");
  if (s.rfind("resnet:", 0) == 0) {
    std::string sizes = s.substr(7);
    for (char& c : sizes)
      if (c == '-') c = ',';
    ModelSpec m = resnet(parse_sizes(sizes));
    m.validate();
    return m;
  }
  // mlp:784-H1-...-10:act:dropout=P
  std::vector<std::string> parts;
  std::stringstream ss(s);
  for (std::string p; std::getline(ss, p, ':');) parts.push_back(p);
  TAPE_CHECK(parts.size() == 4 && parts[0] == "mlp" && parts[3].rfind("dropout=", 0) == 0, "model spec '", shown(s),
             "' is not of the form mlp:784-H-...-10:activation:dropout=P or lenet5");
  ModelSpec m;
  std::string sizes = parts[1];
  for (char& c : sizes)
    if (c == '-') c = ',';
  std::vector<int64_t> all = parse_sizes(sizes);
  TAPE_CHECK(all.size() >= 3 && all.front() == 784 && all.back() == 10, "model spec '", shown(s),
             "': sizes must start with 784 and end with 10");
  m.hidden.assign(all.begin() + 1, all.end() - 1);
  m.activation = parts[2];
  const std::string p = parts[3].substr(8);
  char* end = nullptr;
  m.dropout = std::strtof(p.c_str(), &end);
  TAPE_CHECK(!p.empty() && end == p.c_str() + p.size() && std::isfinite(m.dropout), "model spec '", shown(s),
             "': dropout '", shown(p), "' is not a number");
  m.validate();
  return m;
}

std::shared_ptr<nn::Sequential> build_model(const ModelSpec& spec) {
  const Generator::State before = default_generator().state();
  std::shared_ptr<nn::Sequential> net = build_layers(spec);
  if (spec.kind == "resnet")
    resnet_init(*net);
  else
    report_init(*net, before);
  return net;
}

std::shared_ptr<nn::Sequential> build_layers(const ModelSpec& spec) {
  auto net = std::make_shared<nn::Sequential>();
  if (spec.kind == "lenet5") {
    // conv 6@5×5 + ReLU → pool → conv 16@5×5 + ReLU → pool → 256 → 120 tanh → 84 tanh → 10
    net->push_back("conv1", std::make_shared<nn::Conv2d>(1, 6, 5));
    net->push_back("relu1", std::make_shared<nn::ReLU>());
    net->push_back("pool1", std::make_shared<nn::MaxPool2d>(2, 2));
    net->push_back("conv2", std::make_shared<nn::Conv2d>(6, 16, 5));
    net->push_back("relu2", std::make_shared<nn::ReLU>());
    net->push_back("pool2", std::make_shared<nn::MaxPool2d>(2, 2));
    net->push_back("flatten", std::make_shared<nn::Flatten>());
    net->push_back("fc1", std::make_shared<nn::Linear>(256, 120));
    net->push_back("tanh1", std::make_shared<nn::Tanh>());
    net->push_back("fc2", std::make_shared<nn::Linear>(120, 84));
    net->push_back("tanh2", std::make_shared<nn::Tanh>());
    net->push_back("fc3", std::make_shared<nn::Linear>(84, 10));
    return net;
  }
  if (spec.kind == "lenet5-wide") {
    // conv 16@5×5 + ReLU → pool → conv 32@5×5 + ReLU → pool → 512 → 128 ReLU → 10 (80 202 parameters)
    net->push_back("conv1", std::make_shared<nn::Conv2d>(1, 16, 5));
    net->push_back("relu1", std::make_shared<nn::ReLU>());
    net->push_back("pool1", std::make_shared<nn::MaxPool2d>(2, 2));
    net->push_back("conv2", std::make_shared<nn::Conv2d>(16, 32, 5));
    net->push_back("relu2", std::make_shared<nn::ReLU>());
    net->push_back("pool2", std::make_shared<nn::MaxPool2d>(2, 2));
    net->push_back("flatten", std::make_shared<nn::Flatten>());
    net->push_back("fc1", std::make_shared<nn::Linear>(512, 128));
    net->push_back("relu3", std::make_shared<nn::ReLU>());
    net->push_back("fc2", std::make_shared<nn::Linear>(128, 10));
    return net;
  }
  spec.validate();
  if (spec.kind == "resnet") {
    // stem → one residual block per stage (stride 2 from the second) → global average → linear
    const int64_t w0 = spec.hidden.front();
    net->push_back("conv1", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, w0, 3).padding(1).bias(false)));
    net->push_back("bn1", std::make_shared<nn::BatchNorm2d>(w0));
    net->push_back("relu", std::make_shared<nn::ReLU>());
    int64_t in = w0;
    for (size_t i = 0; i < spec.hidden.size(); ++i) {
      net->push_back(str_cat("layer", i + 1), std::make_shared<ResidualBlock>(in, spec.hidden[i], i == 0 ? 1 : 2));
      in = spec.hidden[i];
    }
    net->push_back("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(1));
    net->push_back("flatten", std::make_shared<nn::Flatten>());
    net->push_back("fc", std::make_shared<nn::Linear>(in, 10));
    return net;
  }
  net->push_back("flatten", std::make_shared<nn::Flatten>());
  int64_t in = 784;
  for (size_t i = 0; i < spec.hidden.size(); ++i) {
    TAPE_CHECK(spec.hidden[i] > 0, "hidden size ", i + 1, " must be positive, got ", spec.hidden[i]);
    net->push_back(str_cat("fc", i + 1), std::make_shared<nn::Linear>(in, spec.hidden[i]));
    net->push_back(str_cat("act", i + 1), make_activation(spec.activation));
    if (spec.dropout > 0.f) net->push_back(str_cat("drop", i + 1), std::make_shared<nn::Dropout>(spec.dropout));
    in = spec.hidden[i];
  }
  net->push_back(str_cat("fc", spec.hidden.size() + 1), std::make_shared<nn::Linear>(in, 10));
  return net;
}

namespace {
Classifier load_one(const std::string& path) {
  const CheckpointMeta meta = read_checkpoint_meta(path);
  Classifier c;
  c.net = build_model(ModelSpec::parse(meta.model_spec));
  load_checkpoint(path, *c.net, nullptr);
  c.net->eval();
  const auto it = meta.strings.find(kDeskewMetaKey);
  c.deskew = it != meta.strings.end() && it->second == "1";
  return c;
}
}  // namespace

Classifier load_classifier(const std::string& path) {
  if (path.find(',') == std::string::npos) return load_one(path);
  Classifier c;
  std::stringstream ss(path);
  for (std::string p; std::getline(ss, p, ',');) {
    TAPE_CHECK(!p.empty(), "load_classifier: empty checkpoint name in '", path, "'");
    Classifier one = load_one(p);
    if (!c.net) {
      c = std::move(one);
      continue;
    }
    TAPE_CHECK(one.deskew == c.deskew, "load_classifier: '", p, "' and the first checkpoint disagree on ",
               kDeskewMetaKey);
    c.more.push_back(one.net);
  }
  return c;
}

Tensor Classifier::probs(const Tensor& batch) const {
  NoGradGuard no_grad;
  Tensor p = softmax((*net)(batch), 1);
  if (more.empty()) return p;
  for (const auto& m : more) p = p + softmax((*m)(batch), 1);
  return p * (1.f / float(1 + more.size()));
}

vision::ClassifyFn classify_fn(const Classifier& model) {
  return [model](const Tensor& batch) {
    std::vector<std::pair<int64_t, float>> out;
    if (batch.size(0) == 0) return out;
    NoGradGuard no_grad;
    const Tensor probs = model.probs(batch);
    const std::vector<int64_t> labels = argmax(probs, 1).to_vector<int64_t>();
    const std::vector<float> conf = max(probs, 1).to_vector<float>();
    for (size_t i = 0; i < labels.size(); ++i) out.emplace_back(labels[i], conf[i]);
    return out;
  };
}

}  // namespace tape::examples
