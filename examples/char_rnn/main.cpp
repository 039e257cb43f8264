// Issue 13: a character-level language model. Embedding → LSTM (or GRU) →
// Dropout → Linear over the bytes of any text; the last 10 % is held out and
// the model with the best validation loss is the one kept (docs/char_rnn.md).
#include <tape/nn/embedding.hpp>
#include <tape/nn/rnn.hpp>
#include <tape/tape.hpp>
#include <tape_vision/plot.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "cli.hpp"
#include "progress.hpp"

using namespace tape;
using namespace tape::examples;

namespace {

const char* kLicences =
    "/usr/share/common-licenses/GPL-3,/usr/share/common-licenses/GPL-2,/usr/share/common-licenses/LGPL-2.1,"
    "/usr/share/common-licenses/Apache-2.0,/usr/share/common-licenses/MPL-2.0";

struct Config {
  std::string text = kLicences;
  int epochs = 20;
  int64_t batch_size = 32, seq_len = 64, hidden = 256, embed = 64, layers = 1;
  double dropout = 0.3, lr = 2e-3, temperature = 0.8;
  std::string cell = "lstm";
  uint64_t seed = 0;
  int threads = 0;
  int64_t sample = 0;
  std::string prime = "The ";
  std::string csv, plot, save, resume;
  bool quiet = false;
  std::string precision = "f32";  ///< f32 | bf16 (autocast; not stored: a resumed run may change it)
  std::set<std::string> given;
};

void validate(const Config& c) {
  TAPE_CHECK(c.epochs >= (c.resume.empty() ? 1 : 0), "--epochs must be at least ", c.resume.empty() ? 1 : 0,
             " (0 only with --resume, to sample), got ", c.epochs);
  TAPE_CHECK(c.batch_size >= 1 && c.batch_size <= 100000, "--batch-size must be in [1, 100000], got ", c.batch_size);
  TAPE_CHECK(c.seq_len >= 1 && c.seq_len <= 100000, "--seq-len must be in [1, 100000], got ", c.seq_len);
  TAPE_CHECK(c.hidden >= 1 && c.hidden <= 16384, "--hidden must be in [1, 16384], got ", c.hidden);
  TAPE_CHECK(c.embed >= 1 && c.embed <= 16384, "--embed must be in [1, 16384], got ", c.embed);
  TAPE_CHECK(c.layers >= 1 && c.layers <= 16, "--layers must be in [1, 16], got ", c.layers);
  TAPE_CHECK(c.dropout >= 0 && c.dropout < 1, "--dropout must be in [0, 1), got ", c.dropout);
  TAPE_CHECK(c.lr > 0 && std::isfinite(c.lr), "--lr must be positive, got ", c.lr);
  TAPE_CHECK(c.temperature > 0 && std::isfinite(c.temperature), "--temperature must be positive, got ",
             c.temperature);
  TAPE_CHECK(c.sample >= 0 && c.sample <= 100'000'000, "--sample must be in [0, 1e8], got ", c.sample);
  TAPE_CHECK(c.cell == "lstm" || c.cell == "gru", "--cell must be lstm or gru, got '", c.cell, "'");
  TAPE_CHECK(c.threads >= 0 && c.threads <= 1024, "--threads must be in [0, 1024], got ", c.threads);
  TAPE_CHECK(c.sample == 0 || !c.prime.empty(), "--prime must not be empty when sampling");
  validate_precision(c.precision);
}

// ---------------------------------------------------------------------------
// The text: bytes are characters; the vocabulary is the sorted set of bytes seen.

struct Corpus {
  std::string vocab;         ///< id → byte
  std::vector<int64_t> ids;  ///< the whole text as ids
  int64_t split = 0;         ///< ids[0, split) train, ids[split, end) validation
};

std::string read_texts(const std::string& list) {
  std::string all;
  std::stringstream ss(list);
  for (std::string path; std::getline(ss, path, ',');) {
    TAPE_CHECK(!path.empty(), "--text: empty file name in '", list, "'");
    std::ifstream f(path, std::ios::binary);
    TAPE_CHECK(f.good(), "--text: cannot read '", path, "'");
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    TAPE_CHECK(!f.bad(), "--text: error reading '", path, "'");
    all += bytes;
  }
  return all;
}

/// Maps bytes to ids of `vocab` (a byte not in it is an error naming `what`).
std::vector<int64_t> encode(const std::string& text, const std::string& vocab, const std::string& what) {
  std::array<int64_t, 256> id;
  id.fill(-1);
  for (size_t i = 0; i < vocab.size(); ++i) id[uint8_t(vocab[i])] = int64_t(i);
  std::vector<int64_t> out(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    out[i] = id[uint8_t(text[i])];
    TAPE_CHECK(out[i] >= 0, what, ": character ", int(uint8_t(text[i])), " at byte ", i,
               " is not in the model's vocabulary");
  }
  return out;
}

Corpus load_corpus(const Config& c, const std::string& vocab_from_checkpoint) {
  const std::string text = read_texts(c.text);
  Corpus k;
  k.vocab = vocab_from_checkpoint;
  if (k.vocab.empty()) {
    std::array<bool, 256> seen{};
    for (char ch : text) seen[uint8_t(ch)] = true;
    for (int b = 0; b < 256; ++b)
      if (seen[size_t(b)]) k.vocab += char(b);
  }
  k.ids = encode(text, k.vocab, "--text '" + c.text + "'");
  const int64_t n = int64_t(k.ids.size());
  k.split = n - n / 10;
  // at least two training windows and one validation window of seq_len + 1
  TAPE_CHECK(n / 10 >= c.seq_len + 1 && k.split >= 2 * (c.seq_len + 1), "--text '", c.text, "' has ", n,
             " characters: too short for --seq-len ", c.seq_len, " (need at least ", 10 * (c.seq_len + 1), ")");
  return k;
}

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (char ch : s) out += {d[uint8_t(ch) >> 4], d[uint8_t(ch) & 15]};
  return out;
}
std::string unhex(const std::string& h, const std::string& ckpt) {
  auto val = [&](char ch) {
    const int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    TAPE_CHECK(v >= 0, "--resume: checkpoint '", ckpt, "' has an invalid vocabulary");
    return v;
  };
  TAPE_CHECK(h.size() % 2 == 0 && !h.empty() && h.size() <= 512, "--resume: checkpoint '", ckpt,
             "' has an invalid vocabulary");
  std::string out;
  for (size_t i = 0; i < h.size(); i += 2) out += char(val(h[i]) * 16 + val(h[i + 1]));
  return out;
}

