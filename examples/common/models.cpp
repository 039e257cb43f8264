#include "models.hpp"

#include <sstream>

namespace tape::examples {

std::vector<int64_t> parse_sizes(const std::string& s) {
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
    TAPE_CHECK(used == part.size() && !part.empty(), "hidden sizes: '", part, "' in '", s, "' is not a number");
    TAPE_CHECK(v > 0, "hidden sizes: every size must be positive, got ", v, " in '", s, "'");
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
  throw Error(cat("unknown activation '", name, "' (expected relu, tanh, sigmoid, leaky_relu, elu or selu)"));
}

ModelSpec ModelSpec::lenet5() {
  ModelSpec s;
  s.kind = "lenet5";
  s.hidden = {120, 84};
  s.activation = "tanh";
  return s;
}

std::string ModelSpec::to_string() const {
  if (kind == "lenet5") return "lenet5";
  std::ostringstream os;
  os << "mlp:784";
  for (int64_t h : hidden) os << '-' << h;
  os << "-10:" << activation << ":dropout=" << dropout;
  return os.str();
}

ModelSpec ModelSpec::parse(const std::string& s) {
  if (s == "lenet5") return lenet5();
  // mlp:784-H1-...-10:act:dropout=P
  std::vector<std::string> parts;
  std::stringstream ss(s);
  for (std::string p; std::getline(ss, p, ':');) parts.push_back(p);
  TAPE_CHECK(parts.size() == 4 && parts[0] == "mlp" && parts[3].rfind("dropout=", 0) == 0, "model spec '", s,
             "' is not of the form mlp:784-H-...-10:activation:dropout=P or lenet5");
  ModelSpec m;
  std::string sizes = parts[1];
  for (char& c : sizes)
    if (c == '-') c = ',';
  std::vector<int64_t> all = parse_sizes(sizes);
  TAPE_CHECK(all.size() >= 3 && all.front() == 784 && all.back() == 10, "model spec '", s,
             "': sizes must start with 784 and end with 10");
  m.hidden.assign(all.begin() + 1, all.end() - 1);
  m.activation = parts[2];
  make_activation(m.activation);  // validates the name
  m.dropout = std::stof(parts[3].substr(8));
  return m;
}

std::shared_ptr<nn::Sequential> build_model(const ModelSpec& spec) {
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
  TAPE_CHECK(spec.kind == "mlp", "unknown model kind '", spec.kind, "' (expected mlp or lenet5)");
  TAPE_CHECK(spec.dropout >= 0.f && spec.dropout < 1.f, "dropout must be in [0, 1), got ", spec.dropout);
  net->push_back("flatten", std::make_shared<nn::Flatten>());
  int64_t in = 784;
  for (size_t i = 0; i < spec.hidden.size(); ++i) {
    TAPE_CHECK(spec.hidden[i] > 0, "hidden size ", i + 1, " must be positive, got ", spec.hidden[i]);
    net->push_back(cat("fc", i + 1), std::make_shared<nn::Linear>(in, spec.hidden[i]));
    net->push_back(cat("act", i + 1), make_activation(spec.activation));
    if (spec.dropout > 0.f) net->push_back(cat("drop", i + 1), std::make_shared<nn::Dropout>(spec.dropout));
    in = spec.hidden[i];
  }
  net->push_back(cat("fc", spec.hidden.size() + 1), std::make_shared<nn::Linear>(in, 10));
  return net;
}

}  // namespace tape::examples
