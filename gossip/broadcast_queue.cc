#include "gossip/broadcast_queue.h"

#include <algorithm>
#include <cmath>

#include "gossip/message.h"

namespace ringfs::gossip {

void BroadcastQueue::Push(const Member& m) {
  auto [it, inserted] = items_.try_emplace(m.id);
  if (inserted || it->second.sent > 0) fresh_++;
  it->second = Item{m, 0};
}

std::vector<Member> BroadcastQueue::Take(size_t budget, int limit) {
  std::vector<Item*> order;
  order.reserve(items_.size());
  for (auto& [id, item] : items_) order.push_back(&item);
  std::sort(order.begin(), order.end(), [](const Item* a, const Item* b) {
    return a->sent != b->sent ? a->sent < b->sent : a->m.id < b->m.id;
  });
  std::vector<Member> out;
  std::vector<uint32_t> done;
  for (Item* item : order) {
    const size_t sz = EncodedSize(item->m);
    if (sz > budget) break;
    budget -= sz;
    out.push_back(item->m);
    if (item->sent++ == 0) fresh_--;
    if (item->sent >= limit) done.push_back(item->m.id);
  }
  for (uint32_t id : done) items_.erase(id);
  return out;
}

int RetransmitLimit(int mult, size_t n) {
  return mult * std::max(1, static_cast<int>(std::ceil(std::log10(static_cast<double>(n) + 1))));
}

}  // namespace ringfs::gossip
