// The library's layering (docs/architecture.md): core → autograd → backend → ops
// → nn → optim → data/io → dist. A file may include its own layer and the layers before
// it, never one after it; libtape never includes the companion libraries
// (tape_vision, tape_testing), and its exported symbols are the framework's only.
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::map<std::string, int> kLayerRank = {{"core", 0}, {"autograd", 1}, {"backend", 2}, {"ops", 3},
                                               {"nn", 4},   {"optim", 5},    {"data", 6},    {"io", 6},
                                               {"dist", 7}};

struct SourceFile {
  std::string path;    // for messages, e.g. "lib/tape/core/tensor.cpp"
  std::string layer;   // "core", ...
  std::string text;
};

struct Include {
  std::string library;  // "tape", "tape_vision", "tape_testing"
  std::string folder;   // "core", ... or "tape.hpp"
};

/// The project include on this line, if any: `#include "tape/core/x.hpp"` → {tape, core}.
// Note: plain string parsing, not <regex> (GCC 12 warns inside std::regex under the sanitizers).
std::optional<Include> parse_include(const std::string& line) {
  size_t i = line.find_first_not_of(" \t");
  if (i == std::string::npos || line[i] != '#') return std::nullopt;
  i = line.find_first_not_of(" \t", i + 1);
  if (i == std::string::npos || line.compare(i, 7, "include") != 0) return std::nullopt;
  i = line.find_first_of("\"<", i + 7);
  if (i == std::string::npos) return std::nullopt;
  const size_t slash = line.find('/', i + 1), end = line.find_first_of("\">", i + 1);
  if (slash == std::string::npos || slash > end) return std::nullopt;
  Include inc{line.substr(i + 1, slash - i - 1), ""};
  if (inc.library != "tape" && inc.library != "tape_vision" && inc.library != "tape_testing") return std::nullopt;
  const size_t next = line.find_first_of("/\">", slash + 1);
  inc.folder = line.substr(slash + 1, next - slash - 1);
  return inc;
}

/// One message per include that breaks the layering.
std::vector<std::string> layer_violations(const std::vector<SourceFile>& files) {
  std::vector<std::string> out;
  for (const SourceFile& f : files) {
    const int own = kLayerRank.at(f.layer);
    std::istringstream lines(f.text);
    std::string line;
    for (int n = 1; std::getline(lines, line); ++n) {
      const std::optional<Include> inc = parse_include(line);
      if (!inc) continue;
      const std::string where = f.path + ":" + std::to_string(n) + ": ";
      if (inc->library != "tape") {
        out.push_back(where + "libtape includes the companion library " + inc->library);
        continue;
      }
      const auto it = kLayerRank.find(inc->folder);
      if (it == kLayerRank.end()) {
        if (inc->folder == "tape.hpp") out.push_back(where + "includes the umbrella header tape/tape.hpp");
        continue;
      }
      if (it->second > own)
        out.push_back(where + f.layer + " includes " + it->first + ", a layer above it");
    }
  }
  return out;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<SourceFile> library_sources() {
  const fs::path root = fs::path(TAPE_SOURCE_DIR) / "lib" / "tape";
  std::vector<SourceFile> files;
  for (const auto& [layer, rank] : kLayerRank)
    for (const auto& e : fs::directory_iterator(root / layer)) {
      const std::string ext = e.path().extension().string();
      if (ext != ".hpp" && ext != ".cpp") continue;
      files.push_back({fs::relative(e.path(), TAPE_SOURCE_DIR).string(), layer, read_all(e.path())});
    }
  return files;
}

/// stdout of a shell command.
std::string run(const std::string& cmd) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  REQUIRE(p);
  std::array<char, 4096> buf{};
  while (size_t n = std::fread(buf.data(), 1, buf.size(), p.get())) out.append(buf.data(), n);
  return out;
}

}  // namespace

TEST_CASE("layers: the checker catches an include that runs the wrong way") {
  const std::vector<SourceFile> fake = {
      {"core/a.cpp", "core", "#include \"tape/core/tensor.hpp\"\n#include \"tape/ops/ops.hpp\"\n"},
      {"optim/b.cpp", "optim", "#include <tape/nn/module.hpp>\n#include \"tape/backend/parallel.hpp\"\n"},
      {"nn/c.cpp", "nn", "#include \"tape/optim/sgd.hpp\"\n"},
      {"data/d.cpp", "data", "#include \"tape/io/file.hpp\"\n#include \"tape_vision/plot.hpp\"\n"},
      {"ops/e.cpp", "ops", "  #  include <tape/tape.hpp>\n#include <vector>\n// #include \"tape/io/file.hpp\" (a comment)\n"},
  };
  const auto v = layer_violations(fake);
  REQUIRE(v.size() == 4);
  CHECK(v[0] == "core/a.cpp:2: core includes ops, a layer above it");
  CHECK(v[1] == "nn/c.cpp:1: nn includes optim, a layer above it");
  CHECK(v[2] == "data/d.cpp:2: libtape includes the companion library tape_vision");
  CHECK(v[3] == "ops/e.cpp:1: includes the umbrella header tape/tape.hpp");
}

TEST_CASE("layers: no file of libtape includes a layer above its own") {
  const auto files = library_sources();
  CHECK(files.size() > 40);
  const auto v = layer_violations(files);
  for (const auto& msg : v) FAIL_CHECK(msg);
  CHECK(v.empty());
}

TEST_CASE("layers: libtape exports framework symbols only") {
  const fs::path so = fs::path(TAPE_BUILD_DIR) / "lib" / "libtape.so";
  INFO(so.string());
  REQUIRE(fs::exists(so));
  const std::string syms = run("nm -D --defined-only -C '" + so.string() + "' 2>&1");
  REQUIRE(syms.find("tape::Tensor::backward") != std::string::npos);  // nm works and sees the library
  for (const char* bad : {"tape::vision", "tape::testing", "find_digits", "plot_curves", "draw_text", "annotate(",
                          "make_digit_page", "op_registry", "gradcheck_self_test", "stb_easy_font"}) {
    CAPTURE(bad);
    CHECK(syms.find(bad) == std::string::npos);
  }
}
