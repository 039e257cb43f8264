#include "tape/nn/module.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <set>
#include <unordered_set>
#include <ostream>
#include <sstream>
#include <typeinfo>

#include <fmt/format.h>

#include "tape/core/grad_mode.hpp"
#include "tape/core/generator.hpp"

namespace tape::nn {

namespace {

// Note: summary() needs every leaf module's output shape. Rather than hooks, a
// thread-local recorder is active while summary() runs, and Module::operator()
// appends (module, output shape) to it for modules without children.
struct Record {
  const Module* module;
  Shape shape;
};
thread_local std::vector<Record>* t_recorder = nullptr;

struct RecorderScope {
  explicit RecorderScope(std::vector<Record>* r) : prev_(t_recorder) { t_recorder = r; }
  ~RecorderScope() { t_recorder = prev_; }
  std::vector<Record>* prev_;
};

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

}  // namespace

Module::~Module() = default;

bool Module::recording_summary() { return t_recorder != nullptr; }

Tensor Module::operator()(const Tensor& x_in) {
  TAPE_CHECK(x_in.defined(), type_name(), ": input is an undefined tensor");
  if (forward_pre_hooks_.empty() && forward_hooks_.empty()) [[likely]] {
    Tensor y = forward(x_in);
    if (t_recorder && children_.empty()) t_recorder->push_back({this, y.defined() ? y.shape() : Shape{}});
    return y;
  }
  Tensor x = x_in;
  for (const auto& [handle, hook] : forward_pre_hooks_)
    if (Tensor r = hook(*this, x); r.defined()) x = r;
  Tensor y = forward(x);
  for (const auto& [handle, hook] : forward_hooks_)
    if (Tensor r = hook(*this, x, y); r.defined()) y = r;
  if (t_recorder && children_.empty()) t_recorder->push_back({this, y.defined() ? y.shape() : Shape{}});
  return y;
}

Tensor Module::forward_inference(const Tensor& x) {
  NoGradGuard no_grad;
  return (*this)(x);
}

namespace {
std::atomic<int> g_next_forward_hook{1};
}

int Module::register_forward_pre_hook(ForwardPreHook hook) {
  TAPE_CHECK(hook, type_name(), ".register_forward_pre_hook: the hook is empty");
  const int handle = g_next_forward_hook.fetch_add(1);
  forward_pre_hooks_.emplace_back(handle, std::move(hook));
  return handle;
}

int Module::register_forward_hook(ForwardHook hook) {
  TAPE_CHECK(hook, type_name(), ".register_forward_hook: the hook is empty");
  const int handle = g_next_forward_hook.fetch_add(1);
  forward_hooks_.emplace_back(handle, std::move(hook));
  return handle;
}

void Module::remove_forward_hook(int handle) {
  const size_t before = forward_pre_hooks_.size() + forward_hooks_.size();
  std::erase_if(forward_pre_hooks_, [&](const auto& p) { return p.first == handle; });
  std::erase_if(forward_hooks_, [&](const auto& p) { return p.first == handle; });
  TAPE_CHECK(forward_pre_hooks_.size() + forward_hooks_.size() != before, type_name(),
             ".remove_forward_hook: no forward hook with handle ", handle);
}

// --- registration -------------------------------------------------------------

void Module::check_new_name(const std::string& name, const char* what) const {
  TAPE_CHECK(!name.empty(), type_name(), ".", what, ": name must not be empty");
  TAPE_CHECK(name.find('.') == std::string::npos, type_name(), ".", what, ": name \"", name,
             "\" must not contain '.'");
  TAPE_CHECK(!names_.contains(name), type_name(), ".", what, ": name \"", name,
             "\" is already registered (names must be unique)");
}

Tensor Module::register_parameter(std::string name, Tensor t) {
  check_new_name(name, "register_parameter");
  TAPE_CHECK(t.defined(), type_name(), ".register_parameter: \"", name, "\" is an undefined tensor");
  TAPE_CHECK(t.dtype() == Dtype::Float32, type_name(), ".register_parameter: \"", name,
             "\" must be Float32, got ", dtype_name(t.dtype()));
  TAPE_CHECK(t.is_leaf(), type_name(), ".register_parameter: \"", name,
             "\" must be a leaf tensor (it is the output of an op; use detach())");
  t.requires_grad_(true);
  names_.insert(name);
  parameters_.emplace_back(std::move(name), t);
  return t;
}

Tensor Module::register_buffer(std::string name, Tensor t) {
  check_new_name(name, "register_buffer");
  TAPE_CHECK(t.defined(), type_name(), ".register_buffer: \"", name, "\" is an undefined tensor");
  names_.insert(name);
  buffers_.emplace_back(std::move(name), t);
  return t;
}

void Module::register_module_impl(std::string name, std::shared_ptr<Module> m) {
  check_new_name(name, "register_module");
  TAPE_CHECK(m != nullptr, type_name(), ".register_module: \"", name, "\" is a null module");
  TAPE_CHECK(m.get() != this, type_name(), ".register_module: \"", name, "\" cannot be the module itself");
  names_.insert(name);
  children_.emplace_back(std::move(name), std::move(m));
}

// --- traversal ------------------------------------------------------------------

void Module::collect(const std::string& prefix, bool recurse, bool buffers, NamedTensors& out, Seen& seen) const {
  for (const auto& [name, t] : buffers ? buffers_ : parameters_) {
    if (!seen.insert(t.impl()).second) continue;
    out.emplace_back(join(prefix, name), t);
  }
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(join(prefix, name), true, buffers, out, seen);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  Seen seen;
  collect("", recurse, false, out, seen);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& p : named_parameters(recurse)) out.push_back(std::move(p.second));
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  Seen seen;
  collect("", recurse, true, out, seen);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& p : named_buffers(recurse)) out.push_back(std::move(p.second));
  return out;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& c : children_) out.push_back(c.second);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const { return children_; }

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  // pre-order with an explicit stack; a module shared by two parents is listed once
  std::vector<std::pair<std::string, Module*>> out;
  std::vector<std::pair<std::string, Module*>> stack{{"", this}};
  std::unordered_set<const Module*> seen;
  while (!stack.empty()) {
    auto [name, m] = std::move(stack.back());
    stack.pop_back();
    if (!seen.insert(m).second) continue;
    out.emplace_back(name, m);
    for (auto it = m->children_.rbegin(); it != m->children_.rend(); ++it)
      stack.emplace_back(join(name, it->first), it->second.get());
  }
  return out;
}

