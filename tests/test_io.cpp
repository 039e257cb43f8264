#include <doctest/doctest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <tape/tape.hpp>

// Header-only xxHash (no link dependency), as an independent check of the checksum.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "temp_dir.hpp"

using namespace tape;
using doctest::Contains;
namespace fs = std::filesystem;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

std::shared_ptr<nn::Sequential> small_net(int64_t hidden = 8, bool last_bias = true) {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(4, hidden), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(hidden, 3, last_bias)});
}

/// All parameter values, in order.
std::vector<std::vector<float>> values(const nn::Module& m) {
  std::vector<std::vector<float>> out;
  for (const Tensor& p : m.parameters()) out.push_back(p.to_vector<float>());
  return out;
}

void train_steps(nn::Module& m, optim::Optimizer& opt, const Tensor& x, const Tensor& y, int k) {
  for (int i = 0; i < k; ++i) {
    opt.zero_grad();
    cross_entropy(m(x), y).backward();
    opt.step();
  }
}

}  // namespace

TEST_CASE("io: save/load round trip is bit-identical and in place") {
  TempDir tmp("io");
  const std::string path = tmp / "model.bin";
  manual_seed(1);
  auto a = small_net();
  save(*a, path);

  manual_seed(2);
  auto b = small_net();
  REQUIRE(values(*a) != values(*b));
  const std::vector<Tensor> handles = b->parameters();
  const Generator::State rng = default_generator().state();
  load(*b, path);
  CHECK(values(*a) == values(*b));
  // same tensors, new values: an optimizer holding them sees the load
  for (size_t i = 0; i < handles.size(); ++i) {
    CHECK(handles[i].is_same(b->parameters()[i]));
    CHECK(handles[i].to_vector<float>() == a->parameters()[i].to_vector<float>());
  }
  // load() restores no RNG
  CHECK(default_generator().state().s == rng.s);
  CHECK(tmp.names() == std::vector<std::string>{"model.bin"});
}

TEST_CASE("io: checkpoint with Adam continues bit-identically") {
  TempDir tmp("io");
  const std::string path = tmp / "adam.ckpt";
  manual_seed(3);
  Tensor x = randn({16, 4});
  Tensor y = tensor(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0}, {16});
  auto a = small_net();
  optim::Adam opt_a(a->parameters(), 0.01);
  train_steps(*a, opt_a, x, y, 3);
  save_checkpoint(path, *a, &opt_a, {"small", 3, {}, {}});

  manual_seed(4);
  auto b = small_net();
  optim::Adam opt_b(b->parameters(), 0.5);  // lr comes back from the file
  load_checkpoint(path, *b, &opt_b);
  CHECK(values(*a) == values(*b));
  CHECK(opt_b.lr() == 0.01);
  CHECK(opt_b.step_count() == 3);

  train_steps(*a, opt_a, x, y, 4);
  train_steps(*b, opt_b, x, y, 4);
  CHECK(values(*a) == values(*b));
}

TEST_CASE("io: the global RNG is restored") {
  TempDir tmp("io");
  const std::string path = tmp / "rng.ckpt";
  manual_seed(5);
  auto m = small_net();
  (void)randn({3});  // odd count: Box–Muller leaves a spare value in the state
  save_checkpoint(path, *m, nullptr, {});
  const std::vector<float> after_save = randn({10}).to_vector<float>();
  (void)randn({7});
  manual_seed(6);
  load_checkpoint(path, *m);
  CHECK(randn({10}).to_vector<float>() == after_save);
}

namespace {

std::shared_ptr<nn::Sequential> moons_net() {
  return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(2, 16), std::make_shared<nn::ReLU>(), std::make_shared<nn::Dropout>(0.3),
      std::make_shared<nn::Linear>(16, 2)});
}

void train_epoch(nn::Module& m, optim::Optimizer& opt, data::DataLoader& loader) {
  m.train();
  for (auto& b : loader) {
    opt.zero_grad();
    cross_entropy(m(b.x), b.y).backward();
    opt.step();
  }
}

}  // namespace

