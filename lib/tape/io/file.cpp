#include "tape/io/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "tape/core/error.hpp"

namespace tape {
namespace {

/// "a directory", "a FIFO", ... for a stat mode that is not a regular file.
const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

/// Removes the temporary file unless the write was committed.
class TempFile {
 public:
  TempFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  int fd() const { return fd_; }
  /// Closes the descriptor; returns false (errno set) on failure.
  bool close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }
  void commit() { committed_ = true; }

 private:
  std::string path_;
  int fd_;
  bool committed_ = false;
};

// Note: "<path>.tmp.<pid>.<n>", n counting this process's writes, so two threads
// writing one path at once never share a temporary file (O_EXCL checks it).
std::string temp_name(const std::string& path) {
  static std::atomic<uint64_t> writes{0};
  return str_cat(path, ".tmp.", long(::getpid()), ".", ++writes);
}

[[noreturn]] void fail_step(const char* who, const std::string& path, const char* step, const std::string& tmp) {
  const int err = errno;
  throw Error(str_cat(who, ": cannot write '", path, "': ", step, " '", tmp, "' failed: ", std::strerror(err)));
}

/// Refuses a target that is a directory (the final rename would fail, after all the work).
void check_not_directory(const std::string& path, const char* who) {
  TAPE_CHECK(!path.empty(), who, ": cannot write to an empty path");
  struct stat st {};
  TAPE_CHECK(::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode), who, ": cannot write '", path,
             "': it is a directory");
}

}  // namespace

std::string read_regular_file(const std::string& path, const std::string& context, uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer; fstat then rejects it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    throw Error(str_cat(context, ": ", std::strerror(err)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    throw Error(str_cat(context, ": ", std::strerror(err)));
  }
  TAPE_CHECK(S_ISREG(st.st_mode), context, ": it is ", kind_of(st.st_mode), ", not a file");
  const auto size = uint64_t(st.st_size);
  TAPE_CHECK(size <= max_bytes, context, ": it has ", size, " bytes, more than the limit of ", max_bytes);
  std::string bytes;
  try {
    bytes.resize(size_t(size));
  } catch (const std::exception&) {
    throw Error(str_cat(context, ": cannot allocate ", size, " bytes to read it"));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      throw Error(str_cat(context, ": ", std::strerror(err)));
    }
    TAPE_CHECK(n > 0, context, ": the file shrank while being read (", done, " of ", size, " bytes)");
    done += size_t(n);
  }
  return bytes;
}

// Note: atomic output. The bytes go to "<path>.tmp.<pid>.<n>" in the same directory,
// are fsync'ed, and the temp file is rename()d over the real name, which POSIX
// makes atomic: a reader (or a crash, or a full disk) sees either the old file or
// the complete new one, never a half-written file under the real name. Callers
// build the whole content in memory first, so failures while computing it never
// touch the disk; any failure here unlinks the temp file before throwing. The
// parent directory is fsync'ed after the rename (best effort) so the new name
// itself survives a power loss. Writes use write(2) directly: no stdio buffer
// can hide an error until a close nobody checks.
void write_file_atomically(const std::string& path, std::initializer_list<std::string_view> parts,
                           const char* who) {
  TAPE_CHECK(!path.empty(), who, ": cannot write to an empty path");
  const std::string tmp = temp_name(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) fail_step(who, path, "creating", tmp);
  TempFile file(tmp, fd);
  for (std::string_view part : parts) {
    const char* p = part.data();
    size_t left = part.size();
    while (left > 0) {
      const ssize_t n = ::write(file.fd(), p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail_step(who, path, "writing", tmp);
      }
      p += n;
      left -= size_t(n);
    }
  }
  if (::fsync(file.fd()) != 0) fail_step(who, path, "syncing", tmp);
  if (!file.close()) fail_step(who, path, "closing", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    throw Error(str_cat(who, ": cannot write '", path, "': renaming '", tmp, "' over it failed: ", std::strerror(err)));
  }
  file.commit();
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void check_writable(const std::string& path, const char* who) {
  check_not_directory(path, who);
  const std::string tmp = temp_name(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) fail_step(who, path, "creating", tmp);
  ::close(fd);
  ::unlink(tmp.c_str());
}

}  // namespace tape
