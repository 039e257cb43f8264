#pragma once
/// \file Reading input files and writing output files safely: every loader reads
/// through read_regular_file (no directories, FIFOs or devices; a size limit), and
/// every output (checkpoints, PNG, CSV, JSON, DOT) goes through write_file_atomically
/// (temporary file, fsync, rename — the old file survives any failure).
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace tape {

/// Reads the whole of `path`, which must be a regular file of at most `max_bytes`.
/// Never blocks on a FIFO and never reads a device. Errors are one-line
/// tape::Errors starting with `context`, e.g. context "load_image: cannot read 'a.png'"
/// gives "load_image: cannot read 'a.png': it is a directory, not a file".
std::string read_regular_file(const std::string& path, const std::string& context, uint64_t max_bytes);

/// Writes `parts` (concatenated) to "<path>.tmp.<pid>.<n>" in the same directory,
/// fsyncs and closes it, then renames it over `path` and fsyncs the directory.
/// On any failure the temp file is removed, `path` is left as it was and a
/// tape::Error is thrown: "<who>: cannot write 'path': writing 'path.tmp.42' failed: File too large".
void write_file_atomically(const std::string& path, std::initializer_list<std::string_view> parts,
                           const char* who);
inline void write_file_atomically(const std::string& path, std::string_view data, const char* who) {
  write_file_atomically(path, {data}, who);
}

/// Fails early, before any work, if `path` could not be written later: it is a
/// directory, or a file cannot be created next to it (the check creates and
/// removes "<path>.tmp.<pid>.<n>"). Same messages as write_file_atomically.
void check_writable(const std::string& path, const char* who);

}  // namespace tape
