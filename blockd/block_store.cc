#include "blockd/block_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cstring>
#include <mutex>

#include "common/block_version.h"
#include "common/crc.h"
#include "common/log.h"
#include "common/wire.h"

namespace ringfs::blockd {

namespace {

constexpr uint32_t kMagic = 0x42534652;  // "RFSB"
constexpr uint32_t kFormatVersion = 2;
constexpr off_t kDataStart = 4096;  // the header area; data follows
constexpr uint32_t kChunk = 64 << 10;
constexpr uint32_t kChunks = wire::kBlockSize / kChunk;
// A nonzero seed, so a run of zeros does not sum to zero.
constexpr uint32_t kCrcSeed = 0xFFFFFFFF;

// On-disk format, version 2: a 4096-byte header area, then the block's data
// (file offset 4096 + block offset; holes read as zeros). The header area
// starts with the struct below, in host byte order (little-endian everywhere
// we run), written by one pwrite of under 512 bytes so the disk writes it
// whole or not at all. What keeps a crash from serving wrong bytes:
//  - a new file gets its header before any data, so an empty file is a block
//    whose creation died: it holds nothing;
//  - a write lands its data first and its header second, so a crash between
//    leaves old checksums over new bytes: an EIO, never wrong data;
//  - bytes past `length` are never trusted: the next extending write cuts them.
}  // namespace

struct BlockHeader {
  uint32_t magic = kMagic;
  uint32_t format = kFormatVersion;
  uint32_t length = 0;  // bytes held: the highest end written
  uint32_t chunk_bytes = kChunk;
  uint64_t ino = 0;
  uint64_t index = 0;
  // crc[c] covers data [c * kChunk, min((c + 1) * kChunk, length)); 0 past length.
  uint32_t crc[kChunks] = {};
  // The block's version (common/block_version.h): set by every write, cut
  // and replacement, each accepted only on top of the version it names.
  wire::BlockVersion version;
  uint32_t reserved = 0;
  uint32_t header_crc = 0;  // of every byte above
};

namespace {
using Header = BlockHeader;
static_assert(sizeof(Header) <= 512);
static_assert(wire::kBlockSize % kChunk == 0);

enum class HeaderState { kEmpty, kValid, kCorrupt };

char g_zeros[kChunk];

uint32_t Crc(const char* p, size_t n, uint32_t crc = kCrcSeed) { return Crc32c(p, n, crc); }

uint32_t CrcZeros(size_t n, uint32_t crc) {
  for (size_t k; n > 0; n -= k) {
    k = std::min<size_t>(n, kChunk);
    crc = Crc(g_zeros, k, crc);
  }
  return crc;
}

uint32_t HeaderCrc(const Header& h) {
  return Crc(reinterpret_cast<const char*>(&h), offsetof(Header, header_crc));
}

uint32_t DivCeil(uint64_t a, uint32_t b) { return static_cast<uint32_t>((a + b - 1) / b); }

std::string BlockName(uint64_t ino, uint64_t index) {
  return std::to_string(ino) + "/" + std::to_string(index);
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    int saved = errno;
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
    errno = saved;
  }

