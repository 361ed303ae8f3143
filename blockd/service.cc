#include "blockd/service.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <random>

#include "common/file_util.h"
#include "common/log.h"
#include "gossip/join.h"

namespace ringfs::blockd {


BlockService::BlockService(const ServiceOptions& opts) : opts_(opts) {}

BlockService::~BlockService() { Stop(); }

Result<std::unique_ptr<BlockService>> BlockService::Start(const ServiceOptions& opts) {
  if (opts.dir.empty()) return Status::Error(EINVAL, "no data directory");
  if (opts.meta.empty()) return Status::Error(EINVAL, "no metadata service endpoint");
  if (opts.workers < 1) return Status::Error(EINVAL, "workers must be at least 1");
  std::unique_ptr<BlockService> s(new BlockService(opts));
  BlockStoreOptions store_opts;
  store_opts.capacity = opts.capacity;
  store_opts.early_writeback = opts.early_writeback;
  ASSIGN_OR_RETURN(s->store_, BlockStore::Open(opts.dir, store_opts));
  RETURN_IF_ERROR(s->LoadStoreId());
  RETURN_IF_ERROR(s->LoadNodeId());
  BlockService* self = s.get();
  s->server_ = std::make_unique<rpc::Server>(
      opts.listen, opts.workers,
      [self](rpc::Message&& m, rpc::Responder&& r) { self->Handle(std::move(m), std::move(r)); });
  RETURN_IF_ERROR(s->server_->Start());
  if (opts.advertise.empty() && s->endpoint().find("0.0.0.0") != std::string::npos)
    LOG_WARN("listening on %s: peers cannot reach that; pass --advertise", s->endpoint().c_str());
  s->ResolveMeta();
  s->heartbeat_ = std::thread([self] { self->HeartbeatLoop(); });
  Scrubber::Options so;
  so.rate = opts.scrub_rate;
  so.pass_pause_ms = opts.scrub_pause_ms;
  s->scrub_ = std::make_unique<Scrubber>(
      s->store_.get(), so,
      [self](uint64_t ino, uint64_t index, const wire::BlockVersion& v) { self->ReportBad(ino, index, v); });
  s->scrub_->Start();
  LOG_INFO("blockd: %s serving on %s, node id %u", opts.dir.c_str(), s->endpoint().c_str(),
           s->node_id());
  return s;
}

void BlockService::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (scrub_) scrub_->Stop();
  if (heartbeat_.joinable()) heartbeat_.join();
  {
    std::lock_guard<std::mutex> lock(gossip_mu_);
    if (gossip_) {
      gossip_->Leave();
      gossip_->Stop();
    }
  }
  if (server_) server_->Stop();
  // A clean stop leaves everything written durable.
  if (store_) {
    Status st = store_->Sync();
    if (!st.ok()) LOG_ERROR("sync at stop: %s", st.ToString().c_str());
  }
}

// ------------------------------------------------------------------ serving