TEST_CASE("io: resume exactness — 2 epochs straight == 1 epoch + checkpoint + 1 epoch") {
  TempDir tmp("io");
  const std::string path = tmp / "run.ckpt";
  const data::TensorDataset ds = data::make_moons(200, 0.1f, 3);

  // Uninterrupted run; the checkpoint is taken after epoch 1.
  manual_seed(1);
  auto a = moons_net();
  optim::Adam opt_a(a->parameters(), 0.01);
  data::DataLoader loader_a(ds, 32, true, 7);
  train_epoch(*a, opt_a, loader_a);
  save_checkpoint(path, *a, &opt_a, {"moons-mlp", 1, {{"best_acc", 0.5}}, {}});
  train_epoch(*a, opt_a, loader_a);

  // Resumed run: fresh objects built from another seed.
  manual_seed(2);
  auto b = moons_net();
  optim::Adam opt_b(b->parameters(), 0.01);
  data::DataLoader loader_b(ds, 32, true, 7);
  const CheckpointMeta meta = load_checkpoint(path, *b, &opt_b);
  CHECK(meta.epoch == 1);
  loader_b.set_epoch(meta.epoch);
  train_epoch(*b, opt_b, loader_b);
  CHECK(values(*a) == values(*b));

  // Control: the test has teeth — without set_epoch the batches differ.
  manual_seed(2);
  auto c = moons_net();
  optim::Adam opt_c(c->parameters(), 0.01);
  data::DataLoader loader_c(ds, 32, true, 7);
  load_checkpoint(path, *c, &opt_c);
  train_epoch(*c, opt_c, loader_c);
  CHECK(values(*a) != values(*c));
}

TEST_CASE("io: bad files give one-line errors naming the file; the model is untouched") {
  TempDir tmp("io");
  const std::string good = tmp / "good.ckpt", bad = tmp / "bad.ckpt";
  manual_seed(7);
  auto src = small_net();
  save_checkpoint(good, *src, nullptr, {"small", 2, {}, {}});
  const std::string bytes = read_bytes(good);
  REQUIRE(bytes.size() > 64);
  const size_t payload = bytes.size() - 32;

  manual_seed(8);
  auto m = small_net();
  const auto before = values(*m);
  const std::string where = "load_checkpoint: '" + bad + "'";

  SUBCASE("missing file") {
    CHECK_THROWS_WITH_AS(load_checkpoint(bad, *m),
                         ("load_checkpoint: cannot open '" + bad + "': No such file or directory").c_str(), Error);
    CHECK_THROWS_WITH_AS(read_checkpoint_meta(bad),
                         ("read_checkpoint_meta: cannot open '" + bad + "': No such file or directory").c_str(),
                         Error);
  }
  SUBCASE("truncated to half") {
    write_bytes(bad, bytes.substr(0, bytes.size() / 2));
    const std::string msg = where + " is truncated (header says " + std::to_string(payload) +
                            " bytes of payload, file has " + std::to_string(bytes.size() / 2 - 32) + ")";
    CHECK_THROWS_WITH_AS(load_checkpoint(bad, *m), msg.c_str(), Error);
    CHECK_THROWS_WITH_AS(load(*m, bad), ("load: '" + bad + "'" + msg.substr(where.size())).c_str(), Error);
  }
  SUBCASE("truncated inside the header") {
    write_bytes(bad, bytes.substr(0, 10));
    CHECK_THROWS_WITH_AS(load_checkpoint(bad, *m),
                         (where + " is truncated (file has 10 bytes, the header alone is 32)").c_str(), Error);
  }
  SUBCASE("one flipped byte in the payload") {
    std::string b = bytes;
    b[32 + payload / 2] ^= 0x10;
    write_bytes(bad, b);
    CHECK_THROWS_WITH_AS(load_checkpoint(bad, *m), Contains((where + " is corrupted (payload checksum 0x").c_str()), Error);
  }
  SUBCASE("trailing garbage") {
    write_bytes(bad, bytes + "xyz");
    CHECK_THROWS_WITH_AS(load_checkpoint(bad, *m),
                         (where + " is corrupted (header says " + std::to_string(payload) +
                          " bytes of payload, file has " + std::to_string(payload + 3) + ")")
                             .c_str(),
                         Error);
  }
  SUBCASE("another format") {
    write_bytes(bad, "P6\n28 28\n255\n" + std::string(2000, '\x7f'));
    CHECK_THROWS_WITH_AS(load_checkpoint(bad, *m),
                         (where + " is not a tape checkpoint (its first bytes are not \"TAPECKPT\")").c_str(), Error);
  }
  SUBCASE("a newer format version") {
    std::string b = bytes;
    b[8] = 3;
    write_bytes(bad, b);
    CHECK_THROWS_WITH_AS(load_checkpoint(bad, *m),
                         (where + " has format version 3, newer than this build of tape reads (up to 2)").c_str(),
                         Error);
  }
  SUBCASE("a version-2 file relabelled as version 1 (its XXH3 checksum is not an FNV-1a one)") {
    std::string b = bytes;
    b[8] = 1;
    write_bytes(bad, b);
    CHECK_THROWS_WITH_AS(load_checkpoint(bad, *m), Contains((where + " is corrupted (payload checksum 0x").c_str()), Error);
  }
  CHECK(values(*m) == before);
  CHECK(values(*m) != values(*src));
}

