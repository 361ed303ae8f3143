#include "blockd/block_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
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
// Format 3, every block created now: a 512-byte header, data from file
// offset 512. Format 2, blocks created before it: a 4096-byte header area,
// data from file offset 4096; read and rewritten in place, never created.
// Both use the same header struct (format 2 the first 320 bytes of it).
constexpr uint32_t kFormatVersion = 3;
constexpr uint32_t kFormatV2 = 2;
// Format 4: the header in the `user.ringfs` xattr, the data from offset 0.
constexpr uint32_t kFormatV4 = 4;
constexpr char kXattrName[] = "user.ringfs";
constexpr uint32_t kV4Magic = 0x34534652;  // "RFS4"
constexpr off_t kDataStart = 512;     // format 3: the header sector; data follows
constexpr off_t kV2DataStart = 4096;  // format 2: the header page; data follows
constexpr uint32_t kChunk = 64 << 10;
constexpr uint32_t kChunks = wire::kBlockSize / kChunk;
// A nonzero seed, so a run of zeros does not sum to zero.
constexpr uint32_t kCrcSeed = 0xFFFFFFFF;

// On-disk format, version 3: a 512-byte header, then the block's data (file
// offset 512 + block offset; holes read as zeros). The header is the struct
// below, in host byte order (little-endian everywhere we run), 512 bytes in
// all: one disk sector, written by one pwrite at offset 0, so the disk
// writes it whole or not at all, and its CRC covers every byte of it but its
// own, so a flipped byte anywhere in a block file is caught (header: its CRC;
// data: the chunk's).
//
// Why 512 and not 4096 (format 2): a block holds only the bytes written, so
// most blocks of a tree of small files are a few KiB; with a 4 KiB header
// area each took one filesystem block more than its data (a 2 KiB file: 8 KiB
// on disk, 4 KiB now: header and data share one 4 KiB filesystem block when
// length <= 3584). The header holds 320 bytes (fixed fields and 64 chunk
// CRCs); the rest of the sector is spare, zero and checksummed, and keeps the
// data sector-aligned. The price is data that is not page-aligned: a write's
// first and last pages are partly header or neighbouring bytes, so the page
// cache merges into them. That costs a disk read only where an edge page
// holds old bytes that are not cached: past the old end there are none, a
// write that keeps old bytes of a chunk has just read that chunk back for its
// checksum (NewCrcs), and page 0 holds the header just read. What pays, up to
// two 4 KiB reads, is a page-aligned write meeting cold old bytes: an
// overwrite of whole chunks, or an aligned append, to a block not in the page
// cache. A chunk read spans 17 pages instead of 16.
//
// The header was not put after the data: it would move as the block grows,
// and an extending write would overwrite it with data before the new one
// landed, so a crash in between would leave no valid header and every
// acknowledged byte of the block unreadable (on every replica, for a cluster
// that loses power at once); in front it is rewritten in place, and the old
// one stays valid until the new one replaces it.
//
// What keeps a crash from serving wrong bytes (both formats):
//  - a new file gets its header before any data, so an empty file is a block
//    whose creation died: it holds nothing;
//  - a write lands its data first and its header second, so a crash between
//    leaves old checksums over new bytes: an EIO, never wrong data (in format
//    3 the header and a block's first 3584 bytes share a page, written back
//    together, but the disk may still persist its sectors in any order: any
//    mix of old and new header, old and new data is one of these cases);
//  - bytes past `length` are never trusted: the next extending write cuts them.
//
// Format 2 blocks (clusters from before format 3) are upgraded in place, not
// converted: reads, writes, cuts, scrub and drops work on them in their
// layout, and a write or cut keeps a block in format 2: converting means
// moving every byte 3584 bytes towards the start of the file, and for a block
// over 3584 bytes the new place overlaps the old, so it cannot be done in
// place without a window where a crash leaves neither layout whole (or
// without a second file and a rename, for a saving of one 4 KiB filesystem
// block per block). A block becomes format 3 when its bytes are discarded
// anyway: a replacement (a repair, or a copy the mover makes), a write that
// starts it afresh (a leftover from before a truncation) or that rewrites a
// block whose header is corrupt, and of course one removed and written again;
// so a cluster's files move to the new format as they are rewritten. Format
// 2 blocks rewritten in place stay readable by a binary from before format 3.
//
// Format 4 (every block created where the filesystem has user xattrs): the
// same header, encoded compactly in the file's `user.ringfs` xattr, and the
// data from file offset 0:
//
//   u32 magic "RFS4" | u32 length | u64 ino | u64 index | version (3 x u64)
//   | u32 crc of each chunk up to length | u32 CRC32C of all the bytes before
//
// 52 bytes and 4 per 64 KiB chunk: ext4 keeps up to 64 bytes of one xattr
// value inside a 256-byte inode, so a block of up to 192 KiB (3 chunks) costs
// no filesystem block for its header, and a 4 KiB block takes exactly one 4
// KiB filesystem block (format 3: one for a block of up to 3,584 bytes, two
// up to 7,680). Bigger blocks put their header in one 4 KiB xattr block,
// under 2% of their size. The data is page-aligned again, so a page-aligned
// overwrite of cold bytes reads nothing back. The xattr is journaled inode
// metadata: ext4 writes it whole or not at all, in any order relative to the
// data pages, which is the same set of crash outcomes as format 3's (old or
// new checksums over old or new bytes: valid, or an EIO then repair). It
// reaches the disk with fsync, not fdatasync, so a synced write of a format
// 4 block uses fsync. A file with no xattr is read as format 2 or 3 (an
// empty one as a block whose creation died); a file whose xattr fails to
// decode is corrupt, its bytes counted from offset 0. A format 2 or 3 block
// becomes format 4 when its bytes are discarded, as above; a format 4 block
// stays format 4 (it never moves back, even on a store told to make format
// 3: its xattr would outrank a new in-file header).
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
  // Format 3: of every other byte of the 512; format 2: of every byte above.
  uint32_t header_crc = 0;
  // Format 3: zeros (covered by header_crc). Format 2 never wrote this part
  // of its header area (it reads as zeros, unchecked).
  char spare[192] = {};
};