// ---------------------------------------------------------------------------
// The model.

/// A recurrent state that fits both cells (GRU leaves c undefined).
struct State {
  Tensor h, c;
};

class CharRNN : public nn::Module {
 public:
  CharRNN(int64_t vocab, const Config& c) : cell_(c.cell) {
    embed = register_module("embed", std::make_shared<nn::Embedding>(vocab, c.embed));
    if (c.cell == "lstm")
      lstm = register_module("rnn", std::make_shared<nn::LSTM>(
                                        nn::LSTMOptions(c.embed, c.hidden).num_layers(c.layers).dropout(c.dropout)));
    else
      gru = register_module("rnn", std::make_shared<nn::GRU>(
                                       nn::GRUOptions(c.embed, c.hidden).num_layers(c.layers).dropout(c.dropout)));
    drop = register_module("drop", std::make_shared<nn::Dropout>(c.dropout));
    head = register_module("head", std::make_shared<nn::Linear>(c.hidden, vocab));
  }
  /// ids [T, N] → logits [T·N, V] (zero initial state).
  Tensor forward(const Tensor& ids) override { return step(ids, {}).first; }
  /// ids [T, N] from `state` → (logits [T·N, V], the final state).
  std::pair<Tensor, State> step(const Tensor& ids, const State& state) {
    Tensor x = (*embed)(ids);
    Tensor y;
    State out;
    if (lstm) {
      auto [o, s] = lstm->forward_with_state(x, nn::LSTMState{state.h, state.c});
      y = o, out = {s.h, s.c};
    } else {
      auto [o, h] = gru->forward_with_state(x, state.h);
      y = o, out = {h, {}};
    }
    y = (*drop)(y);
    return {(*head)(y.reshape({-1, y.size(2)})), out};
  }
  std::string type_name() const override { return "CharRNN"; }

  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::GRU> gru;
  std::shared_ptr<nn::Dropout> drop;
  std::shared_ptr<nn::Linear> head;

 private:
  std::string cell_;
};