namespace {

uint64_t le64(const std::string& s, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | uint8_t(s[at + size_t(i)]);
  return v;
}

void set_le64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + size_t(i)] = char(v >> (8 * i));
}

/// FNV-1a-64, the checksum of format version 1.
uint64_t fnv1a64(const std::string& s, size_t from) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = from; i < s.size(); ++i) h = (h ^ uint8_t(s[i])) * 0x100000001b3ull;
  return h;
}

}  // namespace

TEST_CASE("io: checkpoint format 2 checksums with XXH3-64; format 1 files (FNV-1a-64) still load") {
  TempDir tmp("io");
  const std::string path = tmp / "new.ckpt", old = tmp / "old.ckpt";
  manual_seed(11);
  auto src = small_net();
  save_checkpoint(path, *src, nullptr, {"small", 4, {{"acc", 0.5}}, {}});
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() > 64);

  // the header of a new file: version 2, and XXH3-64 of the payload as any xxHash tool computes it
  CHECK(bytes[8] == 2);
  CHECK(kCheckpointFormatVersion == 2);
  CHECK(le64(bytes, 24) == XXH3_64bits(bytes.data() + 32, bytes.size() - 32));
  CHECK(le64(bytes, 24) != fnv1a64(bytes, 32));

  // the same payload as a version-1 file, signed with FNV-1a, loads with the same values
  std::string v1 = bytes;
  v1[8] = 1;
  set_le64(v1, 24, fnv1a64(v1, 32));
  write_bytes(old, v1);
  manual_seed(12);
  auto m = small_net();
  REQUIRE(values(*m) != values(*src));
  const CheckpointMeta meta = load_checkpoint(old, *m);
  CHECK(values(*m) == values(*src));
  CHECK(meta.epoch == 4);
  CHECK(meta.scalars.at("acc") == 0.5);

  // a flipped payload byte in a version-1 file is caught by its FNV-1a checksum
  v1[32 + (v1.size() - 32) / 2] ^= 0x01;
  write_bytes(old, v1);
  CHECK_THROWS_WITH_AS(load(*m, old), Contains(("load: '" + old + "' is corrupted (payload checksum 0x").c_str()),
                       Error);
}