 private:
  int fd_ = -1;
};

DiskIo g_real_disk;

Status WriteAll(DiskIo* io, int fd, const char* p, size_t n, off_t off) {
  while (n > 0) {
    ssize_t w = io->PWrite(fd, p, n, off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::Error(errno, "pwrite");
    if (w == 0) return Status::Error(ENOSPC, "pwrite wrote nothing");
    p += w, n -= w, off += w;
  }
  return Status::OK();
}

// Reads up to n bytes; bytes past the end of the file read as zeros.
Status ReadAll(DiskIo* io, int fd, char* p, size_t n, off_t off) {
  while (n > 0) {
    ssize_t r = io->PRead(fd, p, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Error(errno, "pread");
    if (r == 0) break;
    p += r, n -= r, off += r;
  }
  memset(p, 0, n);
  return Status::OK();
}

Header EmptyHeader(uint64_t ino, uint64_t index) {
  Header h;
  h.ino = ino;
  h.index = index;
  return h;
}

// An empty file is a block whose creation crashed before its first header:
// nothing in it was ever acknowledged, so it holds no bytes.
HeaderState LoadHeader(DiskIo* io, int fd, uint64_t ino, uint64_t index, Header* h) {
  ssize_t n;
  do {
    n = io->PRead(fd, h, sizeof *h, 0);
  } while (n < 0 && errno == EINTR);
  if (n == 0) {
    *h = EmptyHeader(ino, index);
    return HeaderState::kEmpty;
  }
  if (n != sizeof *h || h->magic != kMagic || h->format != kFormatVersion ||
      h->chunk_bytes != kChunk || h->length > wire::kBlockSize || h->ino != ino ||
      h->index != index || h->header_crc != HeaderCrc(*h)) {
    return HeaderState::kCorrupt;
  }
  return HeaderState::kValid;
}

Status StoreHeader(DiskIo* io, int fd, Header* h) {
  h->header_crc = HeaderCrc(*h);
  return WriteAll(io, fd, reinterpret_cast<const char*>(h), sizeof *h, 0);
}

// Bytes the file could hold past its header; what a corrupt block counts as.
uint32_t FileDataBytes(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= kDataStart) return 0;
  return static_cast<uint32_t>(std::min<off_t>(st.st_size - kDataStart, wire::kBlockSize));
}

// Loads the header of a block about to be rewritten; `counted` gets the bytes
// the store counts for it now (for a corrupt block, whatever the file holds).
HeaderState LoadForRewrite(DiskIo* io, int fd, uint64_t ino, uint64_t index, Header* h,
                           uint32_t* counted) {
  const HeaderState state = LoadHeader(io, fd, ino, index, h);
  *counted = state == HeaderState::kValid     ? h->length
             : state == HeaderState::kCorrupt ? FileDataBytes(fd)
                                              : 0;
  return state;
}

// Reads data [from * kChunk, min(to * kChunk, length)) into buf and checks
// every chunk against the header.
Status ReadVerified(DiskIo* io, int fd, const Header& h, uint32_t from, uint32_t to, char* buf) {
  const uint32_t begin = from * kChunk, end = std::min(to * kChunk, h.length);
  RETURN_IF_ERROR(ReadAll(io, fd, buf, end - begin, kDataStart + begin));
  for (uint32_t c = from; c < to; c++) {
    const uint32_t cs = c * kChunk, ce = std::min(cs + kChunk, h.length);
    if (Crc(buf + (cs - begin), ce - cs) != h.crc[c]) {
      LOG_ERROR("block %" PRIu64 "/%" PRIu64 ": checksum mismatch in chunk %u", h.ino, h.index, c);
      return Status::Error(EIO, "checksum mismatch in block " + BlockName(h.ino, h.index));
    }
  }
  return Status::OK();
}

// Checksums after writing `data` at `offset`. A chunk whose old bytes all lie
// before the write extends its old sum; one that keeps old bytes after the
// write's start is read back and verified first, so corruption is never
// summed over as good data.
Status NewCrcs(DiskIo* io, int fd, const Header& old, uint32_t offset, std::string_view data,
               Header* next) {
  const uint32_t end = offset + static_cast<uint32_t>(data.size());
  const uint32_t old_len = old.length, new_len = std::max(old_len, end);
  const uint32_t first = offset / kChunk, last = (end - 1) / kChunk;
  next->length = new_len;
  // Chunks between the old end and the write now hold (or end in) zeros.
  for (uint32_t c = old_len / kChunk; c < first; c++) {
    const uint32_t cs = c * kChunk;
    const uint32_t base = old_len > cs ? old.crc[c] : kCrcSeed;
    next->crc[c] = CrcZeros(kChunk - (std::max(old_len, cs) - cs), base);
  }
  std::unique_ptr<char[]> scratch;
  for (uint32_t c = first; c <= last; c++) {
    const uint32_t cs = c * kChunk;
    const uint32_t ws = std::max(offset, cs), we = std::min(end, cs + kChunk);
    const uint32_t old_end = std::clamp(old_len, cs, cs + kChunk);  // old bytes: [cs, old_end)
    const char* src = data.data() + (ws - offset);
    if (ws == cs && we >= old_end) {
      next->crc[c] = Crc(src, we - ws);
    } else if (old_end <= ws) {
      const uint32_t base = old_end > cs ? old.crc[c] : kCrcSeed;
      next->crc[c] = Crc(src, we - ws, CrcZeros(ws - old_end, base));
    } else {
      if (!scratch) scratch.reset(new char[kChunk]);
      RETURN_IF_ERROR(ReadVerified(io, fd, old, c, c + 1, scratch.get()));
      memcpy(scratch.get() + (ws - cs), src, we - ws);
      next->crc[c] = Crc(scratch.get(), std::max(old_end, we) - cs);
    }
  }
  return Status::OK();
}

bool ParseName(const std::string& name, int base, uint64_t* out) {
  const char* e = name.data() + name.size();
  auto [p, ec] = std::from_chars(name.data(), e, *out, base);
  if (ec != std::errc() || p != e || name.empty()) return false;
  // Only the canonical spelling names a block ("07" is not block 7).
  char canon[32];
  snprintf(canon, sizeof canon, base == 16 ? "%" PRIx64 : "%" PRIu64, *out);
  return name == canon;
}

Status ListDir(const std::string& path, std::vector<std::string>* names) {
  names->clear();
  DIR* d = opendir(path.c_str());
  if (!d) return Status::Error(errno, "opendir " + path);
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names->push_back(e->d_name);
  }
  closedir(d);
  return Status::OK();
}

Status MakeDir(const std::string& path, bool* made) {
  *made = mkdir(path.c_str(), 0755) == 0;
  if (!*made && errno != EEXIST) return Status::Error(errno, "mkdir " + path);
  return Status::OK();
}

Status FsyncPath(const std::string& path) {
  Fd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.ok() || fsync(fd.get()) != 0) return Status::Error(errno, "fsync " + path);
  return Status::OK();
}

}  // namespace