void BlockService::Handle(rpc::Message&& m, rpc::Responder&& r) {
  const auto op = static_cast<wire::Op>(m.env.op);
  if (op == wire::Op::kBlockWrite) return HandleWrite(m, r);
  if (op == wire::Op::kBlockRead) return HandleRead(m, r);
  wire::BlockRequest req;
  wire::BlockReply rep;
  Status st;
  switch (op) {
    case wire::Op::kBlockTruncate: {
      st = m.DecodeBody(req);
      if (!st.ok()) break;
      const WriteVersions cut{req.base, req.version};
      const bool versioned = !req.version.absent();
      TruncateResult res;
      st = store_->Truncate(req.ino, req.size, versioned ? &cut : nullptr, &res, req.version.epoch);
      rep.version = res.version;
      rep.refused = versioned && res.cut_exists && !res.cut_applied;
      break;
    }
    case wire::Op::kBlockDelete:
      st = m.DecodeBody(req);
      if (!st.ok()) break;
      if (req.inos.size() > 65536) {
        st = Status::Error(EMSGSIZE, "too many inodes in one delete");
        break;
      }
      req.inos.push_back(req.ino);
      for (uint64_t ino : req.inos) {
        Status one = store_->Delete(ino);
        if (!one.ok() && one.code() != ENOENT) {
          st = one;
          break;
        }
      }
      break;
    case wire::Op::kBlockDrop:
      st = m.DecodeBody(req);
      if (st.ok()) st = store_->Drop(req.ino, req.index, req.base, &rep.version);
      if (st.code() == ESTALE) {
        rep.refused = true;  // written since: the copy stays
        st = Status::OK();
      }
      break;
    case wire::Op::kBlockSync:
      st = store_->Sync();
      break;
    case wire::Op::kBlockStat:
      rep.stats = Info();
      break;
    case wire::Op::kGossipState: {
      std::lock_guard<std::mutex> lock(gossip_mu_);
      if (!gossip_) return r.Reply(Status::Error(EAGAIN, "not a member yet (not registered)"));
      return r.ReplyWith(wire::GossipReply{gossip_->EncodeFullState(), gossip_->endpoint()});
    }
    case wire::Op::kBlockList: {
      st = m.DecodeBody(req);
      if (!st.ok()) break;
      auto indices = store_->List(req.ino);
      if (indices.ok()) rep.indices = std::move(indices).value();
      st = indices.status();
      break;
    }
    default:
      return r.Reply(
          Status::Error(EOPNOTSUPP, "blockd does not serve op " + std::to_string(m.env.op)));
  }
  if (!st.ok()) return r.Reply(st);
  r.ReplyWith(rep);
}

void BlockService::HandleWrite(const rpc::Message& m, rpc::Responder& r) {
  wire::BlockRequest req;
  Status st = m.DecodeBody(req);
  if (!st.ok()) return r.Reply(st);
  if (!m.has_data) return r.Reply(Status::Error(EPROTO, "block write without a data frame"));
  if (m.data.size() > wire::kBlockSize)
    return r.Reply(Status::Error(EMSGSIZE, "block write larger than a block"));
  // Every write names the version it builds on and the one it makes.
  if (req.version.absent() || req.version.writer == 0)
    return r.Reply(Status::Error(EINVAL, "block write without a version"));
  const WriteVersions v{req.base, req.version};
  wire::BlockReply rep;
  if (req.flags & wire::kBlockReplace) {
    if (req.offset != 0 || !req.ranges.empty())
      return r.Reply(Status::Error(EINVAL, "a replacement starts at offset 0"));
    st = store_->Replace(req.ino, req.index, m.data_view(), v, &rep.version);
  } else if (!req.ranges.empty()) {
    if (req.ranges.size() > wire::kMaxWriteRanges)
      return r.Reply(Status::Error(EMSGSIZE, "too many ranges in one write"));
    std::vector<BlockStore::Range> ranges;
    ranges.reserve(req.ranges.size());
    const std::string_view data = m.data_view();
    uint64_t used = 0;
    for (const auto& w : req.ranges) {
      if (w.length > data.size() - used)
        return r.Reply(Status::Error(EINVAL, "write ranges longer than the data"));
      ranges.push_back(BlockStore::Range{w.offset, data.substr(used, w.length)});
      used += w.length;
    }
    if (used != data.size()) return r.Reply(Status::Error(EINVAL, "write ranges shorter than the data"));
    st = store_->WriteRanges(req.ino, req.index, ranges, req.flags, &v, &rep.version);
  } else {
    st = store_->Write(req.ino, req.index, req.offset, m.data_view(), req.flags, &v, &rep.version);
  }
  if (st.code() == ESTALE) {
    rep.refused = true;  // not at the base: the writer learns what it holds
  } else if (!st.ok()) {
    return r.Reply(st);
  }
  r.ReplyWith(rep);
}

