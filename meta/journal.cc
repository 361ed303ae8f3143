#include "meta/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdlib>
#include <cstring>

#include "common/crc.h"
#include "common/file_util.h"
#include "common/log.h"

namespace ringfs::meta {

namespace journal {

namespace {

void Put32(char* p, uint32_t v) { memcpy(p, &v, 4); }
void Put64(char* p, uint64_t v) { memcpy(p, &v, 8); }
uint32_t Get32(const char* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
uint64_t Get64(const char* p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

// Over the length and seq fields, then the payload.
uint32_t RecordCrc(const char* header, std::string_view payload) {
  uint32_t c = Crc32c(header + 4, 12);
  return Crc32c(payload.data(), payload.size(), c);
}

}  // namespace

std::string Encode(uint64_t seq, std::string_view payload) {
  std::string rec(kHeaderBytes + payload.size(), '\0');
  char* h = rec.data();
  Put32(h, kMagic);
  Put32(h + 4, static_cast<uint32_t>(payload.size()));
  Put64(h + 8, seq);
  Put32(h + 16, RecordCrc(h, payload));
  Put32(h + 20, 0);
  memcpy(h + kHeaderBytes, payload.data(), payload.size());
  return rec;
}

size_t Decode(std::string_view buf, uint64_t* seq, std::string_view* payload) {
  if (buf.size() < kHeaderBytes) return 0;
  const char* h = buf.data();
  if (Get32(h) != kMagic || Get32(h + 20) != 0) return 0;
  const uint32_t len = Get32(h + 4);
  if (len > kMaxPayload || buf.size() - kHeaderBytes < len) return 0;
  std::string_view body(h + kHeaderBytes, len);
  if (Get32(h + 16) != RecordCrc(h, body)) return 0;
  *seq = Get64(h + 8);
  *payload = body;
  return kHeaderBytes + len;
}

std::string SegmentName(uint64_t first_seq) {
  char name[32];
  snprintf(name, sizeof(name), "%016" PRIx64 ".jnl", first_seq);
  return name;
}

}  // namespace journal

struct Journal::File {
  int fd = -1;
  explicit File(int f) : fd(f) {}
  ~File() {
    if (fd >= 0) close(fd);
  }
};

namespace {

Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Error(errno, "open " + dir);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  return rc == 0 ? Status::OK() : Status::Error(err, "fsync " + dir);
}

// A failed flush leaves the page cache in a state nobody can trust (the
// kernel may have dropped the dirty pages it could not write): stop, and let
// the restart replay what the disk really holds.
[[noreturn]] void FailStop(const char* what, int err) {
  LOG_ERROR("journal %s failed: %s; stopping so that recovery replays what is on disk", what,
            strerror(err));
  std::abort();
}

}  // namespace

Result<std::unique_ptr<Journal>> Journal::Open(JournalOptions opts, uint64_t after, const Apply& apply) {
  if (opts.dir.empty()) return Status::Error(EINVAL, "journal directory missing");
  if (opts.flush_interval_ms < 0) return Status::Error(EINVAL, "flush interval must be >= 0");
  if (opts.segment_bytes < 4096) return Status::Error(EINVAL, "segment size must be at least 4 KiB");
  if (mkdir(opts.dir.c_str(), 0755) != 0 && errno != EEXIST) return Status::Error(errno, "mkdir " + opts.dir);
  std::unique_ptr<Journal> j(new Journal(std::move(opts)));
  RETURN_IF_ERROR(j->Recover(after, apply));
  j->flusher_ = std::thread([p = j.get()] { p->FlushLoop(); });
  return j;
}

Status Journal::Recover(uint64_t after, const Apply& apply) {
  std::vector<Segment> found;
  {
    DIR* d = opendir(opts_.dir.c_str());
    if (!d) return Status::Error(errno, "opendir " + opts_.dir);
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() != 20 || name.substr(16) != ".jnl") continue;
      char* end = nullptr;
      uint64_t first = strtoull(name.substr(0, 16).c_str(), &end, 16);
      if (!end || *end != '\0' || first == 0) continue;
      found.push_back(Segment{first, opts_.dir + "/" + name});
    }
    closedir(d);
  }
  std::sort(found.begin(), found.end(), [](const Segment& a, const Segment& b) { return a.first < b.first; });