// ------------------------------------------------------------------- DiskIo

ssize_t DiskIo::PRead(int fd, void* buf, size_t n, off_t off) { return pread(fd, buf, n, off); }
ssize_t DiskIo::PWrite(int fd, const void* buf, size_t n, off_t off) {
  return pwrite(fd, buf, n, off);
}
int DiskIo::Fallocate(int fd, off_t off, off_t len) {
  return fallocate(fd, FALLOC_FL_KEEP_SIZE, off, len);
}
int DiskIo::Fdatasync(int fd) { return fdatasync(fd); }

// --------------------------------------------------------------- BlockStore

struct BlockStore::Opened {
  Fd fd;
  std::string path;
  bool created = false, made_inode_dir = false, made_shard = false;
};

BlockStore::BlockStore(std::string dir, BlockStoreOptions opts, int dir_fd)
    : dir_(std::move(dir)), opts_(opts), io_(opts.io ? opts.io : &g_real_disk), dir_fd_(dir_fd) {}

BlockStore::~BlockStore() { close(dir_fd_); }

Result<std::unique_ptr<BlockStore>> BlockStore::Open(const std::string& dir,
                                                     BlockStoreOptions opts) {
  bool made;
  RETURN_IF_ERROR(MakeDir(dir, &made));
  RETURN_IF_ERROR(MakeDir(dir + "/blocks", &made));
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Error(errno, "open " + dir);
  std::unique_ptr<BlockStore> store(new BlockStore(dir, opts, fd));
  RETURN_IF_ERROR(store->Scan());
  return store;
}

