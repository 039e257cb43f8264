#pragma once
// Shared by the libFuzzer harnesses (docs/fuzzing.md). tape's loaders take a
// path, so each harness writes the input to one scratch file per process and
// calls the public loader on it. A tape::Error is the expected answer to a bad
// file; anything else — a crash, a sanitizer report, a leak, an exception of
// another type (it reaches std::terminate), a timeout or running out of
// memory — is what the fuzzer is looking for.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

namespace tape_fuzz {

/// The scratch file: $TAPE_FUZZ_TMPDIR, else /dev/shm, else $TMPDIR, else /tmp;
/// named after the harness and the process, removed at a normal exit.
class ScratchFile {
 public:
  explicit ScratchFile(const char* name) {
    std::string dir;
    if (const char* d = std::getenv("TAPE_FUZZ_TMPDIR"); d && *d) dir = d;
    else if (::access("/dev/shm", W_OK) == 0) dir = "/dev/shm";
    else if (const char* t = std::getenv("TMPDIR"); t && *t) dir = t;
    else dir = "/tmp";
    path_ = dir + "/tape-fuzz-" + name + "-" + std::to_string(long(::getpid()));
  }
  ~ScratchFile() { ::unlink(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  /// Replaces the file's contents with `parts` (written one after another); returns the path.
  template <class... Parts>
  const std::string& write(const Parts&... parts) {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) die("cannot create");
    (put(fd, parts.first, parts.second), ...);
    if (::close(fd) != 0) die("cannot close");
    return path_;
  }

 private:
  void put(int fd, const uint8_t* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd, p, n);
      if (w < 0) die("cannot write");
      p += w;
      n -= size_t(w);
    }
  }
  [[noreturn]] void die(const char* what) {
    std::perror((std::string("tape fuzz harness: ") + what + " " + path_).c_str());
    std::abort();
  }
  std::string path_;
};

/// (pointer, size) of a fuzzer input, for ScratchFile::write.
inline std::pair<const uint8_t*, size_t> bytes(const uint8_t* p, size_t n) { return {p, n}; }

}  // namespace tape_fuzz