/// What a checkpoint holds: the model being trained (for an exact resume) and a
/// copy of the best one so far (the one a run ends with and samples from).
class Snapshot : public nn::Module {
 public:
  Snapshot(int64_t vocab, const Config& c)
      : model(register_module("model", std::make_shared<CharRNN>(vocab, c))),
        best(register_module("best", std::make_shared<CharRNN>(vocab, c))) {}
  Tensor forward(const Tensor& x) override { return (*model)(x); }
  std::shared_ptr<CharRNN> model, best;
};

std::string model_spec(const Config& c, int64_t vocab) {
  return str_cat("char_rnn:", c.cell, ":vocab=", vocab, ":embed=", c.embed, ":hidden=", c.hidden,
                 ":layers=", c.layers, ":dropout=", c.dropout);
}

// ---------------------------------------------------------------------------
// Batches and the loss.

struct Batch {
  Tensor x, y;  ///< x [T, N] ids, y [T·N] the next characters (row t·N + n)
};

/// N windows of T + 1 characters starting at `starts`.
Batch make_batch(const std::vector<int64_t>& ids, const std::vector<int64_t>& starts, int64_t T) {
  const int64_t N = int64_t(starts.size());
  std::vector<int64_t> x(size_t(T * N)), y(size_t(T * N));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      x[size_t(t * N + n)] = ids[size_t(starts[size_t(n)] + t)];
      y[size_t(t * N + n)] = ids[size_t(starts[size_t(n)] + t + 1)];
    }
  return {tensor(std::move(x), {T, N}), tensor(std::move(y), {T * N})};
}

/// Random windows anywhere in the training text: every batch sees fresh contexts,
/// so one epoch is ⌈train / (T·N)⌉ batches and the draws depend only on (seed, epoch).
Batch random_batch(const Corpus& k, int64_t T, int64_t N, Generator& rng) {
  std::vector<int64_t> starts{};
  starts.resize(size_t(N));
  for (auto& s : starts) s = int64_t(rng.below(uint64_t(k.split - T)));
  return make_batch(k.ids, starts, T);
}

/// Mean nats per character over the held-out text: non-overlapping windows of T
/// (each starting from a zero state), in eval mode without a graph.
double validation_loss(CharRNN& model, const Corpus& k, int64_t T, int64_t N, bool bf16) {
  NoGradGuard no_grad;
  MaybeAutocast autocast(bf16);
  model.eval();
  const int64_t windows = (int64_t(k.ids.size()) - k.split - 1) / T;
  double sum = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += N) {
    std::vector<int64_t> starts;
    for (int64_t w = w0; w < std::min(windows, w0 + N); ++w) starts.push_back(k.split + w * T);
    Batch b = make_batch(k.ids, starts, T);
    sum += double(cross_entropy(model(b.x), b.y).item()) * double(b.y.numel());
  }
  model.train();
  return sum / double(windows * T);
}

// ---------------------------------------------------------------------------
// Sampling.

