// libFuzzer harness: the checkpoint loader, as tape-graph and --resume use it:
// read_checkpoint_meta, ModelSpec::parse of the spec it names, then
// load_checkpoint into a small MLP (mlp:784-1-10) with an Adam optimizer.
//
// Built twice (tests/fuzz/meson.build):
//   fuzz_checkpoint          the input is the whole file (header included);
//   fuzz_checkpoint_payload  the input is the payload only: the harness puts a
//                            correct 32-byte header (magic, version 2, size,
//                            XXH3-64 checksum) in front, so every input reaches
//                            the Boost.Serialization decoder and the checks
//                            behind it.
#include <tape/tape.hpp>

#ifdef TAPE_FUZZ_WRAP_HEADER
#define XXH_INLINE_ALL  // header-only xxHash: the harness needs no link dependency
#include <xxhash.h>
#endif

#include "fuzz_common.hpp"
#include "models.hpp"

namespace {

#ifdef TAPE_FUZZ_WRAP_HEADER
// The header of lib/tape/io/checkpoint.cpp (make_header), written the same way.
void put_le(uint8_t* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = uint8_t(v >> (8 * i));
}
#endif

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tape;
#ifdef TAPE_FUZZ_WRAP_HEADER
  static tape_fuzz::ScratchFile file("checkpoint_payload");
  uint8_t header[32] = {'T', 'A', 'P', 'E', 'C', 'K', 'P', 'T'};
  put_le(header + 8, kCheckpointFormatVersion, 4);
  put_le(header + 12, sizeof header, 4);
  put_le(header + 16, size, 8);
  put_le(header + 24, XXH3_64bits(data, size), 8);
  const std::string& path = file.write(tape_fuzz::bytes(header, sizeof header), tape_fuzz::bytes(data, size));
#else
  static tape_fuzz::ScratchFile file("checkpoint");
  const std::string& path = file.write(tape_fuzz::bytes(data, size));
#endif
  try {
    const CheckpointMeta meta = read_checkpoint_meta(path);
    try {
      (void)examples::ModelSpec::parse(meta.model_spec);
    } catch (const Error&) {
    }
  } catch (const Error&) {
  }
  manual_seed(0);
  auto model = examples::build_model(examples::ModelSpec::parse("mlp:784-1-10:relu:dropout=0"));
  optim::Adam opt(model->parameters());
  try {
    (void)load_checkpoint(path, *model, &opt);
  } catch (const Error&) {
  }
  return 0;
}