std::vector<Module*> Module::modules() {
  std::vector<Module*> out;
  for (auto& [name, m] : named_modules()) out.push_back(m);
  return out;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : named_parameters()) out.emplace(name, t.detach());
  for (auto& [name, t] : named_buffers()) out.emplace(name, t.detach());
  return out;
}

Module::LoadResult Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  NamedTensors mine = named_parameters();
  for (auto& b : named_buffers()) mine.push_back(std::move(b));
  LoadResult result;
  std::vector<std::string> problems;
  std::set<std::string> known;
  for (const auto& [name, dst] : mine) {
    known.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      result.missing_keys.push_back(name);
      continue;
    }
    const Tensor& src = it->second;
    if (!src.defined())
      problems.push_back(str_cat(name, " is undefined"));
    else if (src.shape() != dst.shape())
      problems.push_back(str_cat(name, " has shape ", src.shape(), " in the state but ", dst.shape(), " in the module"));
    else if (is_floating(src.dtype()) != is_floating(dst.dtype()))
      problems.push_back(str_cat(name, " is ", dtype_name(src.dtype()), " in the state but ", dtype_name(dst.dtype()),
                                 " in the module"));
  }
  for (const auto& [name, t] : state)
    if (!known.count(name)) result.unexpected_keys.push_back(name);
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& n : v) s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  if (strict && !result.missing_keys.empty()) problems.push_back("missing keys: " + list(result.missing_keys));
  if (strict && !result.unexpected_keys.empty())
    problems.push_back("unexpected keys: " + list(result.unexpected_keys));
  TAPE_CHECK(problems.empty(), "Module::load_state_dict: ", type_name(), ": ", list(problems),
             " (nothing was loaded)");
  NoGradGuard no_grad;
  for (auto& [name, dst] : mine) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    const Tensor& src = it->second;
    // src may alias dst (loading a module's own state_dict): nothing to copy
    if (src.impl() == dst.impl() || (src.impl()->storage == dst.impl()->storage && src.dtype() == dst.dtype() &&
                                     src.strides() == dst.strides() && src.impl()->offset == dst.impl()->offset))
      continue;
    Tensor(dst).copy_(src.dtype() == dst.dtype() ? src : src.to(dst.dtype()));
  }
  return result;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (auto& c : children_) c.second->apply(fn);
  fn(*this);
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

int64_t Module::num_trainable_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.set_grad({});
}

// Note: PyTorch's Module.to swaps each parameter's .data; we swap the storage,
// geometry and dtype inside the shared TensorImpl, so every handle to the
// parameter (the layer's member, the registry, a user's copy) sees the change.
Module& Module::to(Dtype dtype) {
  TAPE_CHECK(is_floating(dtype), "Module::to: dtype must be floating, got ", dtype_name(dtype));
  auto convert = [dtype](const Tensor& t) {
    if (!t.defined() || !is_floating(t.dtype()) || t.dtype() == dtype) return;
    const Tensor converted = detail::cast_copy(t, dtype);
    TensorImpl* impl = t.impl();
    impl->storage = converted.impl()->storage;
    impl->offset = 0;
    impl->strides = converted.strides();
    impl->dtype = dtype;
    Tensor(t).set_grad({});
    // a cached AccumulateGrad expects the old dtype: the next graph makes a new one
    if (impl->autograd) impl->autograd->grad_accumulator.reset();
  };
  for (const Tensor& p : parameters()) convert(p);
  for (const Tensor& b : buffers()) convert(b);
  return *this;
}

// --- printing -------------------------------------------------------------------