TEST_CASE("io: a checkpoint written by tape with format version 1 (tests/data) still loads") {
  // Written by save_checkpoint before the switch to XXH3 (format 1, FNV-1a-64):
  // Linear(2, 3), ReLU, Linear(3, 1) with parameter values 0, 0.25, 0.5, ... in
  // order, meta {"linear:2-3-1", epoch 3, best 0.75, note "format 1"}.
  const std::string path = TAPE_SOURCE_DIR "/tests/data/checkpoint-format1.tapeckpt";
  REQUIRE(read_bytes(path).substr(0, 9) == std::string("TAPECKPT\x01", 9));
  nn::Sequential net({std::make_shared<nn::Linear>(2, 3), std::make_shared<nn::ReLU>(),
                      std::make_shared<nn::Linear>(3, 1)});
  const CheckpointMeta meta = load_checkpoint(path, net);
  CHECK(meta.model_spec == "linear:2-3-1");
  CHECK(meta.epoch == 3);
  CHECK(meta.scalars.at("best") == 0.75);
  CHECK(meta.strings.at("note") == "format 1");
  float want = 0.f;
  for (const auto& p : values(net))
    for (float v : p) {
      CHECK(v == want);
      want += 0.25f;
    }
  CHECK(want == 3.25f);  // 13 parameters
}

TEST_CASE("io: parameter mismatches name the first bad parameter") {
  TempDir tmp("io");
  const std::string path = tmp / "m.ckpt";
  const std::string where = "load_checkpoint: '" + path + "'";
  manual_seed(9);
  auto src = small_net();
  save_checkpoint(path, *src, nullptr, {});

  SUBCASE("wrong shape") {
    auto m = small_net(5);
    const auto before = values(*m);
    CHECK_THROWS_WITH_AS(load_checkpoint(path, *m),
                         (where + ": parameter 0.weight has shape [8, 4] in the file but [5, 4] in the model").c_str(),
                         Error);
    CHECK(values(*m) == before);
  }
  SUBCASE("parameter missing from the file") {
    auto no_bias = small_net(8, false);
    save_checkpoint(path, *no_bias, nullptr, {});
    auto m = small_net();
    const auto before = values(*m);
    CHECK_THROWS_WITH_AS(load_checkpoint(path, *m),
                         (where + ": parameter 2.bias of the model is missing from the file").c_str(), Error);
    CHECK(values(*m) == before);
  }
  SUBCASE("extra parameter in the file") {
    auto m = small_net(8, false);
    const auto before = values(*m);
    CHECK_THROWS_WITH_AS(load_checkpoint(path, *m),
                         (where + ": the file has parameter 2.bias, which the model does not have").c_str(), Error);
    CHECK_THROWS_WITH_AS(load(*m, path),
                         ("load: '" + path + "': the file has parameter 2.bias, which the model does not have").c_str(),
                         Error);
    CHECK(values(*m) == before);
  }
}

TEST_CASE("io: optimizer state mismatches leave model and optimizer unchanged") {
  TempDir tmp("io");
  const std::string path = tmp / "opt.ckpt";
  const std::string where = "load_checkpoint: '" + path + "'";
  manual_seed(10);
  Tensor x = randn({8, 4});
  Tensor y = tensor(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 1}, {8});
  auto src = small_net();
  optim::Adam opt(src->parameters(), 0.01);
  train_steps(*src, opt, x, y, 2);
  save_checkpoint(path, *src, &opt, {});

  manual_seed(11);
  auto m = small_net();
  const auto before = values(*m);
  SUBCASE("another optimizer type") {
    optim::SGD sgd(m->parameters(), 0.1);
    CHECK_THROWS_WITH_AS(load_checkpoint(path, *m, &sgd),
                         (where + ": the file holds Adam optimizer state but the optimizer is SGD").c_str(), Error);
  }
  SUBCASE("load_state_dict's own error, prefixed with the file") {
    const auto ps = m->parameters();
    optim::Adam two(std::vector<Tensor>{ps[0], ps[1]}, 0.5);
    CHECK_THROWS_WITH_AS(load_checkpoint(path, *m, &two),
                         Contains((where + ": Adam.load_state_dict: unexpected entry param.2.").c_str()), Error);
    CHECK(two.step_count() == 0);
    CHECK(two.lr() == 0.5);
  }
  CHECK(values(*m) == before);
  // With no optimizer requested, the same file loads fine.
  load_checkpoint(path, *m);
  CHECK(values(*m) == values(*src));
}

