#include "tape/io/checkpoint.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/archive/impl/archive_serializer_map.ipp>
#include <boost/archive/impl/basic_binary_iarchive.ipp>
#include <boost/archive/impl/basic_binary_iprimitive.ipp>
#include <boost/serialization/level.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/tracking.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>
#include <sstream>
#include <streambuf>
#include <utility>
#include <vector>

#include <xxhash.h>

#include "tape/core/grad_mode.hpp"
#include "tape/core/generator.hpp"
#include "tape/core/tensor.hpp"
#include "tape/io/file.hpp"
#include "tape/nn/module.hpp"
#include "tape/optim/optimizer.hpp"

// Note: file layout. A fixed 32-byte little-endian header that we write by hand,
// then a Boost.Serialization binary_archive payload:
//
//   offset  size  field
//        0     8  magic "TAPECKPT"
//        8     4  format version (uint32, currently 2)
//       12     4  header size in bytes (uint32, 32 in versions 1 and 2)
//       16     8  payload size in bytes (uint64)
//       24     8  checksum of the payload (uint64): XXH3-64 (xxHash, seed 0)
//                 since version 2, FNV-1a-64 in version 1
//       32     …  payload
//
// Versions 1 and 2 differ only in the checksum; the payload is the same, so
// files of either version load.
// The header is checked before Boost sees a single byte, so a truncated,
// corrupted or foreign file gives a precise one-line error instead of whatever
// the archive would make of it. The payload uses only fixed-width integers,
// std::string, std::vector and std::map; tensor data is stored as raw bytes in
// the machine's byte order (little-endian on every platform tape targets).
// Payload types are object_serializable (no per-class version in the stream):
// the header's format version is the one version number; a future format bumps
// it and branches on it when decoding.

namespace tape {
namespace {

constexpr char kMagic[8] = {'T', 'A', 'P', 'E', 'C', 'K', 'P', 'T'};
constexpr size_t kHeaderSize = 32;
/// A checkpoint is read into memory whole; this only turns an absurd size into a clear error.
constexpr uint64_t kMaxCheckpointBytes = uint64_t(1) << 40;

class BoundedIArchive;

/// Tells the reader the smallest encoding of one item of the collection read next,
/// so its count is checked against the bytes that remain (see BoundedIArchive).
/// Writing needs no check.
template <class Archive>
void expect_item_bytes(Archive& /*ar*/, size_t /*bytes*/) {}
void expect_item_bytes(BoundedIArchive& ar, size_t bytes);

/// A lower bound on the payload bytes of one TensorRecord: a name length (8), the
/// dtype (4) and two collection counts (8 each).
constexpr size_t kMinRecordBytes = 28;

/// One tensor as stored: name, dtype code, shape, raw contiguous bytes.
struct TensorRecord {
  std::string name;
  int32_t dtype = 0;  ///< 0 = Float32, 1 = Int64, 2 = Bool, 3 = Float64, 4 = BFloat16 (see dtype_code)
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & name & dtype;
    expect_item_bytes(ar, sizeof(int64_t));
    ar & shape & data;
  }
};

/// Everything after the header.
struct Payload {
  // meta first, so it is the first thing a reader decodes
  std::string model_spec;
  int64_t epoch = 0;
  std::map<std::string, double> meta_scalars;
  std::map<std::string, std::string> meta_strings;
  // module
  std::vector<TensorRecord> parameters;
  std::vector<TensorRecord> buffers;
  // optimizer
  uint8_t has_optimizer = 0;
  std::string optimizer_type;
  std::vector<TensorRecord> optimizer_tensors;
  std::map<std::string, double> optimizer_scalars;
  // global RNG
  uint8_t has_rng = 0;
  std::vector<uint64_t> rng_state;  ///< Generator::State::s (4 words)
  uint8_t rng_has_spare = 0;
  float rng_spare = 0.f;

  template <class Archive>
  void serialize(Archive& ar, unsigned /*version*/) {
    ar & model_spec & epoch & meta_scalars & meta_strings;
    expect_item_bytes(ar, kMinRecordBytes);
    ar & parameters;
    expect_item_bytes(ar, kMinRecordBytes);
    ar & buffers;
    ar & has_optimizer & optimizer_type;
    expect_item_bytes(ar, kMinRecordBytes);
    ar & optimizer_tensors & optimizer_scalars;
    ar & has_rng;
    expect_item_bytes(ar, sizeof(uint64_t));
    ar & rng_state & rng_has_spare & rng_spare;
  }
};

}  // namespace
}  // namespace tape