std::string Module::type_name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = (status == 0 && d) ? d : mangled;
  std::free(d);
  // Keep the last component at bracket depth 0: "tape::nn::Linear" → "Linear",
  // "(anonymous namespace)::Net" → "Net", "f<int>()::Local" → "Local"; drop template arguments.
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i + 1 < name.size(); ++i) {
    const char c = name[i];
    if (c == '<' || c == '(') ++depth;
    else if (c == '>' || c == ')') --depth;
    else if (depth == 0 && c == ':' && name[i + 1] == ':') start = i + 2;
  }
  name = name.substr(start);
  if (auto lt = name.find('<'); lt != std::string::npos) name.resize(lt);
  return name;
}

void Module::print(std::ostream& os, int indent) const {
  const std::string extra = extra_repr();
  os << type_name() << "(";
  if (children_.empty()) {
    os << extra << ")";
    return;
  }
  const std::string pad(size_t(indent + 2), ' ');
  os << "\n";
  if (!extra.empty()) {
    std::istringstream lines(extra);
    for (std::string line; std::getline(lines, line);) os << pad << line << "\n";
  }
  for (const auto& [name, child] : children_) {
    os << pad << "(" << name << "): ";
    child->print(os, indent + 2);
    os << "\n";
  }
  os << std::string(size_t(indent), ' ') << ")";
}

std::string Module::repr() const {
  std::ostringstream os;
  print(os, 0);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Module& m) { return os << m.repr(); }

// fmt::group_digits groups by three with ',' whatever the global locale. fmt 9.1
// prints a negative value as its unsigned two's complement, so the sign is ours.
std::string format_thousands(int64_t n) {
  const uint64_t magnitude = n < 0 ? 0 - uint64_t(n) : uint64_t(n);
  return fmt::format("{}{}", n < 0 ? "-" : "", fmt::group_digits(magnitude));
}

// --- summary --------------------------------------------------------------------

std::string Module::summary(const Shape& input_shape) {
  // Names of every module reachable from this one (the first path wins for shared ones).
  std::map<const Module*, std::string> names;
  std::vector<std::pair<const Module*, bool>> flags;  // training flags to restore
  std::function<void(const Module&, const std::string&)> walk = [&](const Module& m, const std::string& prefix) {
    names.emplace(&m, prefix);
    flags.emplace_back(&m, m.training_);
    for (const auto& [name, child] : m.children_) walk(*child, join(prefix, name));
  };
  walk(*this, "");

  std::vector<Record> records;
  const Generator::State rng = default_generator().state();
  eval();
  try {
    NoGradGuard no_grad;
    RecorderScope scope(&records);
    (*this)(zeros(input_shape));
  } catch (const Error& e) {
    for (auto& [m, on] : flags) const_cast<Module*>(m)->training_ = on;
    default_generator().set_state(rng);
    throw Error(str_cat(type_name(), ".summary: forward on zeros(", input_shape, ") failed: ", e.what()));
  }
  for (auto& [m, on] : flags) const_cast<Module*>(m)->training_ = on;
  default_generator().set_state(rng);

  struct Row {
    std::string layer, shape, params;
  };
  std::vector<Row> rows;
  std::vector<const Module*> counted;
  for (const auto& r : records) {
    auto it = names.find(r.module);
    std::string name = it != names.end() && !it->second.empty() ? it->second : "";
    std::string layer = name.empty() ? r.module->type_name() : name + " (" + r.module->type_name() + ")";
    std::string params = "--";
    if (std::find(counted.begin(), counted.end(), r.module) == counted.end()) {
      counted.push_back(r.module);
      params = format_thousands(r.module->num_parameters());
    }
    rows.push_back({layer, shape_str(r.shape), params});
  }

  const std::string h1 = "Layer (type)", h2 = "Output Shape", h3 = "Param #";
  size_t w1 = h1.size(), w2 = h2.size(), w3 = h3.size();
  for (const auto& r : rows) {
    w1 = std::max(w1, r.layer.size());
    w2 = std::max(w2, r.shape.size());
    w3 = std::max(w3, r.params.size());
  }
  w1 += 4, w2 += 4;
  // Two left-aligned columns and a right-aligned count, ruled with '='.
  auto row = [&](const std::string& a, const std::string& b, const std::string& c) {
    return fmt::format("{:<{}}{:<{}}{:>{}}\n", a, w1, b, w2, c, w3);
  };
  const std::string rule = fmt::format("{:=<{}}\n", "", w1 + w2 + w3);

  const int64_t total = num_parameters(), trainable = num_trainable_parameters();
  std::string out = fmt::format("Model: {}\nInput shape: {}\n", type_name(), shape_str(input_shape));
  out += rule + row(h1, h2, h3) + rule;
  for (const auto& r : rows) out += row(r.layer, r.shape, r.params);
  out += rule;
  out += fmt::format("Total params: {}\nTrainable params: {}\nNon-trainable params: {}\n", format_thousands(total),
                     format_thousands(trainable), format_thousands(total - trainable));
  return out + rule;
}

}  // namespace tape::nn