namespace {
using Header = BlockHeader;
// Format 2's header: the struct up to `spare`, 320 bytes, written and
// checked as they always were.
constexpr size_t kV2HeaderBytes = offsetof(Header, spare);
static_assert(kV2HeaderBytes == 320);
static_assert(sizeof(Header) == kDataStart, "format 3's header is exactly one 512-byte sector");
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

uint32_t DivCeil(uint64_t a, uint32_t b) { return static_cast<uint32_t>((a + b - 1) / b); }

// Format 4's xattr: the fixed fields, a crc per chunk up to length, its CRC.
constexpr size_t kV4Fixed = 4 + 4 + 8 + 8 + 3 * 8;
constexpr size_t kV4MaxBytes = kV4Fixed + 4 * kChunks + 4;
size_t V4Bytes(uint32_t length) { return kV4Fixed + 4 * size_t{DivCeil(length, kChunk)} + 4; }
// What ext4 keeps inside a 256-byte inode for one xattr named "ringfs".
constexpr size_t kV4InlineBytes = 64;

template <class T>
char* Put(char* p, T v) {
  memcpy(p, &v, sizeof v);
  return p + sizeof v;
}
template <class T>
const char* Get(const char* p, T* v) {
  memcpy(v, p, sizeof *v);
  return p + sizeof *v;
}

// `slots` > the chunks up to length pads the crc list with zeros (see
// WriteData: a header about to outgrow the inode moves out of it first).
size_t EncodeV4(const Header& h, char* out, uint32_t slots = 0) {
  char* p = out;
  p = Put(p, kV4Magic);
  p = Put(p, h.length);
  p = Put(p, h.ino);
  p = Put(p, h.index);
  p = Put(p, h.version.epoch);
  p = Put(p, h.version.height);
  p = Put(p, h.version.writer);
  slots = std::min(kChunks, std::max(slots, DivCeil(h.length, kChunk)));
  for (uint32_t c = 0; c < slots; c++) p = Put(p, c < DivCeil(h.length, kChunk) ? h.crc[c] : 0u);
  p = Put(p, Crc32c(out, static_cast<size_t>(p - out), kCrcSeed));
  return static_cast<size_t>(p - out);
}

// Fills h (format 4) from the xattr's n bytes; false when they are not a
// whole, correctly summed format 4 header.
bool DecodeV4(const char* in, size_t n, Header* h) {
  if (n < kV4Fixed + 4) return false;
  uint32_t magic, length, sum;
  const char* p = Get(in, &magic);
  p = Get(p, &length);
  if (magic != kV4Magic || length > wire::kBlockSize || (n - kV4Fixed - 4) % 4 != 0) return false;
  const size_t slots = (n - kV4Fixed - 4) / 4, used = DivCeil(length, kChunk);
  if (slots < used || slots > kChunks) return false;
  Get(in + n - 4, &sum);
  if (sum != Crc32c(in, n - 4, kCrcSeed)) return false;
  h->length = length;
  p = Get(p, &h->ino);
  p = Get(p, &h->index);
  p = Get(p, &h->version.epoch);
  p = Get(p, &h->version.height);
  p = Get(p, &h->version.writer);
  for (uint32_t c = 0; c < kChunks; c++) {
    h->crc[c] = 0;
    if (c < slots) p = Get(p, &h->crc[c]);
    if (c >= used && h->crc[c] != 0) return false;  // 0 past length, as in every format
  }
  return true;
}

uint32_t HeaderCrc(const Header& h) {
  const char* p = reinterpret_cast<const char*>(&h);
  constexpr size_t kBefore = offsetof(Header, header_crc), kAfter = kBefore + sizeof h.header_crc;
  const uint32_t crc = Crc(p, kBefore);
  return h.format == kFormatV2 ? crc : Crc(p + kAfter, sizeof h - kAfter, crc);
}

// Where the block's byte 0 is in its file.
off_t DataStart(const Header& h) {
  return h.format == kFormatV2 ? kV2DataStart : h.format == kFormatV4 ? 0 : kDataStart;
}
// The header's bytes on disk.
size_t HeaderBytes(const Header& h) { return h.format == kFormatV2 ? kV2HeaderBytes : sizeof h; }


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

Header EmptyHeader(uint64_t ino, uint64_t index, uint32_t format) {
  Header h;
  h.format = format;
  h.ino = ino;
  h.index = index;
  return h;
}

// An empty file is a block whose creation crashed before its first header:
// nothing in it was ever acknowledged, so it holds no bytes. A file shorter
// than its format's header (a torn creation, or one cut short) is corrupt.
HeaderState LoadHeader(DiskIo* io, int fd, uint64_t ino, uint64_t index, Header* h) {
  char x[kV4MaxBytes];
  const ssize_t xn = io->GetXattr(fd, kXattrName, x, sizeof x);
  if (xn >= 0 || errno == ERANGE) {  // format 4 (ERANGE: too long to be one)
    *h = EmptyHeader(ino, index, kFormatV4);
    if (xn >= 0 && DecodeV4(x, static_cast<size_t>(xn), h) && h->ino == ino && h->index == index)
      return HeaderState::kValid;
    *h = EmptyHeader(ino, index, kFormatV4);
    return HeaderState::kCorrupt;
  }
  // No xattr (ENODATA), or none on this filesystem: format 2 or 3.
  ssize_t n;
  do {
    n = io->PRead(fd, h, sizeof *h, 0);
  } while (n < 0 && errno == EINTR);
  if (n == 0) {
    *h = EmptyHeader(ino, index, kFormatVersion);
    return HeaderState::kEmpty;
  }
  if (n < 0) return HeaderState::kCorrupt;
  // What the file did not hold reads as zeros (format 2: its unwritten spare).
  memset(reinterpret_cast<char*>(h) + n, 0, sizeof *h - static_cast<size_t>(n));
  if ((h->format != kFormatVersion && h->format != kFormatV2) ||
      static_cast<size_t>(n) < HeaderBytes(*h) || h->magic != kMagic ||
      h->chunk_bytes != kChunk || h->length > wire::kBlockSize || h->ino != ino ||
      h->index != index || h->header_crc != HeaderCrc(*h)) {
    return HeaderState::kCorrupt;
  }
  return HeaderState::kValid;
}

// Writes the header in its block's format: format 3's whole sector, or
// format 2's 320 bytes exactly as format 2 always wrote them.
Status StoreHeader(DiskIo* io, int fd, Header* h, uint32_t slots = 0) {
  if (h->format == kFormatV4) {
    char x[kV4MaxBytes];
    const size_t n = EncodeV4(*h, x, slots);
    if (io->SetXattr(fd, kXattrName, x, n) != 0) return Status::Error(errno, "fsetxattr");
    return Status::OK();
  }
  h->header_crc = HeaderCrc(*h);
  return WriteAll(io, fd, reinterpret_cast<const char*>(h), HeaderBytes(*h), 0);
}

// Bytes the file could hold past its header; what a corrupt block counts as.
// `h` is whatever its header area reads as: the format field, if it still
// says 2, places the data, else format 3 does (deterministic either way, so a
// scan and a later rewrite or removal count the same file the same).
uint32_t FileDataBytes(int fd, const Header& h) {
  struct stat st;
  const off_t start = DataStart(h);
  if (fstat(fd, &st) != 0 || st.st_size <= start) return 0;
  return static_cast<uint32_t>(std::min<off_t>(st.st_size - start, wire::kBlockSize));
}

// Loads the header of a block about to be rewritten; `counted` gets the bytes
// the store counts for it now (for a corrupt block, whatever the file holds).
HeaderState LoadForRewrite(DiskIo* io, int fd, uint64_t ino, uint64_t index, Header* h,
                           uint32_t* counted) {
  const HeaderState state = LoadHeader(io, fd, ino, index, h);
  *counted = state == HeaderState::kValid     ? h->length
             : state == HeaderState::kCorrupt ? FileDataBytes(fd, *h)
                                              : 0;
  return state;
}

// Reads data [from * kChunk, min(to * kChunk, length)) into buf and checks
// every chunk against the header.
Status ReadVerified(DiskIo* io, int fd, const Header& h, uint32_t from, uint32_t to, char* buf) {
  const uint32_t begin = from * kChunk, end = std::min(to * kChunk, h.length);
  RETURN_IF_ERROR(ReadAll(io, fd, buf, end - begin, DataStart(h) + begin));
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

// NewCrcs for several sorted, disjoint ranges at once: each touched chunk
// is read (verified) once, every range's bytes laid over it, and summed
// once, instead of once per range.
Status MultiCrcs(DiskIo* io, int fd, const Header& old, const std::vector<BlockStore::Range>& ranges,
                 Header* next) {
  const uint32_t old_len = old.length;
  uint32_t new_len = old_len;
  for (const auto& r : ranges) new_len = std::max<uint32_t>(new_len, r.offset + static_cast<uint32_t>(r.data.size()));
  next->length = new_len;
  std::vector<uint32_t> touched;
  for (const auto& r : ranges) {
    const uint32_t a = r.offset / kChunk, b = (r.offset + static_cast<uint32_t>(r.data.size()) - 1) / kChunk;
    for (uint32_t c = touched.empty() ? a : std::max(a, touched.back() + 1); c <= b; c++) touched.push_back(c);
  }
  // Chunks past the old end that no range touches now hold zeros.
  size_t t = 0;
  for (uint32_t c = old_len / kChunk; new_len > 0 && c <= (new_len - 1) / kChunk; c++) {
    while (t < touched.size() && touched[t] < c) t++;
    if (t < touched.size() && touched[t] == c) continue;
    const uint32_t cs = c * kChunk, ce = std::min(cs + kChunk, new_len);
    const uint32_t base = old_len > cs ? old.crc[c] : kCrcSeed;
    next->crc[c] = CrcZeros(ce - std::max(old_len, cs), base);
  }
  std::unique_ptr<char[]> scratch(new char[kChunk]);
  size_t ri = 0;
  for (uint32_t c : touched) {
    const uint32_t cs = c * kChunk, ce = std::min(cs + kChunk, new_len);
    const uint32_t old_end = std::clamp(old_len, cs, cs + kChunk);
    if (old_end > cs) RETURN_IF_ERROR(ReadVerified(io, fd, old, c, c + 1, scratch.get()));
    memset(scratch.get() + (old_end - cs), 0, kChunk - (old_end - cs));
    while (ri < ranges.size() && ranges[ri].offset + ranges[ri].data.size() <= cs) ri++;
    for (size_t k = ri; k < ranges.size() && ranges[k].offset < ce; k++) {
      const uint32_t ws = std::max(ranges[k].offset, cs);
      const uint32_t we = std::min<uint32_t>(ranges[k].offset + static_cast<uint32_t>(ranges[k].data.size()), ce);
      memcpy(scratch.get() + (ws - cs), ranges[k].data.data() + (ws - ranges[k].offset), we - ws);
    }
    next->crc[c] = Crc(scratch.get(), ce - cs);
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
int DiskIo::Fsync(int fd) { return fsync(fd); }
int DiskIo::SetXattr(int fd, const char* name, const void* value, size_t n) {
  return fsetxattr(fd, name, value, n, 0);
}
ssize_t DiskIo::GetXattr(int fd, const char* name, void* value, size_t n) {
  return fgetxattr(fd, name, value, n);
}

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
  if (opts.xattr_headers) {
    // Format 4 where a user xattr of a header's size can be set.
    const std::string probe = dir + "/blocks/.xattr-probe";
    Fd pf(open(probe.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    char x[kV4MaxBytes] = {};
    if (pf.ok() && store->io_->SetXattr(pf.get(), kXattrName, x, sizeof x) == 0) {
      store->create_format_ = kFormatV4;
    } else {
      LOG_WARN("block store %s: no user xattrs here (%s): new blocks keep their header in the file",
               dir.c_str(), strerror(errno));
    }
    if (pf.ok()) unlink(probe.c_str());
  }
  RETURN_IF_ERROR(store->Scan());
  return store;
}

// A store from before flat block 0 kept it at <ino hex>/0: it moves to
// <ino hex>.0 (a rename: either name holds it whole after a crash), and the
// inode's directory goes if nothing else is in it.
Status BlockStore::MoveLegacyBlock0(const std::string& shard_dir, const std::string& name) {
  const std::string legacy = shard_dir + "/" + name + "/0", flat = shard_dir + "/" + name + ".0";
  if (renameat2(AT_FDCWD, legacy.c_str(), AT_FDCWD, flat.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::OK();
    // Both exist: only a binary from before flat block 0, run on this store
    // after this one, writes the legacy name. The flat one is kept; the
    // other is ignored (and listed here at every start).
    LOG_ERROR("block %s: %s", legacy.c_str(), strerror(errno));
    return Status::OK();
  }
  rmdir((shard_dir + "/" + name).c_str());
  return FsyncPath(shard_dir);
}

Status BlockStore::ShardInodes(const std::string& shard_dir, std::vector<uint64_t>* inos) {
  std::vector<std::string> names;
  inos->clear();
  RETURN_IF_ERROR(ListDir(shard_dir, &names));
  for (const auto& name : names) {
    uint64_t ino;
    const bool flat = name.size() > 2 && name.compare(name.size() - 2, 2, ".0") == 0;
    if (ParseName(flat ? name.substr(0, name.size() - 2) : name, 16, &ino)) inos->push_back(ino);
  }
  std::sort(inos->begin(), inos->end());
  inos->erase(std::unique(inos->begin(), inos->end()), inos->end());
  return Status::OK();
}

Status BlockStore::Scan() {
  std::vector<std::string> shards, names;
  std::vector<uint64_t> inos;
  RETURN_IF_ERROR(ListDir(dir_ + "/blocks", &shards));
  int64_t used = 0, blocks = 0, corrupt = 0, v2 = 0, v3 = 0, moved = 0;
  for (const auto& shard : shards) {
    const std::string shard_dir = dir_ + "/blocks/" + shard;
    if (!ListDir(shard_dir, &names).ok()) continue;
    for (const auto& name : names) {
      uint64_t ino;
      struct stat st;
      if (ParseName(name, 16, &ino) && stat((shard_dir + "/" + name + "/0").c_str(), &st) == 0) {
        RETURN_IF_ERROR(MoveLegacyBlock0(shard_dir, name));
        moved++;
      }
    }
    if (!ShardInodes(shard_dir, &inos).ok()) continue;
    for (uint64_t ino : inos) {
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
        if (hs == HeaderState::kValid && h.format == kFormatV2) v2++;
        if (hs == HeaderState::kValid && h.format == kFormatVersion) v3++;
        used += hs == HeaderState::kCorrupt ? FileDataBytes(fd.get(), h) : h.length;
        blocks++;
      }
    }
  }
  used_ = used;
  blocks_ = blocks;
  LOG_INFO("block store %s: %" PRId64 " blocks (%" PRId64 " in format 2, %" PRId64 " in format 3), %" PRId64
           " bytes, %" PRId64 " corrupt headers, %" PRId64 " block 0s moved out of their inode's directory;"
           " creating format %u",
           dir_.c_str(), blocks, v2, v3, used, corrupt, moved, create_format_);
  return Status::OK();
}

std::string BlockStore::ShardDir(uint64_t ino) const {
  char buf[16];
  snprintf(buf, sizeof buf, "/blocks/%02x", static_cast<unsigned>(ino & 0xff));
  return dir_ + buf;
}

std::string BlockStore::InodeDir(uint64_t ino) const {
  char buf[24];
  snprintf(buf, sizeof buf, "/%" PRIx64, ino);
  return ShardDir(ino) + buf;
}

std::string BlockStore::BlockPath(uint64_t ino, uint64_t index) const {
  return index == 0 ? InodeDir(ino) + ".0" : InodeDir(ino) + "/" + std::to_string(index);
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
  RETURN_IF_ERROR(MakeDir(ShardDir(ino), &out->made_shard));
  if (index != 0) RETURN_IF_ERROR(MakeDir(InodeDir(ino), &out->made_inode_dir));
  out->fd.reset(open(out->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out->fd.ok()) return Status::Error(errno, "create " + out->path);
  out->created = true;
  // The header goes first, so the file is never data without a header.
  Header h = EmptyHeader(ino, index, create_format_);
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
// The format of a block whose old bytes are discarded: the store's, except
// that format 4 stays (its xattr, if left, would outrank an in-file header).
uint32_t DiscardFormat(const Header& old, uint32_t create_format) {
  return old.format == kFormatV4 ? kFormatV4 : create_format;
}
}  // namespace

Status BlockStore::Write(uint64_t ino, uint64_t index, uint32_t offset, std::string_view data,
                         uint32_t flags, const WriteVersions* v, wire::BlockVersion* held) {
  std::vector<Range> one;
  if (!data.empty() || offset != 0) one.push_back(Range{offset, data});
  return WriteRanges(ino, index, one, flags, v, held);
}

Status BlockStore::WriteRanges(uint64_t ino, uint64_t index, const std::vector<Range>& in, uint32_t flags,
                               const WriteVersions* v, wire::BlockVersion* held) {
  std::vector<Range> ranges;
  ranges.reserve(in.size());
  uint64_t prev_end = 0;
  for (const Range& r : in) {
    if (r.offset > wire::kBlockSize || r.data.size() > wire::kBlockSize - r.offset)
      return Status::Error(EINVAL, "write past the end of a block");
    if (r.offset < prev_end) return Status::Error(EINVAL, "write ranges overlap or are out of order");
    prev_end = r.offset + r.data.size();
    if (!r.data.empty()) ranges.push_back(r);
  }
  if (ranges.empty() && !v) return Status::OK();
  const uint32_t offset = ranges.empty() ? 0 : ranges.front().offset;
  const uint64_t span_end = ranges.empty() ? 0 : ranges.back().offset + ranges.back().data.size();
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
        if (hs == HeaderState::kCorrupt) old = EmptyHeader(ino, index, old.format);
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
    if (ranges.size() > 1 || offset != 0 || span_end < counted) {
      LOG_ERROR("block %s: corrupt header, write refused", BlockName(ino, index).c_str());
      return Status::Error(EIO, "corrupt header in block " + BlockName(ino, index));
    }
    // A write covering every old byte replaces the block.
    old = EmptyHeader(ino, index, DiscardFormat(old, create_format_));
  }
  Status st = WriteData(f, old, counted, ranges, next);
  if (!st.ok()) {
    if (f.created) unlink(f.path.c_str());
    return st;
  }
  if (held) *held = next;
  if (f.created) blocks_++;
  if (flags & wire::kBlockSyncNow) return SyncWritten(f, old.format == kFormatV4);
  if (opts_.early_writeback) {
    // Whole chunks only: a partial one is likely to be written again soon.
    for (const Range& r : ranges) {
      const uint64_t end = r.offset + r.data.size();
      const uint64_t a = DivCeil(r.offset, kChunk) * uint64_t{kChunk}, b = end / kChunk * kChunk;
      if (b > a) sync_file_range(fd, DataStart(old) + a, b - a, SYNC_FILE_RANGE_WRITE);
    }
  }
  return Status::OK();
}

// Makes the block hold no bytes (header first, as CutBlock does), keeping
// its version until the write that follows sets the next one. The empty
// block is in the store's format whatever the old one was (DiscardFormat): a
// format 2 or 3 block becomes format 4 here (or 2 becomes 3). A crash before
// the ftruncate leaves either the old header or the new one, whose length 0
// makes everything after it bytes past the end: format 3's 512-byte header
// lies inside format 2's header page, and format 4's xattr, once there,
// outranks whatever the file's first bytes say.
Status BlockStore::Empty(const Opened& f, BlockHeader* h, uint32_t counted) {
  Header empty = EmptyHeader(h->ino, h->index, DiscardFormat(*h, create_format_));
  empty.version = h->version;
  RETURN_IF_ERROR(StoreHeader(io_, f.fd.get(), &empty));
  if (ftruncate(f.fd.get(), DataStart(empty)) != 0) return Status::Error(errno, "ftruncate " + f.path);
  used_ -= counted;
  *h = empty;
  return Status::OK();
}

// Writes `ranges` over a block described by `old` (whose bytes the store
// counts as `counted`), leaving it at `version`. Each range's checksums are
// computed over what the ranges before it left, so ranges sharing a chunk
// chain correctly; the header is written once, after all the data (a crash
// in between leaves chunks that fail their checksums: EIO, then repair).
Status BlockStore::WriteData(const Opened& f, const BlockHeader& old, uint32_t counted,
                             const std::vector<Range>& ranges, const wire::BlockVersion& version) {
  const int fd = f.fd.get();
  Header next = old;
  next.version = version;
  if (ranges.empty()) {
    RETURN_IF_ERROR(StoreHeader(io_, fd, &next));
    used_ += static_cast<int64_t>(next.length) - counted;
    return Status::OK();
  }
  const off_t start = DataStart(old);  // the block keeps its format
  struct stat sb;
  if (fstat(fd, &sb) != 0) return Status::Error(errno, "fstat " + f.path);
  // Bytes past `length` are left by a write that died before its header or by
  // a replaced block: cut them, so a gap left by this write reads as zeros.
  if (sb.st_size > start + old.length) {
    if (ftruncate(fd, start + old.length) != 0) return Status::Error(errno, "ftruncate");
    sb.st_size = start + old.length;
  }
  // Appends allocate first: a full disk then fails before any byte changes.
  // Writes into holes (a random writer's, in a sparse block) do not: space
  // fallocated ahead is "unwritten" to ext4, and converting it piece by
  // piece at writeback cost 4.5x the time of a 256 MiB random-write run
  // (fio randwrite + fsync: 10.2 s vs 2.2 s). If such a write runs out of
  // space halfway, the chunks it touched fail their checksums (EIO) and the
  // block is repaired, as after a crash in the middle of a write.
  uint32_t new_len = old.length;
  for (const Range& r : ranges) {
    const uint32_t end = r.offset + static_cast<uint32_t>(r.data.size());
    new_len = std::max(new_len, end);
    if (r.offset <= old.length && end > old.length) {
      if (io_->Fallocate(fd, start + r.offset, r.data.size()) != 0 && errno != EOPNOTSUPP)
        return Status::Error(errno, "fallocate " + f.path);
    }
  }
  // A format 4 header about to outgrow the inode needs a filesystem block
  // of its own, which a full disk refuses: ask for it (the old header,
  // padded to its largest size) before any byte changes, as fallocate does
  // for the data, so ENOSPC leaves the old block whole.
  if (old.format == kFormatV4 && V4Bytes(old.length) <= kV4InlineBytes && V4Bytes(new_len) > kV4InlineBytes) {
    Header padded = old;
    RETURN_IF_ERROR(StoreHeader(io_, fd, &padded, kChunks));
  }
  if (ranges.size() == 1) {
    RETURN_IF_ERROR(NewCrcs(io_, fd, old, ranges[0].offset, ranges[0].data, &next));
  } else {
    RETURN_IF_ERROR(MultiCrcs(io_, fd, old, ranges, &next));
  }
  for (const Range& r : ranges)
    RETURN_IF_ERROR(WriteAll(io_, fd, r.data.data(), r.data.size(), start + r.offset));
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
  if (hs == HeaderState::kCorrupt) old = EmptyHeader(ino, index, old.format);
  RETURN_IF_ERROR(Empty(f, &old, counted));
  if (f.created) blocks_++;
  std::vector<Range> all;
  if (!data.empty()) all.push_back(Range{0, data});
  RETURN_IF_ERROR(WriteData(f, old, 0, all, v.next));
  if (held) *held = v.next;
  return Status::OK();
}

// The data and header, and for a new block the directory entries leading to
// it: its own (the shard's for block 0, else the inode's), the inode's in
// the shard's, the shard's in blocks/.
Status BlockStore::SyncWritten(const Opened& f, bool header_in_inode) {
  if ((header_in_inode ? io_->Fsync(f.fd.get()) : io_->Fdatasync(f.fd.get())) != 0)
    return Status::Error(errno, "fsync " + f.path);
  std::string parent = f.path.substr(0, f.path.rfind('/'));
  if (f.created) RETURN_IF_ERROR(FsyncPath(parent));
  if (f.made_inode_dir) RETURN_IF_ERROR(FsyncPath(parent = parent.substr(0, parent.rfind('/'))));
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
  if (h.length > cut && ftruncate(fd.get(), DataStart(h) + cut) != 0)
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
  const uint32_t counted = hs == HeaderState::kCorrupt ? FileDataBytes(fd.get(), h) : h.length;
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
  std::vector<uint64_t> inodes;
  std::vector<std::pair<uint64_t, uint64_t>> out;
  Status st = ShardInodes(dir_ + "/blocks/" + name, &inodes);
  if (!st.ok()) return st.code() == ENOENT ? Result<std::vector<std::pair<uint64_t, uint64_t>>>(out) : st;
  for (uint64_t ino : inodes) {
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
    std::vector<uint64_t> inodes;
    if (!ShardInodes(dir_ + "/blocks/" + shard, &inodes).ok()) continue;
    for (uint64_t ino : inodes) RETURN_IF_ERROR(Delete(ino));
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
  struct stat st0;
  if (stat(BlockPath(ino, 0).c_str(), &st0) == 0) {
    indices.push_back(0);
  } else if (errno != ENOENT) {
    return Status::Error(errno, "stat " + BlockPath(ino, 0));
  }
  Status st = ListDir(InodeDir(ino), &names);
  if (!st.ok()) {
    if (st.code() == ENOENT || st.code() == ENOTDIR) return indices;
    return st;
  }
  for (const auto& name : names) {
    uint64_t index;
    // A "0" here is a leftover of the old layout Open did not move (see
    // MoveLegacyBlock0): not a block.
    if (ParseName(name, 10, &index) && index != 0) indices.push_back(index);
  }
  std::sort(indices.begin(), indices.end());
  return indices;
}

StoreStats BlockStore::Stats() const {
  StoreStats s;
  s.capacity = opts_.capacity;
  s.used = static_cast<uint64_t>(std::max<int64_t>(used_.load(), 0));
  struct statvfs vfs;
  if (statvfs(dir_.c_str(), &vfs) == 0) {
    if (s.capacity == 0) s.capacity = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    // No more than this store can still grow to on its disk, which others
    // may share: the cluster's free space (statfs, fallocate's ENOSPC
    // check) is then what the disks really have.
    s.capacity = std::min(s.capacity, s.used + static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize);
  }
  s.blocks = static_cast<uint64_t>(std::max<int64_t>(blocks_.load(), 0));
  return s;
}

}  // namespace ringfs::blockd
