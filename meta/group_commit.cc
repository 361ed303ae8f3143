#include "meta/group_commit.h"

#include <vector>

#include "common/log.h"

namespace ringfs::meta {

GroupCommit::GroupCommit(Namespace* ns, size_t max_batch) : ns_(ns), max_batch_(max_batch) {}

GroupCommit::~GroupCommit() { Stop(); }

void GroupCommit::Start() {
  writer_ = std::thread([this] { Loop(); });
}

void GroupCommit::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void GroupCommit::Submit(wire::Op op, wire::MetaRequest req, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_) {
      queue_.push_back(Item{op, std::move(req), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  wire::MetaReply rep;
  done(Status::Error(ESHUTDOWN, "metadata service stopping"), rep);
}

void GroupCommit::Loop() {
  std::deque<Item> items;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      // Writers answered by the last commit send their next request one
      // round trip later; those queued behind it are here already. When
      // there were several, wait (briefly) for all of them, so one sync
      // serves them all instead of the batch splitting into halves that take
      // turns. A lone writer never waits.
      const size_t expect = std::min(max_batch_, last_batch_ + queued_after_);
      if (expect > 1 && queue_.size() < expect) {
        cv_.wait_for(lock, std::chrono::microseconds(kGatherUs),
                     [&] { return stop_ || queue_.size() >= expect; });
      }
      while (!queue_.empty() && items.size() < max_batch_) {
        items.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    last_batch_ = items.size();
    RunBatch(items);
    items.clear();
    std::lock_guard<std::mutex> lock(mu_);
    queued_after_ = queue_.size();
  }
}

void GroupCommit::RunBatch(std::deque<Item>& items) {
  std::vector<wire::MetaReply> replies(items.size());
  std::vector<Namespace::Mutation> batch;
  batch.reserve(items.size());
  for (size_t i = 0; i < items.size(); i++) {
    batch.push_back(Namespace::Mutation{items[i].op, &items[i].req, &replies[i], Status::OK()});
  }
  Status commit = ns_->ApplyBatch(batch);
  batches_++;
  ops_ += items.size();
  if (!commit.ok() && items.size() > 1) {
    // One op may have made the whole batch fail (a full map, say): retry
    // each alone so the others are not refused for it.
    LOG_WARN("batch of %zu failed (%s); retrying one by one", items.size(),
             commit.ToString().c_str());
    for (size_t i = 0; i < items.size(); i++) {
      replies[i] = wire::MetaReply();
      Status st = ns_->Write(items[i].op, items[i].req, &replies[i]);
      if (!st.ok()) replies[i] = wire::MetaReply();
      items[i].done(st, replies[i]);
    }
    return;
  }
  if (!commit.ok()) LOG_ERROR("commit failed: %s", commit.ToString().c_str());
  for (size_t i = 0; i < items.size(); i++) {
    if (!commit.ok()) replies[i] = wire::MetaReply();
    items[i].done(commit.ok() ? batch[i].status : commit, replies[i]);
  }
}

}  // namespace ringfs::meta
