// tape-graph: the forward graph of an example network (or of a checkpoint's
// network) on a dummy batch, as Graphviz DOT, rendered to PNG when Graphviz's
// `dot` is on PATH.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "tool_util.hpp"

extern char** environ;

using namespace tape;
using namespace tape::examples;

namespace {

namespace fs = std::filesystem;

/// The full path of `prog` on PATH, or "".
std::string find_on_path(const std::string& prog) {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  std::string all = path;
  size_t start = 0;
  while (start <= all.size()) {
    size_t end = all.find(':', start);
    if (end == std::string::npos) end = all.size();
    const std::string dir = end > start ? all.substr(start, end - start) : ".";
    const std::string cand = dir + "/" + prog;
    if (::access(cand.c_str(), X_OK) == 0 && !fs::is_directory(cand)) return cand;
    start = end + 1;
  }
  return "";
}

/// Runs `argv` (no shell, so paths need no quoting); returns its exit status.
int run(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return 127;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return 127;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/// graph.dot → graph.png; other names get ".png" appended.
std::string png_path(const std::string& dot_path) {
  fs::path p(dot_path);
  if (p.extension() == ".dot" || p.extension() == ".gv") return p.replace_extension(".png").string();
  return dot_path + ".png";
}

}  // namespace

int main(int argc, char** argv) {
  return run_program("tape-graph", [&] {
    std::string model = "mlp", out = "graph.dot";
    int64_t batch = 2;
    uint64_t seed = 0;
    bool grads = false;
    po::options_description desc("tape-graph options");
    desc.add_options()("help", "show this help")
        ("model", po::value(&model)->default_value(model),
         "mlp | deep | lenet5, or the path of a checkpoint (its network is rebuilt and loaded)")
        ("batch", po::value(&batch)->default_value(batch), "size of the dummy input batch [N, 1, 28, 28]")
        ("out", po::value(&out)->default_value(out), "where to write the DOT file (the PNG goes next to it)")
        ("grads", po::bool_switch(&grads),
         "run one backward of cross_entropy on random labels and annotate each parameter with its gradient norm")
        ("seed", po::value(&seed)->default_value(seed), "seed for the initial weights, the dummy batch and the labels");
    if (!parse_flags(argc, argv, desc,
                     "usage: tape-graph [--model mlp|deep|lenet5|CHECKPOINT] [--batch N] [--out graph.dot] [--grads]\n"
                     "Writes the autograd graph of one forward pass as Graphviz DOT (and PNG if `dot` is on PATH)."))
      return 0;
    TAPE_CHECK(batch > 0, "--batch must be positive, got ", batch);
    TAPE_CHECK(!out.empty(), "--out must not be empty");
    check_writable(out, "--out");

    manual_seed(seed);
    ModelSpec spec;
    std::string source;
    std::shared_ptr<nn::Sequential> net;
    if (tools::model_spec_for(model, spec)) {
      net = build_model(spec);
      source = model + " (" + spec.to_string() + ", freshly initialised)";
    } else if (fs::exists(model)) {
      TAPE_CHECK(fs::is_regular_file(model), "--model: '", model, "' is not a file");
      const CheckpointMeta meta = read_checkpoint_meta(model);
      net = build_model(ModelSpec::parse(meta.model_spec));
      load_checkpoint(model, *net);
      source = "checkpoint " + model + " (" + meta.model_spec + ", epoch " + std::to_string(meta.epoch) + ")";
    } else {
      throw Error(str_cat("--model: '", model, "' is neither mlp, deep, lenet5 nor an existing checkpoint file"));
    }

    Generator g(seed + 1);
    const Tensor x = randn({batch, 1, 28, 28}, g);
    Tensor root = (*net)(x);
    if (grads) {
      std::vector<int64_t> labels;
      for (int64_t i = 0; i < batch; ++i) labels.push_back(int64_t(g.below(10)));
      root = cross_entropy(root, tensor(labels, {batch}));
      net->zero_grad();
      root.backward();
    }
    DotOptions opt;
    opt.show_grad_norms = grads;
    opt.names = net->named_parameters();  // leaves labelled "fc1.weight", ...
    const std::string dot = to_dot(root, opt);
    write_file_atomically(out, dot, "--out");
    std::cout << "graph of " << source << " on a batch of " << batch << (grads ? ", with gradient norms" : "")
              << "\nwrote " << out << "\n";
    if (grads) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& [name, p] : opt.names) {
        const Tensor gr = p.grad();
        double s = 0;
        if (gr.defined())
          for (float v : gr.to_vector<float>()) s += double(v) * v;
        rows.push_back({name, shape_str(p.shape()), gr.defined() ? tools::sci(std::sqrt(s)) : "none"});
      }
      std::cout << "loss " << root.item() << "\n\n";
      tools::print_table(std::cout, {"parameter", "shape", "grad L2 norm"}, rows);
      std::cout << "\n";
    }
    const std::string dot_exe = find_on_path("dot");
    if (dot_exe.empty()) {
      std::cout << "Graphviz `dot` is not on PATH: install graphviz, then render with  dot -Tpng " << out << " -o "
                << png_path(out) << "\n";
      return 0;
    }
    const std::string png = png_path(out);
    const int rc = run({dot_exe, "-Tpng", out, "-o", png});
    TAPE_CHECK(rc == 0, "Graphviz `", dot_exe, " -Tpng ", out, " -o ", png, "` failed with exit status ", rc);
    std::cout << "wrote " << png << "\n";
    return 0;
  });
}