Status BlockStore::Scan() {
  std::vector<std::string> shards, inodes;
  RETURN_IF_ERROR(ListDir(dir_ + "/blocks", &shards));
  int64_t used = 0, blocks = 0, corrupt = 0;
  for (const auto& shard : shards) {
    if (!ListDir(dir_ + "/blocks/" + shard, &inodes).ok()) continue;
    for (const auto& name : inodes) {
      uint64_t ino;
      if (!ParseName(name, 16, &ino)) continue;
      ASSIGN_OR_RETURN(std::vector<uint64_t> indices, ListLocked(ino));
      for (uint64_t index : indices) {
        Fd fd(open(BlockPath(ino, index).c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.ok()) {
          LOG_ERROR("block %s: open: %s", BlockName(ino, index).c_str(), strerror(errno));
          continue;
        }
        Header h;
        HeaderState hs = LoadHeader(io_, fd.get(), ino, index, &h);
        if (hs == HeaderState::kCorrupt) corrupt++;
        used += hs == HeaderState::kCorrupt ? FileDataBytes(fd.get()) : h.length;
        blocks++;
      }
    }
  }
  used_ = used;
  blocks_ = blocks;
  LOG_INFO("block store %s: %" PRId64 " blocks, %" PRId64 " bytes, %" PRId64 " corrupt headers",
           dir_.c_str(), blocks, used, corrupt);
  return Status::OK();
}

std::string BlockStore::InodeDir(uint64_t ino) const {
  char buf[48];
  snprintf(buf, sizeof buf, "/blocks/%02x/%" PRIx64, static_cast<unsigned>(ino & 0xff), ino);
  return dir_ + buf;
}

std::string BlockStore::BlockPath(uint64_t ino, uint64_t index) const {
  return InodeDir(ino) + "/" + std::to_string(index);
}

std::shared_mutex& BlockStore::InodeMu(uint64_t ino) {
  return inode_mu_[(ino * 0x9E3779B97F4A7C15ull >> 32) % kInodeStripes];
}

std::shared_mutex& BlockStore::BlockMu(uint64_t ino, uint64_t index) {
  uint64_t h = (ino * 0x9E3779B97F4A7C15ull) ^ (index * 0xC2B2AE3D27D4EB4Full);
  return block_mu_[(h ^ (h >> 29)) % kBlockStripes];
}

Status BlockStore::OpenForWrite(uint64_t ino, uint64_t index, Opened* out) {
  out->path = BlockPath(ino, index);
  out->fd.reset(open(out->path.c_str(), O_RDWR | O_CLOEXEC));
  if (out->fd.ok()) return Status::OK();
  if (errno != ENOENT) return Status::Error(errno, "open " + out->path);
  const std::string inode_dir = InodeDir(ino);
  RETURN_IF_ERROR(MakeDir(inode_dir.substr(0, inode_dir.rfind('/')), &out->made_shard));
  RETURN_IF_ERROR(MakeDir(inode_dir, &out->made_inode_dir));
  out->fd.reset(open(out->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out->fd.ok()) return Status::Error(errno, "create " + out->path);
  out->created = true;
  // The header goes first, so the file is never data without a header.
  Header h = EmptyHeader(ino, index);
  Status st = StoreHeader(io_, out->fd.get(), &h);
  if (!st.ok()) unlink(out->path.c_str());
  return st;
}

namespace {
// The version a header says the block holds; a missing, empty or corrupt
// block holds none.
wire::BlockVersion HeldVersion(HeaderState hs, const Header& h) {
  return hs == HeaderState::kValid ? h.version : wire::BlockVersion{};
}
}  // namespace

Status BlockStore::Write(uint64_t ino, uint64_t index, uint32_t offset, std::string_view data,
                         uint32_t flags, const WriteVersions* v, wire::BlockVersion* held) {
  if (offset > wire::kBlockSize || data.size() > wire::kBlockSize - offset)
    return Status::Error(EINVAL, "write past the end of a block");
  if (data.empty() && !v) return Status::OK();
  std::shared_lock inode_lock(InodeMu(ino));
  std::unique_lock block_lock(BlockMu(ino, index));
  Opened f;
  RETURN_IF_ERROR(OpenForWrite(ino, index, &f));
  const int fd = f.fd.get();
  Header old;
  uint32_t counted = 0;
  HeaderState hs = LoadForRewrite(io_, fd, ino, index, &old, &counted);
  wire::BlockVersion next = old.version;
  if (v) {
    const bool exists = !f.created && hs != HeaderState::kEmpty;
    const wire::BlockVersion stored = HeldVersion(hs, old);
    switch (blockver::CheckWrite(exists, stored, v->base)) {
      case blockver::WriteCheck::kRefuse:
        if (f.created) unlink(f.path.c_str());
        if (held) *held = stored;
        return Status::Error(ESTALE, "block " + BlockName(ino, index) + " is not at the write's base");
      case blockver::WriteCheck::kApplyFresh:
        if (hs == HeaderState::kCorrupt) old = EmptyHeader(ino, index);
        RETURN_IF_ERROR(Empty(f, &old, counted));
        counted = 0;
        hs = HeaderState::kValid;
        break;
      case blockver::WriteCheck::kApply:
        break;
    }
    next = v->next;
  }
  if (hs == HeaderState::kCorrupt) {
    if (offset != 0 || offset + data.size() < counted) {
      LOG_ERROR("block %s: corrupt header, write refused", BlockName(ino, index).c_str());
      return Status::Error(EIO, "corrupt header in block " + BlockName(ino, index));
    }
    old = EmptyHeader(ino, index);  // a write covering every old byte replaces the block
  }
  Status st = WriteData(f, old, counted, offset, data, next);
  if (!st.ok()) {
    if (f.created) unlink(f.path.c_str());
    return st;
  }
  if (held) *held = next;
  if (f.created) blocks_++;
  if (flags & wire::kBlockSyncNow) return SyncWritten(f, ino);
  if (opts_.early_writeback) {
    // Whole chunks only: a partial one is likely to be written again soon.
    const uint64_t end = offset + data.size();
    const uint64_t a = DivCeil(offset, kChunk) * uint64_t{kChunk}, b = end / kChunk * kChunk;
    if (b > a) sync_file_range(fd, kDataStart + a, b - a, SYNC_FILE_RANGE_WRITE);
  }
  return Status::OK();
}

// Makes the block hold no bytes (header first, as CutBlock does), keeping
// its version until the write that follows sets the next one.
Status BlockStore::Empty(const Opened& f, BlockHeader* h, uint32_t counted) {
  Header empty = EmptyHeader(h->ino, h->index);
  empty.version = h->version;
  RETURN_IF_ERROR(StoreHeader(io_, f.fd.get(), &empty));
  if (ftruncate(f.fd.get(), kDataStart) != 0) return Status::Error(errno, "ftruncate " + f.path);
  used_ -= counted;
  *h = empty;
  return Status::OK();
}

// Writes `data` at `offset` over a block described by `old` (whose bytes
// the store counts as `counted`), leaving it at `version`.
Status BlockStore::WriteData(const Opened& f, const BlockHeader& old, uint32_t counted, uint32_t offset,
                             std::string_view data, const wire::BlockVersion& version) {
  const int fd = f.fd.get();
  Header next = old;
  next.version = version;
  if (data.empty()) {
    RETURN_IF_ERROR(StoreHeader(io_, fd, &next));
    used_ += static_cast<int64_t>(next.length) - counted;
    return Status::OK();
  }
  const uint32_t end = offset + static_cast<uint32_t>(data.size());
  struct stat sb;
  if (fstat(fd, &sb) != 0) return Status::Error(errno, "fstat " + f.path);
  // Bytes past `length` are left by a write that died before its header or by
  // a replaced block: cut them, so a gap left by this write reads as zeros.
  if (sb.st_size > kDataStart + old.length) {
    if (ftruncate(fd, kDataStart + old.length) != 0) return Status::Error(errno, "ftruncate");
    sb.st_size = kDataStart + old.length;
  }
  // Allocate first: a full disk then fails before any byte changes, not
  // halfway through an overwrite of bytes the old checksums describe.
  if (end > old.length || sb.st_blocks * 512 < sb.st_size) {
    if (io_->Fallocate(fd, kDataStart + offset, data.size()) != 0 && errno != EOPNOTSUPP)
      return Status::Error(errno, "fallocate " + f.path);
  }
  RETURN_IF_ERROR(NewCrcs(io_, fd, old, offset, data, &next));
  RETURN_IF_ERROR(WriteAll(io_, fd, data.data(), data.size(), kDataStart + offset));
  RETURN_IF_ERROR(StoreHeader(io_, fd, &next));
  used_ += static_cast<int64_t>(next.length) - counted;
  return Status::OK();
}

Status BlockStore::Replace(uint64_t ino, uint64_t index, std::string_view data,
                           const WriteVersions& v, wire::BlockVersion* held) {
  if (data.size() > wire::kBlockSize) return Status::Error(EINVAL, "replacement larger than a block");
  std::shared_lock inode_lock(InodeMu(ino));
  std::unique_lock block_lock(BlockMu(ino, index));
  Opened f;
  RETURN_IF_ERROR(OpenForWrite(ino, index, &f));
  Header old;
  uint32_t counted = 0;
  const HeaderState hs = LoadForRewrite(io_, f.fd.get(), ino, index, &old, &counted);
  const wire::BlockVersion stored = HeldVersion(hs, old);  // absent or corrupt: none
  if (!(stored == v.base)) {
    if (f.created) unlink(f.path.c_str());
    if (held) *held = stored;
    return Status::Error(ESTALE, "block " + BlockName(ino, index) + " changed since it was read");
  }
  if (hs == HeaderState::kCorrupt) old = EmptyHeader(ino, index);
  RETURN_IF_ERROR(Empty(f, &old, counted));
  if (f.created) blocks_++;
  RETURN_IF_ERROR(WriteData(f, old, 0, 0, data, v.next));
  if (held) *held = v.next;
  return Status::OK();
}

// The data, and for a new block the directory entries leading to it.
Status BlockStore::SyncWritten(const Opened& f, uint64_t ino) {
  if (io_->Fdatasync(f.fd.get()) != 0) return Status::Error(errno, "fdatasync " + f.path);
  const std::string inode_dir = InodeDir(ino);
  if (f.created) RETURN_IF_ERROR(FsyncPath(inode_dir));
  if (f.made_inode_dir) RETURN_IF_ERROR(FsyncPath(inode_dir.substr(0, inode_dir.rfind('/'))));
  if (f.made_shard) RETURN_IF_ERROR(FsyncPath(dir_ + "/blocks"));
  return Status::OK();
}

Result<ReadBuffer> BlockStore::Read(uint64_t ino, uint64_t index, uint32_t offset, uint32_t len,
                                    const wire::BlockVersion* want) {
  if (offset > wire::kBlockSize || len > wire::kBlockSize - offset)
    return Status::Error(EINVAL, "read past the end of a block");
  std::shared_lock inode_lock(InodeMu(ino));
  std::shared_lock block_lock(BlockMu(ino, index));
  Fd fd(open(BlockPath(ino, index).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return Status::Error(errno, "open block " + BlockName(ino, index));
  Header h;
  const HeaderState hs = LoadHeader(io_, fd.get(), ino, index, &h);
  if (hs == HeaderState::kCorrupt) {
    LOG_ERROR("block %s: corrupt header", BlockName(ino, index).c_str());
    return Status::Error(EIO, "corrupt header in block " + BlockName(ino, index));
  }
  const uint32_t end = std::min(offset + len, h.length);
  if (offset >= end || (want && !(h.version == *want))) {
    ReadBuffer none;
    none.version = h.version;
    none.length = h.length;
    none.refused = want && !(h.version == *want);
    return none;
  }
  const uint32_t first = offset / kChunk, last = DivCeil(end, kChunk);
  const uint32_t begin = first * kChunk;
  char* buf = static_cast<char*>(std::malloc(std::min(last * kChunk, h.length) - begin));
  if (!buf) return Status::Error(ENOMEM, "read buffer");
  ReadBuffer out(buf, offset - begin, end - offset);
  out.version = h.version;
  out.length = h.length;
  RETURN_IF_ERROR(ReadVerified(io_, fd.get(), h, first, last, buf));
  return out;
}

Status BlockStore::CutBlock(uint64_t ino, uint64_t index, uint32_t cut, const WriteVersions* v,
                            TruncateResult* out) {
  const std::string path = BlockPath(ino, index);
  Fd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.ok()) return Status::Error(errno, "open " + path);
  Header h;
  const HeaderState hs = LoadHeader(io_, fd.get(), ino, index, &h);
  if (hs == HeaderState::kCorrupt) {
    LOG_ERROR("block %s: corrupt header, truncate refused", BlockName(ino, index).c_str());
    return Status::Error(EIO, "corrupt header in block " + BlockName(ino, index));
  }
  if (out) {
    out->version = HeldVersion(hs, h);
    out->cut_exists = true;
  }
  // A copy not at the truncation's base is left alone: it is stale (and is
  // repaired) or ahead of the truncating client, which then retries.
  if (v && !(HeldVersion(hs, h) == v->base)) return Status::OK();
  if (h.length <= cut && !v) return Status::OK();
  Header next = h;
  if (h.length > cut) {
    uint32_t c = cut / kChunk;
    if (cut > c * kChunk) {
      std::unique_ptr<char[]> buf(new char[kChunk]);
      RETURN_IF_ERROR(ReadVerified(io_, fd.get(), h, c, c + 1, buf.get()));
      next.crc[c] = Crc(buf.get(), cut - c * kChunk);
      c++;
    }
    for (; c < kChunks; c++) next.crc[c] = 0;
    next.length = cut;
  }
  if (v) next.version = v->next;
  // Header first: if we die before the ftruncate, the next write that
  // extends the block cuts the stale bytes (see Write).
  RETURN_IF_ERROR(StoreHeader(io_, fd.get(), &next));
  if (h.length > cut && ftruncate(fd.get(), kDataStart + cut) != 0)
    return Status::Error(errno, "ftruncate " + path);
  used_ -= h.length - next.length;
  if (out) {
    out->version = next.version;
    out->cut_applied = v != nullptr;
  }
  return Status::OK();
}

Status BlockStore::RemoveBlock(uint64_t ino, uint64_t index) {
  const std::string path = BlockPath(ino, index);
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return errno == ENOENT ? Status::OK() : Status::Error(errno, "open " + path);
  Header h;
  HeaderState hs = LoadHeader(io_, fd.get(), ino, index, &h);
  const uint32_t counted = hs == HeaderState::kCorrupt ? FileDataBytes(fd.get()) : h.length;
  if (unlink(path.c_str()) != 0) return Status::Error(errno, "unlink " + path);
  used_ -= counted;
  blocks_--;
  return Status::OK();
}

Status BlockStore::Truncate(uint64_t ino, uint64_t size, const WriteVersions* cut_versions,
                            TruncateResult* out, uint64_t fence_epoch) {
  std::unique_lock lock(InodeMu(ino));
  ASSIGN_OR_RETURN(std::vector<uint64_t> indices, ListLocked(ino));
  const uint64_t keep = size / wire::kBlockSize + (size % wire::kBlockSize ? 1 : 0);
  size_t kept = 0;
  for (uint64_t index : indices) {
    if (index < keep) {
      kept++;
      continue;
    }
    if (fence_epoch != 0) {
      Fd fd(open(BlockPath(ino, index).c_str(), O_RDONLY | O_CLOEXEC));
      Header h;
      if (fd.ok() && LoadHeader(io_, fd.get(), ino, index, &h) == HeaderState::kValid &&
          h.version.epoch >= fence_epoch) {
        kept++;  // written after this truncation
        continue;
      }
    }
    RETURN_IF_ERROR(RemoveBlock(ino, index));
  }
  const uint64_t cut_index = size / wire::kBlockSize;
  const uint32_t cut = size % wire::kBlockSize;
  if (cut && std::binary_search(indices.begin(), indices.end(), cut_index))
    RETURN_IF_ERROR(CutBlock(ino, cut_index, cut, cut_versions, out));
  if (kept == 0) rmdir(InodeDir(ino).c_str());  // best effort: an empty dir costs nothing
  return Status::OK();
}

Status BlockStore::Delete(uint64_t ino) {
  std::unique_lock lock(InodeMu(ino));
  ASSIGN_OR_RETURN(std::vector<uint64_t> indices, ListLocked(ino));
  for (uint64_t index : indices) RETURN_IF_ERROR(RemoveBlock(ino, index));
  // Every block is gone; a stray non-block file only keeps the directory.
  const std::string inode_dir = InodeDir(ino);
  if (rmdir(inode_dir.c_str()) != 0 && errno != ENOENT)
    LOG_WARN("rmdir %s: %s", inode_dir.c_str(), strerror(errno));
  return Status::OK();
}

Status BlockStore::Drop(uint64_t ino, uint64_t index, const wire::BlockVersion& version,
                        wire::BlockVersion* held) {
  std::shared_lock inode_lock(InodeMu(ino));
  std::unique_lock block_lock(BlockMu(ino, index));
  Fd fd(open(BlockPath(ino, index).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return errno == ENOENT ? Status::OK() : Status::Error(errno, "open " + BlockPath(ino, index));
  Header h;
  const wire::BlockVersion stored = HeldVersion(LoadHeader(io_, fd.get(), ino, index, &h), h);
  if (!(stored == version)) {
    if (held) *held = stored;
    return Status::Error(ESTALE, "block " + BlockName(ino, index) + " is at another version");
  }
  return RemoveBlock(ino, index);
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> BlockStore::ListShard(uint32_t shard) {
  char name[8];
  snprintf(name, sizeof name, "%02x", shard & 0xff);
  std::vector<std::string> inodes;
  std::vector<std::pair<uint64_t, uint64_t>> out;
  Status st = ListDir(dir_ + "/blocks/" + name, &inodes);
  if (!st.ok()) return st.code() == ENOENT ? Result<std::vector<std::pair<uint64_t, uint64_t>>>(out) : st;
  for (const auto& dir : inodes) {
    uint64_t ino;
    if (!ParseName(dir, 16, &ino)) continue;
    auto indices = List(ino);
    if (!indices.ok()) continue;  // deleted meanwhile
    for (uint64_t index : *indices) out.emplace_back(ino, index);
  }
  return out;
}

Status BlockStore::Verify(uint64_t ino, uint64_t index, wire::BlockVersion* version, uint32_t* length) {
  std::shared_lock inode_lock(InodeMu(ino));
  std::shared_lock block_lock(BlockMu(ino, index));
  *version = wire::BlockVersion{};
  *length = 0;
  Fd fd(open(BlockPath(ino, index).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return Status::Error(errno, "open block " + BlockName(ino, index));
  Header h;
  if (LoadHeader(io_, fd.get(), ino, index, &h) == HeaderState::kCorrupt)
    return Status::Error(EIO, "corrupt header in block " + BlockName(ino, index));
  *version = h.version;
  *length = h.length;
  if (h.length == 0) return Status::OK();
  std::unique_ptr<char, decltype(&std::free)> buf(static_cast<char*>(std::malloc(h.length)), &std::free);
  if (!buf) return Status::Error(ENOMEM, "verify buffer");
  return ReadVerified(io_, fd.get(), h, 0, DivCeil(h.length, kChunk), buf.get());
}

Status BlockStore::Reset() {
  std::vector<std::string> shards;
  RETURN_IF_ERROR(ListDir(dir_ + "/blocks", &shards));
  for (const auto& shard : shards) {
    std::vector<std::string> inodes;
    if (!ListDir(dir_ + "/blocks/" + shard, &inodes).ok()) continue;
    for (const auto& name : inodes) {
      uint64_t ino;
      if (ParseName(name, 16, &ino)) RETURN_IF_ERROR(Delete(ino));
    }
  }
  LOG_WARN("store %s reset: every block discarded", dir_.c_str());
  return Status::OK();
}

Status BlockStore::Sync() {
  if (syncfs(dir_fd_) != 0) return Status::Error(errno, "syncfs " + dir_);
  return Status::OK();
}

Result<std::vector<uint64_t>> BlockStore::List(uint64_t ino) {
  std::shared_lock lock(InodeMu(ino));
  return ListLocked(ino);
}

Result<std::vector<uint64_t>> BlockStore::ListLocked(uint64_t ino) {
  std::vector<std::string> names;
  std::vector<uint64_t> indices;
  Status st = ListDir(InodeDir(ino), &names);
  if (!st.ok()) {
    if (st.code() == ENOENT) return indices;
    return st;
  }
  for (const auto& name : names) {
    uint64_t index;
    if (ParseName(name, 10, &index)) indices.push_back(index);
  }
  std::sort(indices.begin(), indices.end());
  return indices;
}

StoreStats BlockStore::Stats() const {
  StoreStats s;
  s.capacity = opts_.capacity;
  struct statvfs vfs;
  if (s.capacity == 0 && statvfs(dir_.c_str(), &vfs) == 0)
    s.capacity = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  s.used = static_cast<uint64_t>(std::max<int64_t>(used_.load(), 0));
  s.blocks = static_cast<uint64_t>(std::max<int64_t>(blocks_.load(), 0));
  return s;
}

}  // namespace ringfs::blockd