void BlockService::HandleRead(const rpc::Message& m, rpc::Responder& r) {
  wire::BlockRequest req;
  Status st = m.DecodeBody(req);
  if (!st.ok()) return r.Reply(st);
  const bool any = req.flags & (wire::kBlockAnyVersion | wire::kBlockVersionOnly);
  const uint32_t len = req.flags & wire::kBlockVersionOnly ? 0 : req.length;
  auto read = store_->Read(req.ino, req.index, req.offset, len, any ? nullptr : &req.base);
  if (!read.ok()) return r.Reply(read.status());
  wire::BlockReply rep;
  rep.length = static_cast<uint32_t>(read->size());
  rep.version = read->version;
  rep.refused = read->refused;
  zmq::message_t data;
  if (read->size() > 0) {
    // Zero copy: the frame owns the buffer the disk read went into.
    const size_t begin = read->begin(), size = read->size();
    char* buf = read->release();
    data = zmq::message_t(
        buf + begin, size, [](void*, void* hint) { std::free(hint); }, buf);
  }
  r.Reply(Status::OK(), codec::Encode(rep), std::move(data), true);
}

wire::NodeInfo BlockService::Info() const {
  const StoreStats s = store_->Stats();
  wire::NodeInfo n;
  n.id = node_id_;
  n.addr = opts_.advertise.empty() ? server_->endpoint() : opts_.advertise;
  n.zone = opts_.zone;
  n.weight = opts_.weight;
  n.capacity = s.capacity;
  n.used = s.used;
  n.blocks = s.blocks;
  n.alive = true;
  n.store_id = store_id_;
  return n;
}

// ------------------------------------------------------------- registration

// The store's identity: random at its creation, so a wiped or replaced data
// directory is never taken for the one the cluster counted copies on.
Status BlockService::LoadStoreId() {
  const std::string path = opts_.dir + "/store_id";
  FILE* f = fopen(path.c_str(), "re");
  if (f) {
    char buf[32];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) n--;
    uint64_t id = 0;
    auto [end, ec] = std::from_chars(buf, buf + n, id, 16);
    if (ec != std::errc() || end != buf + n || id == 0)
      return Status::Error(EINVAL, path + " does not hold a store id");
    store_id_ = id;
    return Status::OK();
  }
  if (errno != ENOENT) return Status::Error(errno, "open " + path);
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{rd()} << 32) ^ rd();
  char hex[32];
  snprintf(hex, sizeof hex, "%016lx\n", (unsigned long)id);
  RETURN_IF_ERROR(WriteFileAtomically(path, hex));
  store_id_ = id;
  return Status::OK();
}

Status BlockService::LoadNodeId() {
  const std::string path = opts_.dir + "/node_id";
  FILE* f = fopen(path.c_str(), "re");
  if (!f) return errno == ENOENT ? Status::OK() : Status::Error(errno, "open " + path);
  char buf[32];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) n--;
  uint32_t id = 0;
  auto [end, ec] = std::from_chars(buf, buf + n, id);
  if (ec != std::errc() || end != buf + n || id == 0)
    return Status::Error(EINVAL, path + " does not hold a node id");
  node_id_ = id;
  return Status::OK();
}

Status BlockService::RegisterOnce() {
  wire::MetaRequest req;
  req.node = Info();
  wire::MetaReply rep;
  RETURN_IF_ERROR(Meta()->Invoke(wire::Op::kRegisterNode, req, &rep, opts_.meta_timeout_ms));
  if (rep.node_id == 0) return Status::Error(EPROTO, "metadata service gave node id 0");
  const uint32_t mine = node_id_;
  if (mine == rep.node_id && !rep.reset_store) {
    EnsureGossip(rep.node_id, rep.gossip_seed, rep.map.epoch);
    return Status::OK();
  }
  if (!rep.reset_store && mine != 0) {
    return Status::Error(EEXIST, "metadata service calls this node " + std::to_string(rep.node_id) +
                                     " but node_id says " + std::to_string(mine));
  }
  // The new id first: a crash before the reset below only leaves copies the
  // cluster does not count on (never served unless at the committed version).
  RETURN_IF_ERROR(WriteFileAtomically(opts_.dir + "/node_id", std::to_string(rep.node_id) + "\n"));
  node_id_ = rep.node_id;
  if (rep.reset_store) {
    // Written off (wiped, or out while away): nothing here is counted on,
    // and keeping it would only waste the disk.
    LOG_WARN("the cluster wrote this store off: discarding its blocks, now node %u", rep.node_id);
    RETURN_IF_ERROR(store_->Reset());
  }
  // Known to gossip (and so alive to the cluster) under the new id only
  // once the reset is done: nothing is placed on it before.
  EnsureGossip(rep.node_id, rep.gossip_seed, rep.map.epoch);
  LOG_INFO("registered with %s as node %u", opts_.meta.c_str(), rep.node_id);
  return Status::OK();
}