BOOST_CLASS_IMPLEMENTATION(tape::TensorRecord, boost::serialization::object_serializable)
BOOST_CLASS_TRACKING(tape::TensorRecord, boost::serialization::track_never)
BOOST_CLASS_IMPLEMENTATION(tape::Payload, boost::serialization::object_serializable)
BOOST_CLASS_TRACKING(tape::Payload, boost::serialization::track_never)

namespace tape {
namespace {

// --- small helpers -----------------------------------------------------------

/// FNV-1a-64, the checksum of format version 1: only for reading old files.
uint64_t fnv1a64(const char* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= uint8_t(p[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}

/// The payload checksum of a file of the given format version. Version 2 uses
/// XXH3-64 (seed 0): standard, so `xxhsum -H3` on the payload bytes checks a file
/// outside tape, and about 20x faster than byte-at-a-time FNV-1a.
uint64_t payload_checksum(uint32_t version, const char* p, size_t n) {
  return version == 1 ? fnv1a64(p, n) : XXH3_64bits(p, n);
}

std::string hex(uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

uint64_t get_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(uint8_t(p[i])) << (8 * i);
  return v;
}

int32_t dtype_code(Dtype d) {
  switch (d) {
    case Dtype::Float32: return 0;
    case Dtype::Int64: return 1;
    case Dtype::Bool: return 2;
    case Dtype::Float64: return 3;
    case Dtype::BFloat16: return 4;
  }
  return -1;
}

bool dtype_from_code(int32_t code, Dtype& d) {
  switch (code) {
    case 0: d = Dtype::Float32; return true;
    case 1: d = Dtype::Int64; return true;
    case 2: d = Dtype::Bool; return true;
    case 3: d = Dtype::Float64; return true;
    case 4: d = Dtype::BFloat16; return true;
    default: return false;
  }
}

const void* raw_data(const Tensor& c) {
  TAPE_CHECK(c.is_contiguous(), "checkpoint: internal: tensor is not contiguous");
  return static_cast<const char*>(c.impl()->storage->data()) + c.impl()->offset * int64_t(dtype_size(c.dtype()));
}

void* raw_data(Tensor& c) { return const_cast<void*>(raw_data(static_cast<const Tensor&>(c))); }

/// "who: 'path'" — the prefix of every message about a file.
std::string in_file(const char* who, const std::string& path) { return str_cat(who, ": '", path, "'"); }

// --- tensors <-> records ---------------------------------------------------------

TensorRecord to_record(const std::string& name, const Tensor& t, const char* who, const char* kind) {
  TAPE_CHECK(t.defined(), who, ": ", kind, " ", name, " is an undefined tensor");
  TensorRecord r;
  r.name = name;
  r.dtype = dtype_code(t.dtype());
  r.shape = t.shape();
  const Tensor c = t.detach().contiguous();
  const auto* p = static_cast<const uint8_t*>(raw_data(c));
  r.data.assign(p, p + size_t(c.numel()) * dtype_size(c.dtype()));
  return r;
}

std::vector<TensorRecord> to_records(const nn::NamedTensors& named, const char* who, const char* kind) {
  std::vector<TensorRecord> out;
  out.reserve(named.size());
  for (const auto& [name, t] : named) out.push_back(to_record(name, t, who, kind));
  return out;
}

/// Checks a record (dtype code, shape, byte count) and builds a fresh tensor from it.
Tensor from_record(const TensorRecord& r, const std::string& where, const char* kind) {
  Dtype d{};
  TAPE_CHECK(dtype_from_code(r.dtype, d), where, ": ", kind, " ", r.name, " has unknown dtype code ", r.dtype);
  int64_t numel = 1;
  for (int64_t s : r.shape) {
    TAPE_CHECK(s >= 0 && (s == 0 || numel <= std::numeric_limits<int64_t>::max() / 8 / s), where, ": ", kind,
               " ", r.name, " has invalid shape ", r.shape);
    numel *= s;
  }
  const size_t want = size_t(numel) * dtype_size(d);
  TAPE_CHECK(r.data.size() == want, where, ": ", kind, " ", r.name, " of shape ", r.shape, " (", dtype_name(d),
             ") has ", r.data.size(), " bytes of data, expected ", want);
  Tensor t = Tensor::empty(r.shape, d);
  if (want > 0) std::memcpy(raw_data(t), r.data.data(), want);
  return t;
}

// --- writing -----------------------------------------------------------------------

std::string encode(const Payload& p) {
  std::ostringstream os(std::ios::out | std::ios::binary);
  {
    boost::archive::binary_oarchive ar(os);
    ar << p;
  }
  return std::move(os).str();
}

std::string make_header(const std::string& payload) {
  std::string h(kMagic, sizeof kMagic);
  put_le(h, kCheckpointFormatVersion, 4);
  put_le(h, kHeaderSize, 4);
  put_le(h, payload.size(), 8);
  put_le(h, payload_checksum(kCheckpointFormatVersion, payload.data(), payload.size()), 8);
  return h;
}

void write_payload(const std::string& path, const Payload& p, const char* who) {
  std::string payload;
  try {
    payload = encode(p);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(str_cat(who, ": cannot write '", path, "': encoding failed: ", e.what()));
  }
  const std::string header = make_header(payload);
  write_file_atomically(path, {header, payload}, who);
}

Payload module_payload(const nn::Module& module, const char* who) {
  Payload p;
  p.parameters = to_records(module.named_parameters(), who, "parameter");
  p.buffers = to_records(module.named_buffers(), who, "buffer");
  return p;
}

// --- reading -----------------------------------------------------------------------

/// A read-only streambuf over memory, so Boost decodes the payload without a copy.
class MemoryBuf : public std::streambuf {
 public:
  MemoryBuf(const char* p, size_t n) {
    char* b = const_cast<char*>(p);
    setg(b, b, b + n);
  }
  size_t remaining() const { return size_t(egptr() - gptr()); }
  size_t consumed() const { return size_t(gptr() - eback()); }

 protected:
  // Reading past the end throws instead of returning EOF: Boost's header reader
  // takes sbumpc()'s EOF (-1) as a library version and asserts on it.
  int_type underflow() override {
    throw std::runtime_error(str_cat("the payload ends early, at byte ", consumed()));
  }
};

// Note: bounded decoding. Boost's binary archive reads a length and then resizes:
// a std::string's length (basic_binary_iprimitive::load) and a collection's count
// (vector::resize/reserve), so a 48-byte payload with a valid checksum could ask
// for tens of gigabytes before the stream runs dry. This archive is
// binary_iarchive with those two reads overridden: every length is checked
// against the bytes that remain in the payload (times the smallest encoding of
// one item, announced by expect_item_bytes) before Boost allocates anything. The
// byte format is exactly binary_iarchive's, so files written by binary_oarchive
// read unchanged. It reads its header only once its own members exist (no_header,
// then init), because the header's signature string goes through load() below.
class BoundedIArchive
    : public boost::archive::binary_iarchive_impl<BoundedIArchive, char, std::char_traits<char>> {
  using Base = boost::archive::binary_iarchive_impl<BoundedIArchive, char, std::char_traits<char>>;
  using Primitive = boost::archive::basic_binary_iprimitive<BoundedIArchive, char, std::char_traits<char>>;
  friend class boost::archive::detail::interface_iarchive<BoundedIArchive>;
  friend class boost::archive::basic_binary_iarchive<BoundedIArchive>;
  friend class boost::archive::basic_binary_iprimitive<BoundedIArchive, char, std::char_traits<char>>;
  friend class boost::archive::load_access;

 public:
  explicit BoundedIArchive(MemoryBuf& buf) : Base(buf, boost::archive::no_header), buf_(buf) { init(0); }
  void expect_item_bytes(size_t bytes) { item_bytes_ = bytes; }

 protected:
  template <class T>
  void load_override(T& t) {
    Base::load_override(t);
  }
  void load_override(boost::serialization::collection_size_type& count) {
    Base::load_override(count);
    check(size_t(count), std::exchange(item_bytes_, size_t(1)), "a collection count");
  }
  using Primitive::load;
  void load(std::string& s) {
    std::size_t n = 0;
    Primitive::load(n);
    check(n, 1, "a string length");
    s.resize(n);
    if (n > 0) load_binary(s.data(), n);
  }

 private:
  void check(size_t count, size_t item_bytes, const char* what) const {
    const size_t left = buf_.remaining();
    TAPE_CHECK(count <= left / item_bytes, what, " of ", count, " at payload byte ",
               buf_.consumed(), " exceeds the ", left,
               " bytes that remain");
  }
  MemoryBuf& buf_;
  size_t item_bytes_ = 1;
};

void expect_item_bytes(BoundedIArchive& ar, size_t bytes) { ar.expect_item_bytes(bytes); }

}  // namespace
}  // namespace tape

// Like binary_iarchive: vectors of plain values are one count and one block of bytes
// (without this, Boost would expect the element-by-element layout and misread files).
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(tape::BoundedIArchive)

namespace tape {
namespace {

/// Reads and fully validates a checkpoint file; returns its decoded payload.
Payload read_payload(const std::string& path, const char* who) {
  const std::string bytes = read_regular_file(path, str_cat(who, ": cannot open '", path, "'"), kMaxCheckpointBytes);
  const std::string where = in_file(who, path);
  const size_t n = bytes.size();

  const size_t magic_len = std::min(n, sizeof kMagic);
  TAPE_CHECK(std::memcmp(bytes.data(), kMagic, magic_len) == 0 || n == 0, where,
             " is not a tape checkpoint (its first bytes are not \"TAPECKPT\")");
  TAPE_CHECK(n >= kHeaderSize, where, " is truncated (file has ", n, " bytes, the header alone is ", kHeaderSize,
             ")");
  const auto version = uint32_t(get_le(bytes.data() + 8, 4));
  const auto header_size = uint32_t(get_le(bytes.data() + 12, 4));
  const uint64_t payload_size = get_le(bytes.data() + 16, 8);
  const uint64_t checksum = get_le(bytes.data() + 24, 8);
  TAPE_CHECK(version <= kCheckpointFormatVersion, where, " has format version ", version,
             ", newer than this build of tape reads (up to ", kCheckpointFormatVersion, ")");
  TAPE_CHECK(version >= 1 && header_size == kHeaderSize, where, " has an invalid header (format version ", version,
             ", header size ", header_size, ")");
  const uint64_t have = n - kHeaderSize;
  TAPE_CHECK(have >= payload_size, where, " is truncated (header says ", payload_size, " bytes of payload, file has ",
             have, ")");
  TAPE_CHECK(have == payload_size, where, " is corrupted (header says ", payload_size, " bytes of payload, file has ",
             have, ")");
  const char* data = bytes.data() + kHeaderSize;
  const uint64_t actual = payload_checksum(version, data, size_t(payload_size));
  TAPE_CHECK(actual == checksum, where, " is corrupted (payload checksum ", hex(actual), " does not match ",
             hex(checksum), " in the header)");

  Payload p;
  MemoryBuf buf(data, size_t(payload_size));
  try {
    BoundedIArchive ar(buf);
    ar >> p;
  } catch (const std::exception& e) {
    throw Error(str_cat(where, " has a valid checksum but its payload cannot be decoded (", e.what(), ")"));
  }
  TAPE_CHECK(buf.in_avail() == 0, where, " has ", buf.in_avail(), " unread bytes after its payload");
  TAPE_CHECK(p.epoch >= 0 && p.epoch <= kMaxCheckpointEpoch, where, " has an absurd epoch count ", p.epoch,
             " (expected 0..", kMaxCheckpointEpoch, ")");
  TAPE_CHECK(!p.has_rng || p.rng_state.size() == 4, where, ": RNG state has ", p.rng_state.size(),
             " words, expected 4");
  return p;
}

/// Pairs each model tensor with its (validated) counterpart from the file. Checks in
/// model order, then looks for extras in file order; throws on the first problem.
void match_tensors(const nn::NamedTensors& model, const std::vector<TensorRecord>& file, const std::string& where,
                   const char* kind, std::vector<std::pair<Tensor, Tensor>>& copies) {
  std::map<std::string, const TensorRecord*> by_name;
  for (const auto& r : file)
    TAPE_CHECK(by_name.emplace(r.name, &r).second, where, ": the file lists ", kind, " ", r.name, " twice");
  std::set<std::string> names;
  for (const auto& [name, dst] : model) {
    names.insert(name);
    auto it = by_name.find(name);
    TAPE_CHECK(it != by_name.end(), where, ": ", kind, " ", name, " of the model is missing from the file");
    Tensor src = from_record(*it->second, where, kind);
    TAPE_CHECK(src.shape() == dst.shape(), where, ": ", kind, " ", name, " has shape ", src.shape(),
               " in the file but ", dst.shape(), " in the model");
    TAPE_CHECK(src.dtype() == dst.dtype(), where, ": ", kind, " ", name, " has dtype ", dtype_name(src.dtype()),
               " in the file but ", dtype_name(dst.dtype()), " in the model");
    copies.emplace_back(dst, std::move(src));
  }
  for (const auto& r : file)
    TAPE_CHECK(names.count(r.name), where, ": the file has ", kind, " ", r.name, ", which the model does not have");
}

/// Validates the module part of a payload; returns (destination, source) pairs.
std::vector<std::pair<Tensor, Tensor>> match_module(const nn::Module& module, const Payload& p,
                                                    const std::string& where) {
  std::vector<std::pair<Tensor, Tensor>> copies;
  match_tensors(module.named_parameters(), p.parameters, where, "parameter", copies);
  match_tensors(module.named_buffers(), p.buffers, where, "buffer", copies);
  return copies;
}

// Note: loading copies into the module's existing tensors (copy_ under
// NoGradGuard) instead of replacing them, so an optimizer or anything else holding
// the same handles sees the loaded values. The copies happen only after the whole
// file (header, checksum, every name/shape/dtype, the optimizer state) validated.
void apply_copies(const std::vector<std::pair<Tensor, Tensor>>& copies) {
  NoGradGuard no_grad;
  for (const auto& [dst, src] : copies) {
    Tensor d = dst;
    d.copy_(src);
  }
}

}  // namespace

// --- public API ----------------------------------------------------------------------

void save(const nn::Module& module, const std::string& path) {
  write_payload(path, module_payload(module, "save"), "save");
}

void load(nn::Module& module, const std::string& path) {
  const Payload p = read_payload(path, "load");
  apply_copies(match_module(module, p, in_file("load", path)));
}

void save_checkpoint(const std::string& path, const nn::Module& module, const optim::Optimizer* opt,
                     const CheckpointMeta& meta) {
  const char* who = "save_checkpoint";
  Payload p = module_payload(module, who);
  p.model_spec = meta.model_spec;
  p.epoch = meta.epoch;
  p.meta_scalars = meta.scalars;
  p.meta_strings = meta.strings;
  if (opt != nullptr) {
    const optim::OptimizerState st = opt->state_dict();
    p.has_optimizer = 1;
    p.optimizer_type = opt->type_name();
    p.optimizer_scalars = st.scalars;
    for (const auto& [name, t] : st.tensors) p.optimizer_tensors.push_back(to_record(name, t, who, "optimizer state"));
  }
  const Generator::State rng = default_generator().state();
  p.has_rng = 1;
  p.rng_state.assign(rng.s.begin(), rng.s.end());
  p.rng_has_spare = rng.has_spare ? 1 : 0;
  p.rng_spare = rng.spare;
  write_payload(path, p, who);
}

CheckpointMeta load_checkpoint(const std::string& path, nn::Module& module, optim::Optimizer* opt) {
  const char* who = "load_checkpoint";
  const std::string where = in_file(who, path);
  const Payload p = read_payload(path, who);
  const auto copies = match_module(module, p, where);

  // The optimizer validates its whole state before changing anything, so loading
  // it before the module keeps "all or nothing".
  if (opt != nullptr && p.has_optimizer) {
    TAPE_CHECK(p.optimizer_type == opt->type_name(), where, ": the file holds ", p.optimizer_type,
               " optimizer state but the optimizer is ", opt->type_name());
    optim::OptimizerState st;
    st.scalars = p.optimizer_scalars;
    for (const auto& r : p.optimizer_tensors) st.tensors[r.name] = from_record(r, where, "optimizer state");
    try {
      opt->load_state_dict(st);
    } catch (const Error& e) {
      throw Error(str_cat(where, ": ", e.what()));
    }
  }
  apply_copies(copies);
  if (p.has_rng) {
    Generator::State s;
    for (size_t i = 0; i < 4; ++i) s.s[i] = p.rng_state[i];
    s.has_spare = p.rng_has_spare != 0;
    s.spare = p.rng_spare;
    default_generator().set_state(s);
  }
  return CheckpointMeta{p.model_spec, p.epoch, p.meta_scalars, p.meta_strings};
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  const Payload p = read_payload(path, "read_checkpoint_meta");
  return CheckpointMeta{p.model_spec, p.epoch, p.meta_scalars, p.meta_strings};
}

}  // namespace tape
