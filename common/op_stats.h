// Per-process operation counters: how many of each request this process
// made or served and the time they took, for the breakdowns in
// docs/ARCHITECTURE.md ("Where a small file's time goes"). Lock-free; a
// mount prints them with `getfattr -n ringfs.stats MOUNT` and resets them
// with `setfattr -n ringfs.stats -v reset MOUNT`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace ringfs::stats {

constexpr size_t kSlots = 128;

struct Counter {
  std::atomic<uint64_t> n{0}, ns{0};
};

// A named set of counters indexed by a small integer (an op code).
class Table {
 public:
  using Namer = std::string (*)(size_t);
  Table(const char* name, Namer namer);
  Counter& at(size_t i) { return slots_[i < kSlots ? i : kSlots - 1]; }
  void Add(size_t i, uint64_t ns) {
    Counter& c = at(i);
    c.n.fetch_add(1, std::memory_order_relaxed);
    c.ns.fetch_add(ns, std::memory_order_relaxed);
  }
  void Reset();
  std::string Dump() const;  // "name.op count total_us avg_us" lines, non-zero only
  Table* next = nullptr;

 private:
  const char* name_;
  Namer namer_;
  Counter slots_[kSlots];
};

// Every table of the process, in registration order.
std::string DumpAll();
void ResetAll();

// Adds the time from construction to destruction to one slot.
class Scope {
 public:
  Scope(Table& t, size_t i) : t_(t), i_(i), start_(std::chrono::steady_clock::now()) {}
  ~Scope() {
    t_.Add(i_, std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  Table& t_;
  size_t i_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace ringfs::stats
