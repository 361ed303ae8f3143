#include "common/op_stats.h"

#include <cstdio>
#include <mutex>

namespace ringfs::stats {

namespace {
std::mutex g_mu;
Table* g_head = nullptr;
Table* g_tail = nullptr;
}  // namespace

Table::Table(const char* name, Namer namer) : name_(name), namer_(namer) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_tail) g_tail->next = this; else g_head = this;
  g_tail = this;
}

void Table::Reset() {
  for (auto& c : slots_) {
    c.n.store(0, std::memory_order_relaxed);
    c.ns.store(0, std::memory_order_relaxed);
  }
}

std::string Table::Dump() const {
  std::string out;
  for (size_t i = 0; i < kSlots; i++) {
    const uint64_t n = slots_[i].n.load(std::memory_order_relaxed);
    if (n == 0) continue;
    const uint64_t ns = slots_[i].ns.load(std::memory_order_relaxed);
    char line[160];
    snprintf(line, sizeof(line), "%s.%s %lu %.0f %.1f\n", name_, namer_(i).c_str(), (unsigned long)n,
             ns / 1e3, ns / 1e3 / static_cast<double>(n));
    out += line;
  }
  return out;
}

std::string DumpAll() {
  std::lock_guard<std::mutex> lock(g_mu);
  std::string out = "# table.op count total_us avg_us\n";
  for (Table* t = g_head; t; t = t->next) out += t->Dump();
  return out;
}

void ResetAll() {
  std::lock_guard<std::mutex> lock(g_mu);
  for (Table* t = g_head; t; t = t->next) t->Reset();
}

}  // namespace ringfs::stats
