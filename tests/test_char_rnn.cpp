// End-to-end checks of examples/char_rnn on a small generated text: the CSV,
// a falling validation loss, --resume continuing a run, --sample, bad flags.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "run_command.hpp"

namespace fs = std::filesystem;

namespace {
const std::string kBin = std::string(TAPE_BUILD_DIR) + "/examples/char_rnn";

using tape_test::Run;
Run run(const std::string& args) { return tape_test::run_command(kBin + " " + args); }

/// A learnable text over a small alphabet: a few words in a pseudo-random order.
std::string make_text(size_t words) {
  const std::vector<std::string> w = {"the ", "cat ", "sat ", "on ", "a ", "mat.\n", "dog ", "ran "};
  std::string s;
  uint32_t x = 12345;
  for (size_t i = 0; i < words; ++i) {
    x = x * 1103515245u + 12345u;
    s += w[(x >> 16) % w.size()];
  }
  return s;
}

std::vector<std::vector<double>> read_csv(const std::string& path, std::string& header) {
  std::ifstream f(path);
  std::getline(f, header);
  std::vector<std::vector<double>> rows;
  for (std::string line; std::getline(f, line);) {
    std::vector<double> row;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) row.push_back(std::stod(cell));
    rows.push_back(row);
  }
  return rows;
}
}  // namespace

TEST_CASE("char_rnn: trains, resumes, samples, and rejects bad flags" * doctest::test_suite("slow")) {
  const fs::path dir = fs::temp_directory_path() / ("tape_test_char_rnn_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string text = (dir / "text.txt").string(), csv = (dir / "loss.csv").string(),
                    ckpt = (dir / "run.ckpt").string();
  const std::string corpus = make_text(3000);
  std::ofstream(text) << corpus;
  const std::string common = "--text " + text + " --hidden 32 --embed 16 --seq-len 32 --batch-size 16 --threads 1";

  Run r = run(common + " --epochs 2 --csv " + csv + " --save " + ckpt);
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("epoch 2/2") != std::string::npos);
  CHECK(r.out.find("best val_loss") != std::string::npos);
  std::string header;
  auto rows = read_csv(csv, header);
  CHECK(header == "epoch,train_loss,val_loss");
  REQUIRE(rows.size() == 2);
  CHECK(rows[1][2] < rows[0][2]);  // validation loss falls
  CHECK(rows[0][2] < 3.0);         // below log(vocabulary of ~20) ≈ 3.0 after one epoch

  // continue the same run for one more epoch: the history is kept, epoch 3 added
  r = run("--resume " + ckpt + " --epochs 3 --csv " + csv);
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("resumed from") != std::string::npos);
  CHECK(r.out.find("epoch 3/3") != std::string::npos);
  CHECK(r.out.find("epoch 1/") == std::string::npos);
  auto rows3 = read_csv(csv, header);
  REQUIRE(rows3.size() == 3);
  CHECK(rows3[0] == rows[0]);
  CHECK(rows3[1] == rows[1]);
  // and exactly: the same windows, dropout masks and Adam state as an uninterrupted run
  const std::string csv3 = (dir / "loss3.csv").string();
  r = run(common + " --epochs 3 --csv " + csv3);
  REQUIRE(r.code == 0);
  auto straight = read_csv(csv3, header);
  REQUIRE(straight.size() == 3);
  CHECK(straight[2] == rows3[2]);

  // sample only, from the checkpoint: prime + N characters of the text's alphabet
  const int n = 200;
  r = run("--resume " + ckpt + " --epochs 0 --quiet --prime the --sample " + std::to_string(n));
  INFO(r.out);
  REQUIRE(r.code == 0);
  const size_t at = r.out.find("the");
  REQUIRE(at != std::string::npos);
  const std::string sample = r.out.substr(at + 3);
  REQUIRE(sample.size() == size_t(n) + 1);  // + the final newline
  CHECK(sample.back() == '\n');
  const std::set<char> alphabet(corpus.begin(), corpus.end());
  for (char ch : sample.substr(0, size_t(n))) CHECK(alphabet.count(ch) == 1);

  // bad flags and inputs: one line, exit code 2, naming the flag or file
  for (const auto& [args, needle] :
       {std::pair<std::string, std::string>{"--seq-len 0", "--seq-len"}, {"--cell rnn", "--cell"},
        {"--dropout 1", "--dropout"}, {"--text /nonexistent/file.txt", "/nonexistent/file.txt"},
        {"--text " + text + " --seq-len 5000", "too short"}}) {
    r = run(args);
    INFO(args, " → ", r.out);
    CHECK(r.code == 2);
    CHECK(r.out.rfind("char_rnn: error: ", 0) == 0);
    CHECK(r.out.find(needle) != std::string::npos);
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  }
  fs::remove_all(dir);
}