// A copy that failed the scrub: the metadata service stops counting it (any
// version when the header is bad: then it is no copy of anything) and the
// repair rewrites it from a good one.
void BlockService::ReportBad(uint64_t ino, uint64_t index, const wire::BlockVersion& version) {
  const uint32_t id = node_id_;
  if (id == 0) return;
  wire::MetaRequest req;
  req.ino = ino;
  req.flags = version.absent() ? uint32_t{wire::kBadCopyAnyVersion} : 0u;
  req.blocks.push_back(wire::BlockState{index, version, {id}});
  wire::MetaReply rep;
  Status st = Meta()->Invoke(wire::Op::kReportBadCopy, req, &rep, opts_.meta_timeout_ms * 5);
  if (!st.ok() && st.code() != ENOENT)
    LOG_WARN("scrub: cannot report ino %lu block %lu: %s", (unsigned long)ino, (unsigned long)index,
             st.ToString().c_str());
}

std::shared_ptr<rpc::Channel> BlockService::Meta() {
  std::lock_guard<std::mutex> lock(meta_mu_);
  return meta_;
}

void BlockService::ResolveMeta() {
  auto r = gossip::ResolveMeta(opts_.meta, opts_.meta_timeout_ms);
  const std::string ep = r.ok() ? *r : opts_.meta;
  std::lock_guard<std::mutex> lock(meta_mu_);
  if (meta_ && meta_->endpoint() == ep) return;
  if (ep != opts_.meta) LOG_INFO("metadata service found at %s through %s", ep.c_str(), opts_.meta.c_str());
  meta_ = std::make_shared<rpc::Channel>(ep);
}

void BlockService::EnsureGossip(uint32_t id, const std::string& seed, uint64_t epoch) {
  std::lock_guard<std::mutex> lock(gossip_mu_);
  if (gossip_ && gossip_id_ == id && (seed.empty() || seed == gossip_seed_)) {
    gossip_->SetMapEpoch(epoch);
    return;
  }
  // A new id (the old one written off), or the metadata service moved to
  // another gossip endpoint (restarted on a wildcard port): start over.
  if (gossip_) gossip_->Stop();
  gossip::Agent::Options go;
  go.self.id = id;
  go.self.role = "blockd";
  go.self.rpc_addr = opts_.advertise.empty() ? server_->endpoint() : opts_.advertise;
  go.self.gossip_addr = opts_.gossip.empty() ? gossip::DefaultEndpoint(go.self.rpc_addr) : opts_.gossip;
  go.self.zone = opts_.zone;
  go.self.weight = opts_.weight;
  go.self.map_epoch = epoch;
  if (!seed.empty()) go.seeds.push_back(seed);
  auto g = std::make_unique<gossip::ZmqGossip>(go);
  Status st = g->Start();
  if (!st.ok()) {
    LOG_WARN("gossip on %s: %s", go.self.gossip_addr.c_str(), st.ToString().c_str());
    return;
  }
  LOG_INFO("gossip on %s as member %u", g->endpoint().c_str(), id);
  gossip_ = std::move(g);
  gossip_id_ = id;
  gossip_seed_ = seed;
}

void BlockService::HeartbeatLoop() {
  constexpr int kLogEvery = 60;  // failures between repeated warnings
  int failures = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Status st = RegisterOnce();
    if (!st.ok() && failures > 0 && failures % 5 == 0) ResolveMeta();
    if (!st.ok() && failures++ % kLogEvery == 0) {
      LOG_WARN("register with %s failed (%d in a row): %s", opts_.meta.c_str(), failures,
               st.ToString().c_str());
    } else if (st.ok() && failures > 0) {
      LOG_INFO("registered with %s again after %d failures", opts_.meta.c_str(), failures);
      failures = 0;
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(opts_.heartbeat_ms), [this] { return stopping_; });
  }
}

}  // namespace ringfs::blockd