/// Feeds `prime` and then each drawn character back, one at a time; returns N characters.
std::string sample_text(CharRNN& model, const std::string& vocab, const Config& c) {
  NoGradGuard no_grad;
  model.eval();
  const std::vector<int64_t> prime = encode(c.prime, vocab, "--prime");
  Generator rng(c.seed ^ 0x5a3d1e);
  State state;
  Tensor logits;
  for (int64_t id : prime) std::tie(logits, state) = model.step(tensor(std::vector<int64_t>{id}, {1, 1}), state);
  std::string out;
  for (int64_t i = 0; i < c.sample; ++i) {
    const std::vector<float> p = softmax(logits * float(1 / c.temperature), 1).to_vector<float>();
    float u = rng.uniform(), acc = 0;
    size_t pick = p.size() - 1;  // rounding can leave u above the last partial sum
    for (size_t j = 0; j < p.size(); ++j)
      if ((acc += p[j]) > u) {
        pick = j;
        break;
      }
    out += vocab[pick];
    std::tie(logits, state) = model.step(tensor(std::vector<int64_t>{int64_t(pick)}, {1, 1}), state);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Resuming: flags not given take the checkpoint's values; a model flag that
// differs is an error (the weights would not fit).

template <class T>
void take(const Config& c, const CheckpointMeta& m, const char* flag, T& value, bool can_change) {
  auto it = m.strings.find(str_cat("run.", flag));
  if (it == m.strings.end()) return;
  T old{};
  std::istringstream is(it->second);
  if constexpr (std::is_same_v<T, std::string>) old = it->second;
  else TAPE_CHECK((is >> old) && is.eof(), "--resume: checkpoint '", c.resume, "' has an invalid run.", flag);
  if (!c.given.count(flag)) value = old;
  else TAPE_CHECK(can_change || value == old, "--resume: --", flag, " ", value, " differs from the checkpoint's ",
                  old, " (the model cannot change when resuming)");
}

void merge_resume(Config& c, const CheckpointMeta& m) {
  take(c, m, "cell", c.cell, false);
  take(c, m, "embed", c.embed, false);
  take(c, m, "hidden", c.hidden, false);
  take(c, m, "layers", c.layers, false);
  take(c, m, "dropout", c.dropout, false);
  take(c, m, "text", c.text, true);
  take(c, m, "seq-len", c.seq_len, true);
  take(c, m, "batch-size", c.batch_size, true);
  take(c, m, "seed", c.seed, true);
  take(c, m, "epochs", c.epochs, true);
}

void store_run(const Config& c, CheckpointMeta& m) {
  m.strings["run.cell"] = c.cell;
  m.strings["run.embed"] = str_cat(c.embed);
  m.strings["run.hidden"] = str_cat(c.hidden);
  m.strings["run.layers"] = str_cat(c.layers);
  m.strings["run.dropout"] = str_cat(c.dropout);
  m.strings["run.text"] = c.text;
  m.strings["run.seq-len"] = str_cat(c.seq_len);
  m.strings["run.batch-size"] = str_cat(c.batch_size);
  m.strings["run.seed"] = str_cat(c.seed);
  m.strings["run.epochs"] = str_cat(c.epochs);
}

// ---------------------------------------------------------------------------
// Training.

struct Epoch {
  int epoch = 0;
  double train_loss = 0, val_loss = 0, seconds = 0;
};

struct History {
  std::vector<Epoch> epochs;
  int best = 0;  ///< the epoch of the best validation loss (0: none yet)
  double best_loss() const { return best ? epochs[size_t(best - 1)].val_loss : INFINITY; }
};

void store_history(const History& h, CheckpointMeta& m) {
  for (const Epoch& e : h.epochs) {
    m.scalars[str_cat("train_loss.", e.epoch)] = e.train_loss;
    m.scalars[str_cat("val_loss.", e.epoch)] = e.val_loss;
    m.scalars[str_cat("seconds.", e.epoch)] = e.seconds;
  }
  m.scalars["best_epoch"] = h.best;
}

History load_history(const CheckpointMeta& m, const std::string& path) {
  History h;
  for (int64_t e = 1; e <= m.epoch; ++e) {
    auto get = [&](const char* key) {
      auto it = m.scalars.find(str_cat(key, ".", e));
      TAPE_CHECK(it != m.scalars.end(), "--resume: checkpoint '", path, "' lacks ", key, ".", e);
      return it->second;
    };
    h.epochs.push_back({int(e), get("train_loss"), get("val_loss"), get("seconds")});
  }
  auto it = m.scalars.find("best_epoch");
  h.best = it == m.scalars.end() ? 0 : int(it->second);
  TAPE_CHECK(h.best >= 0 && h.best <= int(m.epoch) && (h.best > 0 || m.epoch == 0), "--resume: checkpoint '", path,
             "' has an invalid best_epoch");
  return h;
}

std::string csv_text(const History& h) {
  std::string s = "epoch,train_loss,val_loss\n";
  for (const Epoch& e : h.epochs) s += str_cat(e.epoch, ',', e.train_loss, ',', e.val_loss, '\n');
  return s;
}

void write_plot(const History& h, const std::string& path) {
  vision::Series train{"train loss", {}, {}}, val{"validation loss", {}, {}};
  for (const Epoch& e : h.epochs) train.y.push_back(e.train_loss), val.y.push_back(e.val_loss);
  vision::PlotOptions o;
  o.title = "char_rnn";
  o.x_label = "epoch";
  o.y_label = "nats per character";
  o.y_from_zero = true;
  data::save_png(vision::plot_curves({train, val}, o), path);
}

/// One epoch of minibatches; returns the mean training loss.
double train_epoch(CharRNN& model, optim::Optimizer& opt, const Corpus& k, const Config& c, int epoch, bool bf16) {
  const int64_t tokens = c.seq_len * c.batch_size;
  const int64_t batches = (k.split + tokens - 1) / tokens;
  // the windows depend on (seed, epoch) only, so a resumed run draws the same ones
  Generator rng(c.seed * 0x9E3779B97F4A7C15ull + uint64_t(epoch) + 1);
  const std::vector<Tensor> params = model.parameters();
  ProgressBar bar(batches);
  double sum = 0;
  for (int64_t i = 0; i < batches; ++i) {
    Batch b = random_batch(k, c.seq_len, c.batch_size, rng);
    Tensor loss;
    {
      MaybeAutocast autocast(bf16);  // forward and loss; backward follows each op's forward precision
      loss = cross_entropy(model(b.x), b.y);
    }
    opt.zero_grad();
    loss.backward();
    nn::utils::clip_grad_norm_(params, 5.0);
    opt.step();
    sum += double(loss.item());
    bar.update(i + 1, str_cat("loss ", loss.item()));
  }
  bar.clear();
  return sum / double(batches);
}

void check_outputs(const Config& c) {
  for (const auto& [path, flag] : {std::pair{c.csv, "--csv"}, {c.plot, "--plot"}, {c.save, "--save"}})
    if (!path.empty()) check_writable(path, flag);
}

int run(Config c) {
  validate(c);
  check_outputs(c);
  apply_threads(c.threads);
  CheckpointMeta resume_meta;
  std::string vocab;
  if (!c.resume.empty()) {
    resume_meta = read_checkpoint_meta(c.resume);
    merge_resume(c, resume_meta);
    validate(c);
    auto it = resume_meta.strings.find("vocab");
    TAPE_CHECK(it != resume_meta.strings.end(), "--resume: checkpoint '", c.resume, "' is not a char_rnn checkpoint");
    vocab = unhex(it->second, c.resume);
  }
  // Sampling from a checkpoint needs no text.
  const bool training = c.epochs > resume_meta.epoch;
  Corpus corpus;
  if (training) corpus = load_corpus(c, vocab);
  if (vocab.empty()) vocab = corpus.vocab;
  const int64_t V = int64_t(vocab.size());

  manual_seed(c.seed);
  Snapshot snap(V, c);
  CharRNN& model = *snap.model;
  optim::Adam opt(model.parameters(), c.lr);
  History hist;
  if (!c.resume.empty()) {
    const CheckpointMeta m = load_checkpoint(c.resume, snap, &opt);
    hist = load_history(m, c.resume);
    if (!c.quiet) std::printf("resumed from %s after epoch %lld\n", c.resume.c_str(), (long long)m.epoch);
  }
  const bool bf16 = training && use_bf16(c.precision);
  if (!c.quiet && training) {
    std::printf("%s\n", model.repr().c_str());
    std::printf("training %s (%s parameters) on %s characters (%s held out) of %s, vocabulary %lld, batch %lld x %lld, "
                "adam lr %g, %d epochs, seed %llu, %d threads, %s\n",
                model_spec(c, V).c_str(), nn::format_thousands(model.num_parameters()).c_str(),
                nn::format_thousands(corpus.split).c_str(),
                nn::format_thousands(int64_t(corpus.ids.size()) - corpus.split).c_str(), c.text.c_str(),
                (long long)V, (long long)c.batch_size, (long long)c.seq_len, c.lr, c.epochs,
                (unsigned long long)c.seed, get_num_threads(), precision_label(bf16).c_str());
  }
  if (!c.csv.empty()) write_file_atomically(c.csv, csv_text(hist), "--csv");

  for (int e = int(hist.epochs.size()); e < c.epochs; ++e) {
    model.train();
    const auto t0 = std::chrono::steady_clock::now();
    const double train_loss = train_epoch(model, opt, corpus, c, e, bf16);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double val_loss = validation_loss(model, corpus, c.seq_len, c.batch_size, bf16);
    hist.epochs.push_back({e + 1, train_loss, val_loss, secs});
    if (val_loss < hist.best_loss()) {
      hist.best = e + 1;
      snap.best->load_state_dict(model.state_dict());
    }
    const int64_t chars = (corpus.split + c.seq_len * c.batch_size - 1) / (c.seq_len * c.batch_size) *
                          c.seq_len * c.batch_size;
    if (!c.quiet)
      std::printf("epoch %d/%d  train_loss %.4f  val_loss %.4f  %.1fs  %s chars/s\n", e + 1, c.epochs, train_loss,
                  val_loss, secs, nn::format_thousands(int64_t(double(chars) / secs)).c_str());
    std::fflush(stdout);
    if (!c.csv.empty()) write_file_atomically(c.csv, csv_text(hist), "--csv");
    if (!c.save.empty()) {
      CheckpointMeta m;
      m.model_spec = model_spec(c, V);
      m.epoch = e + 1;
      m.strings["vocab"] = hex(vocab);
      store_run(c, m);
      store_history(hist, m);
      save_checkpoint(c.save, snap, &opt, m);
    }
  }
  // The model a run ends with is the best one seen, not the last (it may have overfitted).
  if (hist.best > 0) {
    model.load_state_dict(snap.best->state_dict());
    std::printf("best val_loss %.4f nats/char (epoch %d)\n", hist.best_loss(), hist.best);
  }
  if (!c.plot.empty() && !hist.epochs.empty()) {
    write_plot(hist, c.plot);
    if (!c.quiet) std::printf("wrote %s\n", c.plot.c_str());
  }
  if (!c.save.empty() && !c.quiet && training) std::printf("checkpoint: %s\n", c.save.c_str());
  if (c.sample > 0) {
    if (!c.quiet) std::printf("--- sample (temperature %g) ---\n", c.temperature);
    std::printf("%s%s\n", c.prime.c_str(), sample_text(model, vocab, c).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_program("char_rnn", [&] {
    Config c;
    po::options_description d("char_rnn options");
    d.add_options()("help", "show this help")
        ("text", po::value(&c.text)->default_value(c.text, "the GPL-3, GPL-2, LGPL-2.1, Apache-2.0 and MPL-2.0 texts "
                                                          "in /usr/share/common-licenses (108 KB)"),
         "text file(s) to learn, comma-separated, concatenated in order; the last 10 % is held out")
        ("epochs", po::value(&c.epochs)->default_value(c.epochs), "training epochs (0 with --resume: only sample)")
        ("batch-size", po::value(&c.batch_size)->default_value(c.batch_size), "windows per minibatch (N)")
        ("seq-len", po::value(&c.seq_len)->default_value(c.seq_len), "characters per window (T, the BPTT length)")
        ("embed", po::value(&c.embed)->default_value(c.embed), "embedding size")
        ("hidden", po::value(&c.hidden)->default_value(c.hidden), "recurrent units per layer")
        ("layers", po::value(&c.layers)->default_value(c.layers), "recurrent layers")
        ("cell", po::value(&c.cell)->default_value(c.cell), "lstm | gru")
        ("dropout", po::value(&c.dropout)->default_value(c.dropout, str_cat(c.dropout)),
         "dropout before the output layer (and between recurrent layers)")
        ("lr", po::value(&c.lr)->default_value(c.lr, str_cat(c.lr)), "Adam learning rate")
        ("seed", po::value(&c.seed)->default_value(c.seed), "random seed (init, windows, dropout, sampling)")
        ("threads", po::value(&c.threads)->default_value(c.threads), "threads (0 = default)")
        ("csv", po::value(&c.csv), "write epoch,train_loss,val_loss (nats per character) here")
        ("plot", po::value(&c.plot), "write the loss curves to this PNG")
        ("save", po::value(&c.save), "checkpoint after every epoch (the model, the best model, Adam, the history)")
        ("resume", po::value(&c.resume), "continue from this checkpoint (flags not given take its values)")
        ("sample", po::value(&c.sample)->default_value(c.sample), "print N generated characters at the end")
        ("temperature", po::value(&c.temperature)->default_value(c.temperature, str_cat(c.temperature)),
         "sampling temperature (lower: safer, more repetitive)")
        ("prime", po::value(&c.prime)->default_value(c.prime), "text the sample starts from")
        ("quiet", po::bool_switch(&c.quiet), "print only the best loss and the sample");
    add_precision_flag(d, c.precision);
    if (!parse_flags(argc, argv, d, "usage: char_rnn [options]  — a character-level LSTM language model", &c.given))
      return 0;
    return run(c);
  });
}