  uint64_t last = after;  // the newest record applied (or covered by the checkpoint)
  bool damaged = false;
  uint64_t tail_size = 0;  // intact bytes in the last segment kept
  uint64_t tail_next = 0;  // the seq its next record would have
  for (size_t i = 0; i < found.size(); i++) {
    const Segment& seg = found[i];
    if (damaged) {
      LOG_WARN("journal: removing %s, which follows a damaged record", seg.path.c_str());
      unlink(seg.path.c_str());
      continue;
    }
    // Wholly covered by the checkpoint: never read, removed.
    if (i + 1 < found.size() && found[i + 1].first - 1 <= after) {
      unlink(seg.path.c_str());
      continue;
    }
    auto content = ReadWholeFile(seg.path);
    if (!content.ok()) return content.status();
    std::string_view buf(*content);
    size_t off = 0;
    uint64_t expect = seg.first;
    while (off < buf.size()) {
      uint64_t seq = 0;
      std::string_view payload;
      size_t n = journal::Decode(buf.substr(off), &seq, &payload);
      if (n == 0 || seq != expect) break;
      if (seq > after) {
        if (seq != last + 1) {
          return Status::Error(EUCLEAN, "journal: records " + std::to_string(last + 1) + " to " +
                                            std::to_string(seq - 1) + " are missing (" + seg.path + ")");
        }
        Status st = apply(seq, payload);
        if (!st.ok()) return Status::Error(st.code(), "journal: replay of record " + std::to_string(seq) +
                                                          ": " + st.message());
        last = seq;
      }
      expect = seq + 1;
      off += n;
    }
    if (off < buf.size()) {
      damaged = true;
      LOG_WARN("journal: %s: record damaged or torn at byte %zu of %zu; %zu bytes dropped", seg.path.c_str(),
               off, buf.size(), buf.size() - off);
      int fd = open(seg.path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ftruncate(fd, static_cast<off_t>(off)) != 0 || fdatasync(fd) != 0) {
        int err = errno;
        if (fd >= 0) close(fd);
        return Status::Error(err, "journal: cannot cut " + seg.path);
      }
      close(fd);
    }
    segments_.push_back(seg);
    tail_size = off;
    tail_next = expect;
  }
  written_ = durable_ = last;
  // Go on appending to the newest segment if the next record continues it
  // (a checkpoint may cover records the disk lost: then start a new one).
  if (!segments_.empty()) {
    const Segment& tail = segments_.back();
    if (tail_next == last + 1) {
      int fd = open(tail.path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return Status::Error(errno, "open " + tail.path);
      cur_ = std::make_shared<File>(fd);
      cur_size_ = tail_size;
      // What a killed predecessor left in the page cache is on disk from here.
      if (fdatasync(fd) != 0) return Status::Error(errno, "fdatasync " + tail.path);
    } else if (tail_size == 0) {
      unlink(tail.path.c_str());
      segments_.pop_back();
    }
  }
  for (const Segment& s : segments_) {
    struct stat stbuf;
    if (stat(s.path.c_str(), &stbuf) == 0) bytes_ += static_cast<uint64_t>(stbuf.st_size);
  }
  if (!cur_) {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(StartSegment(last + 1));
  }
  return SyncDir(opts_.dir);
}

Status Journal::StartSegment(uint64_t first) {
  Segment seg{first, opts_.dir + "/" + journal::SegmentName(first)};
  int fd = open(seg.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Error(errno, "create " + seg.path);
  cur_ = std::make_shared<File>(fd);
  cur_size_ = 0;
  segments_.push_back(seg);
  // The new name must survive a power loss with the records it will hold.
  return SyncDir(opts_.dir);
}

Journal::~Journal() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
}

Result<uint64_t> Journal::Append(std::string_view payload) {
  if (payload.size() > journal::kMaxPayload) return Status::Error(EFBIG, "journal record too large");
  std::unique_lock<std::mutex> lock(mu_);
  if (broken_) return Status::Error(EIO, "journal unusable after a failed write");
  const std::string rec = journal::Encode(written_ + 1, payload);
  if (cur_size_ > 0 && cur_size_ + rec.size() > opts_.segment_bytes) {
    // Only the newest segment may have a torn tail: finish this one first.
    if (fdatasync(cur_->fd) != 0) FailStop("flush at segment end", errno);
    durable_ = std::max(durable_, written_);
    Status st = StartSegment(written_ + 1);
    if (!st.ok()) {
      broken_ = true;
      return st;
    }
  }
  size_t done = 0;
  while (done < rec.size()) {
    ssize_t n = pwrite(cur_->fd, rec.data() + done, rec.size() - done, static_cast<off_t>(cur_size_ + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      // Undo the partial record so the next one follows an intact log.
      if (ftruncate(cur_->fd, static_cast<off_t>(cur_size_)) != 0) broken_ = true;
      return Status::Error(err, std::string("journal write: ") + strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  cur_size_ += rec.size();
  bytes_ += rec.size();
  const bool was_idle = written_ == durable_;
  written_++;
  if (was_idle) first_unsynced_ = std::chrono::steady_clock::now();
  if (opts_.strict) urgent_ = true;
  if (was_idle || opts_.strict) cv_.notify_one();
  return written_;
}

uint64_t Journal::written_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return written_;
}

uint64_t Journal::durable_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return durable_;
}

void Journal::WhenDurable(uint64_t seq, std::function<void()> done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = std::min(seq, written_);
    if (seq > durable_) {
      waiters_.emplace(seq, std::move(done));
      urgent_ = true;
      cv_.notify_one();
      return;
    }
  }
  done();
}

Status Journal::Sync() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = written_;
  if (target <= durable_) return Status::OK();
  urgent_ = true;
  cv_.notify_one();
  done_cv_.wait(lock, [&] { return durable_ >= target || stop_; });
  return durable_ >= target ? Status::OK() : Status::Error(ESHUTDOWN, "journal closing");
}

void Journal::FlushLoop() {
  using namespace std::chrono;
  const auto delay = microseconds(opts_.flush_interval_ms * 1000 / 2);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || written_ > durable_; });
    if (written_ == durable_) break;  // stopping, and nothing left to flush
    if (!urgent_ && !stop_) cv_.wait_until(lock, first_unsynced_ + delay, [&] { return urgent_ || stop_; });
    const uint64_t target = written_;
    const auto since = first_unsynced_;
    std::shared_ptr<File> file = cur_;
    urgent_ = false;
    lock.unlock();
    if (fdatasync(file->fd) != 0) FailStop("flush", errno);
    const auto now = steady_clock::now();
    lock.lock();
    flushes_++;
    if (target > durable_) durable_ = target;
    max_lag_us_ = std::max<uint64_t>(max_lag_us_, duration_cast<microseconds>(now - since).count());
    // Records appended during the flush wait from now at most.
    if (written_ > durable_) first_unsynced_ = now;
    std::vector<std::function<void()>> ready;
    while (!waiters_.empty() && waiters_.begin()->first <= durable_) {
      ready.push_back(std::move(waiters_.begin()->second));
      waiters_.erase(waiters_.begin());
    }
    if (!waiters_.empty()) urgent_ = true;
    lock.unlock();
    for (auto& f : ready) f();
    done_cv_.notify_all();
    lock.lock();
  }
  lock.unlock();
  done_cv_.notify_all();
}

Status Journal::Release(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  while (segments_.size() > 1 && segments_[1].first - 1 <= seq) {
    struct stat st;
    if (stat(segments_[0].path.c_str(), &st) == 0) bytes_ -= std::min<uint64_t>(bytes_, st.st_size);
    if (unlink(segments_[0].path.c_str()) != 0 && errno != ENOENT)
      return Status::Error(errno, "unlink " + segments_[0].path);
    segments_.erase(segments_.begin());
  }
  return Status::OK();
}

JournalStats Journal::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  JournalStats s;
  s.written_seq = written_;
  s.durable_seq = durable_;
  s.flushes = flushes_;
  s.max_lag_us = max_lag_us_;
  s.segments = segments_.size();
  s.bytes = bytes_;
  return s;
}

}  // namespace ringfs::meta