TEST_CASE("io: a failed save leaves the old file intact and no temp file behind") {
  TempDir tmp("io");
  const std::string path = tmp / "run.ckpt";
  manual_seed(12);
  auto m = small_net();
  save_checkpoint(path, *m, nullptr, {"small", 1, {}, {}});
  const std::string old_bytes = read_bytes(path);
  auto big = small_net(64);

  SUBCASE("directory does not exist") {
    const std::string p = tmp / "no/such/dir/run.ckpt";
    std::string msg;
    try {
      save_checkpoint(p, *m, nullptr, {});
    } catch (const Error& e) {
      msg = e.what();
    }
    const std::string head = "save_checkpoint: cannot write '" + p + "': creating '" + p + ".tmp." +
                             std::to_string(::getpid()) + ".";  // then the write's number in this process
    CHECK(msg.rfind(head, 0) == 0);
    CHECK(msg.ends_with("' failed: No such file or directory"));
    CHECK_THROWS_WITH_AS(save(*m, p), Contains(("save: cannot write '" + p + "'").c_str()), Error);
  }
  SUBCASE("the disk fills up midway (RLIMIT_FSIZE)") {
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    rlimit small = old;
    small.rlim_cur = 100;  // the header fits, the payload does not
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    bool threw = false;
    std::string msg;
    try {
      save_checkpoint(path, *big, nullptr, {"big", 2, {}, {}});
    } catch (const Error& e) {
      threw = true;
      msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    CHECK(threw);
    CHECK(msg.find("save_checkpoint: cannot write '" + path + "': writing '") == 0);
    CHECK(msg.find("File too large") != std::string::npos);
  }
  SUBCASE("the rename fails (the target is a directory)") {
    const std::string p = tmp / "adir";
    fs::create_directory(p);
    CHECK_THROWS_WITH_AS(save_checkpoint(p, *m, nullptr, {}), Contains(("': renaming '" + p + ".tmp.").c_str()), Error);
    CHECK(fs::is_directory(p));
    fs::remove(p);
  }
  CHECK(read_bytes(path) == old_bytes);
  CHECK(read_checkpoint_meta(path).epoch == 1);
  CHECK(tmp.names() == std::vector<std::string>{"run.ckpt"});

  // and a successful save replaces it
  save_checkpoint(path, *big, nullptr, {"big", 2, {}, {}});
  CHECK(read_checkpoint_meta(path).model_spec == "big");
  CHECK(tmp.names() == std::vector<std::string>{"run.ckpt"});
}

TEST_CASE("io: read_checkpoint_meta, and checkpoints vs plain model files") {
  TempDir tmp("io");
  const std::string ckpt = tmp / "run.ckpt", model = tmp / "model.bin";
  manual_seed(13);
  auto m = small_net();
  CheckpointMeta meta;
  meta.model_spec = "mlp:4-8-3:relu:dropout=0";
  meta.epoch = 17;
  meta.scalars = {{"best_acc", 0.9712}, {"lr", 1e-3}};
  meta.strings = {{"optimizer", "adam"}, {"note", "héllo\nworld"}};
  save_checkpoint(ckpt, *m, nullptr, meta);
  save(*m, model);

  const CheckpointMeta r = read_checkpoint_meta(ckpt);
  CHECK(r.model_spec == meta.model_spec);
  CHECK(r.epoch == 17);
  CHECK(r.scalars == meta.scalars);
  CHECK(r.strings == meta.strings);

  // a plain model file has an empty meta and no RNG state
  CHECK(read_checkpoint_meta(model).model_spec.empty());
  manual_seed(14);
  auto other = small_net();
  const Generator::State rng = default_generator().state();
  const CheckpointMeta e = load_checkpoint(model, *other);
  CHECK(e.epoch == 0);
  CHECK(default_generator().state().s == rng.s);
  CHECK(values(*other) == values(*m));
  // load() reads a full checkpoint too (module only)
  auto third = small_net();
  load(*third, ckpt);
  CHECK(values(*third) == values(*m));
}
