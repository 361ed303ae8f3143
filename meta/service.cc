#include "meta/service.h"

#include <algorithm>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_util.h"
#include "common/log.h"
#include "gossip/join.h"

namespace ringfs::meta {

using wire::Op;

namespace {

void Send(rpc::Responder& r, const Status& st, const wire::MetaReply& rep) {
  if (st.ok()) {
    r.ReplyWith(rep);
  } else {
    r.Reply(st);
  }
}

}  // namespace


Result<std::unique_ptr<Service>> Service::Open(ServiceOptions opts) {
  if (opts.dir.empty()) return Status::Error(EINVAL, "--dir is required");
  if (opts.replicas == 0) return Status::Error(EINVAL, "--replicas must be at least 1");
  if (opts.workers < 0) return Status::Error(EINVAL, "--workers must be at least 0");
  if (opts.node_timeout_ms < 1) return Status::Error(EINVAL, "--node-timeout-ms must be positive");
  if (opts.lock_wait_ms < 1) return Status::Error(EINVAL, "--lock-wait-ms must be positive");
  std::unique_ptr<Service> s(new Service(std::move(opts)));
  s->locks_ = std::make_unique<LockTable>(std::chrono::milliseconds(s->opts_.lock_wait_ms));
  Namespace::Options nso;
  nso.dir = s->opts_.dir;
  nso.replicas = s->opts_.replicas;
  nso.durability.strict = s->opts_.strict;
  nso.durability.flush_interval_ms = s->opts_.flush_interval_ms;
  nso.durability.checkpoint_ms = s->opts_.checkpoint_ms;
  nso.durability.checkpoint_bytes = s->opts_.checkpoint_bytes;
  nso.durability.segment_bytes = s->opts_.segment_bytes;
  ASSIGN_OR_RETURN(s->ns_, Namespace::Open(nso));
  NodeRegistry::Options no;
  no.replicas = s->opts_.replicas;
  no.node_timeout_ms = s->opts_.node_timeout_ms;
  no.down_out_ms = s->opts_.down_out_ms;
  Service* me = s.get();
  no.gossip_alive = [me](uint32_t id) -> std::optional<bool> {
    gossip::ZmqGossip* g = me->gossip_live_.load();
    if (!g) return std::nullopt;
    auto m = g->Get(id);
    if (!m) return std::nullopt;
    return m->usable();
  };
  no.on_epoch = [me](uint64_t epoch) {
    if (gossip::ZmqGossip* g = me->gossip_live_.load()) g->SetMapEpoch(epoch);
  };
  ASSIGN_OR_RETURN(s->nodes_, NodeRegistry::Open(&s->ns_->env(), no));
  BlockReclaimer::Options go;
  go.interval_ms = s->opts_.gc_interval_ms;
  go.move_rate = s->opts_.move_rate;
  go.idle_pass_ms = s->opts_.idle_pass_ms;
  s->gc_ = std::make_unique<BlockReclaimer>(s->ns_.get(), s->nodes_.get(), go);
  ASSIGN_OR_RETURN(std::vector<uint64_t> sessions, s->ns_->Sessions());
  s->awaiting_.insert(sessions.begin(), sessions.end());
  s->recorded_ = s->awaiting_;
  Service* self = s.get();
  s->server_ = std::make_unique<rpc::Server>(
      s->opts_.listen, s->opts_.workers,
      [self](rpc::Message&& m, rpc::Responder&& r) { self->Handle(std::move(m), std::move(r)); });
  return s;
}

Service::~Service() { Stop(); }

Status Service::Start() {
  gc_->Start();
  sweeper_ = std::thread([this] { SweepLoop(); });
  RETURN_IF_ERROR(server_->Start());
  RETURN_IF_ERROR(StartGossip());
  RETURN_IF_ERROR(events_.Start(opts_.events.empty() ? gossip::DefaultEndpoint(endpoint()) : opts_.events));
  if (!opts_.addr_file.empty())
    RETURN_IF_ERROR(WriteFileAtomically(opts_.addr_file, endpoint() + "\n"));
  LOG_INFO("ringfs-meta serving %s on %s", opts_.dir.c_str(), endpoint().c_str());
  return Status::OK();
}

Status Service::StartGossip() {
  gossip::Agent::Options go;
  go.self.id = wire::kMetaGossipId;
  go.self.role = "meta";
  go.self.rpc_addr = endpoint();
  go.self.gossip_addr = opts_.gossip.empty() ? gossip::DefaultEndpoint(endpoint()) : opts_.gossip;
  go.self.weight = 0;
  go.self.map_epoch = nodes_->epoch();
  gossip_ = std::make_unique<gossip::ZmqGossip>(go);
  RETURN_IF_ERROR(gossip_->Start());
  gossip_live_ = gossip_.get();
  gossip_->SetMapEpoch(nodes_->epoch());
  LOG_INFO("gossip on %s", gossip_->endpoint().c_str());
  return Status::OK();
}

void Service::Stop() {
  // No new requests, then finish the queued mutations (their replies are
  // dropped with the server, but what was acknowledged stays acknowledged).
  if (server_) server_->Stop();
  if (gossip_) {
    gossip_live_ = nullptr;
    gossip_->Leave();
    gossip_->Stop();
  }
  events_.Stop();
  {
    std::lock_guard<std::mutex> lock(sweep_mu_);
    sweep_stop_ = true;
  }
  sweep_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  if (gc_) gc_->Stop();
}

// Sessions that stopped beating are dropped with their opens, and unlinked
// files that no session has open are reclaimed: what a crashed client held,
// and what was left when the service restarted (once every live client had
// time to re-announce its opens).
// After a restart, sessions recorded before it may hold files open that
// they have not re-announced yet: until each has been heard from (or a
// session timeout passed), nothing is reclaimed.
bool Service::InGrace() {
  std::lock_guard<std::mutex> lock(session_mu_);
  if (awaiting_.empty()) return false;
  if (std::chrono::steady_clock::now() - started_ < std::chrono::milliseconds(opts_.session_timeout_ms))
    return true;
  awaiting_.clear();
  return false;
}

void Service::SeeSession(uint64_t session, bool full_list) {
  if (session == 0) return;
  {
    std::lock_guard<std::mutex> lock(session_mu_);
    // Only a beat says everything the session has open: an open or a close
    // heard first (a close queued before the restart, say) does not end its
    // grace, or the sweep would reclaim a file it still has open.
    if (full_list) awaiting_.erase(session);
    if (!recorded_.insert(session).second) return;
  }
  Status st = ns_->RecordSession(session, true);
  if (!st.ok()) LOG_WARN("cannot record session %lx: %s", (unsigned long)session, st.ToString().c_str());
}

void Service::SweepLoop() {
  using namespace std::chrono;
  std::unique_lock<std::mutex> lock(sweep_mu_);
  while (!sweep_cv_.wait_for(lock, milliseconds(opts_.sweep_interval_ms), [&] { return sweep_stop_; })) {
    lock.unlock();
    const auto now = steady_clock::now();
    std::vector<uint64_t> expired;
    for (uint64_t ino : open_files_.Expire(now - milliseconds(opts_.session_timeout_ms), &expired))
      Reclaim(ino);
    for (uint64_t session : expired) {
      {
        std::lock_guard<std::mutex> slock(session_mu_);
        recorded_.erase(session);
      }
      // A mount that died or was cut off: its locks go, its waiters move on.
      locks_->DropSession(session);
      (void)ns_->RecordSession(session, false);
    }
    if (!InGrace()) {
      auto orphans = ns_->Orphans(1024);
      if (orphans.ok()) {
        for (uint64_t ino : *orphans)
          if (!open_files_.IsOpen(ino)) Reclaim(ino);
      }
    }
    lock.lock();
  }
}

// Until the service has been up a full session timeout, a client that has
// a file open may not have re-announced it yet: the sweep reclaims then.
bool Service::Reclaim(uint64_t ino, std::shared_ptr<rpc::Responder> resp, bool after_reply) {
  auto done = [resp] {
    if (resp) Send(*resp, Status::OK(), wire::MetaReply{});
    return false;
  };
  auto orphan = ns_->IsOrphan(ino);
  if (InGrace() || !orphan.ok() || !*orphan || !open_files_.BeginReclaim(ino)) return done();
  if (after_reply) {
    // Claimed (no open can count it now): the removal itself goes after
    // the reply. Should it fail, the orphan stays for the sweep.
    server_->AfterReplies([this, ino] {
      wire::MetaRequest req;
      req.ino = ino;
      wire::MetaReply rep;
      Status st = ns_->Write(Op::kReclaim, req, &rep);
      open_files_.EndReclaim(ino);
      if (!st.ok()) LOG_WARN("reclaim of %lu after its unlink: %s", (unsigned long)ino, st.ToString().c_str());
      if (st.ok() && rep.attr.ino != 0) gc_->Kick();
    });
    return true;
  }
  wire::MetaRequest req;
  req.ino = ino;
  wire::MetaReply rep;
  Status st = ns_->Write(Op::kReclaim, req, &rep);
  open_files_.EndReclaim(ino);
  if (st.ok() && rep.attr.ino != 0) gc_->Kick();
  if (resp) Acknowledge(std::move(*resp), st, wire::MetaReply{});
  return st.ok() && rep.attr.ino != 0;
}

// After the change is applied: a mount that hears of it and asks again
// finds it. The reply carries the event's seq, so the changer knows what it
// was told is current once it has heard that far (fuse/dir_cache.h).
void Service::PublishChanges(Op op, const wire::MetaRequest& req, wire::MetaReply* rep) {
  std::vector<wire::DirChange> changes;
  std::vector<uint64_t> inodes;
  auto touched = [&](uint64_t ino) {
    if (ino != 0 && std::find(inodes.begin(), inodes.end(), ino) == inodes.end()) inodes.push_back(ino);
  };
  switch (op) {
    case Op::kMknod:
    case Op::kMkdir:
    case Op::kSymlink:
    case Op::kUnlink:
    case Op::kRmdir:
      changes.push_back({req.parent, req.name});
      touched(req.parent);
      break;
    case Op::kLink:
      changes.push_back({req.newparent, req.newname});
      touched(req.newparent);
      touched(req.ino);
      break;
    case Op::kRename:
      changes.push_back({req.parent, req.name});
      changes.push_back({req.newparent, req.newname});
      touched(req.parent);
      touched(req.newparent);
      touched(rep->moved);
      break;
    case Op::kSetAttr:
    case Op::kCommitWrite:
    case Op::kSetXattr:
    case Op::kRemoveXattr:
      touched(req.ino);
      break;
    case Op::kTouchAtimes:
      for (const auto& t : req.atimes) touched(t.ino);
      break;
    default:
      return;
  }
  touched(rep->attr.ino);  // what was made, or lost a name, or changed
  rep->event_seq = events_.Publish(req.session, std::move(changes), std::move(inodes));
  rep->event_incarnation = events_.incarnation();
}

void Service::Acknowledge(rpc::Responder&& r, const Status& st, wire::MetaReply&& rep, bool sync) {
  Journal& j = ns_->env().journal();
  if (!st.ok() || (!j.strict() && !sync)) {
    rep.durable_seq = j.durable_seq();
    return Send(r, st, rep);
  }
  auto resp = std::make_shared<rpc::Responder>(std::move(r));
  auto reply = std::make_shared<wire::MetaReply>(std::move(rep));
  j.WhenDurable(reply->seq ? reply->seq : j.written_seq(), [resp, reply, &j] {
    reply->durable_seq = j.durable_seq();
    Send(*resp, Status::OK(), *reply);
  });
}

wire::JournalState Service::journal_state() const {
  lmdb::StoreStats s = ns_->env().stats();
  wire::JournalState out;
  out.written_seq = s.journal.written_seq;
  out.durable_seq = s.journal.durable_seq;
  out.checkpoint_seq = s.checkpoint_seq;
  out.flushes = s.journal.flushes;
  out.checkpoints = s.checkpoints;
  out.max_lag_us = s.journal.max_lag_us;
  out.max_checkpoint_us = s.max_checkpoint_us;
  out.segments = s.journal.segments;
  out.bytes = s.journal.bytes;
  out.strict = ns_->env().strict();
  return out;
}

void Service::Handle(rpc::Message&& m, rpc::Responder&& r) {
  const Op op = static_cast<Op>(m.env.op);
  const bool mutation = Namespace::IsMutation(op);
  if (op == Op::kGossipState) {
    gossip::ZmqGossip* g = gossip_live_.load();
    if (!g) return r.Reply(Status::Error(EAGAIN, "gossip not started"));
    return r.ReplyWith(wire::GossipReply{g->EncodeFullState(), g->endpoint()});
  }
  if (op == Op::kSyncMeta) {
    // Everything acknowledged before this request, to whichever client.
    Journal& j = ns_->env().journal();
    auto resp = std::make_shared<rpc::Responder>(std::move(r));
    j.WhenDurable(j.written_seq(), [this, resp] {
      wire::MetaReply rep;
      rep.journal = journal_state();
      rep.durable_seq = rep.journal.durable_seq;
      Send(*resp, Status::OK(), rep);
    });
    return;
  }
  if (op == Op::kLock || op == Op::kGetLock) {
    wire::MetaRequest req;
    Status st = m.DecodeBody(req);
    if (!st.ok()) return r.Reply(st);
    return HandleLock(op, req, std::move(r));
  }
  const bool cluster_op = op == Op::kRegisterNode || op == Op::kGetMap || op == Op::kNodeAdd ||
                          op == Op::kNodeRemove || op == Op::kClusterStatus;
  if (!mutation && !Namespace::IsRead(op) && !cluster_op && op != Op::kClose &&
      op != Op::kSessionBeat) {
    return r.Reply(Status::Error(EOPNOTSUPP, "op " + std::to_string(m.env.op)));
  }
  wire::MetaRequest req;
  if (op != Op::kGetMap && op != Op::kClusterStatus) {  // these need no fields: any body will do
    Status st = m.DecodeBody(req);
    if (!st.ok()) return r.Reply(st);
  }
  const auto now = OpenFiles::Clock::now();
  // A session's first beat after a restart brings back its locks.
  if (op == Op::kSessionBeat && !req.held_locks.empty()) ReclaimLocks(req);
  if (op == Op::kClose || op == Op::kSessionBeat || req.opens != 0)
    SeeSession(req.session, /*full_list=*/op == Op::kSessionBeat);
  // The last close of a file unlinked meanwhile (perhaps by another client)
  // reclaims it; Reclaim itself checks that it is an orphan.
  auto close_all = [&](const std::vector<uint64_t>& inos) {
    for (uint64_t ino : inos)
      if (open_files_.Close(req.session, ino, now) == 0) Reclaim(ino);
  };
  // Closes riding on an open or a create: the same as a kClose first.
  if (req.opens != 0 && (op == Op::kGetAttr || op == Op::kMknod)) close_all(req.closes);
  if (op == Op::kClose) {
    // Several at once (open_inos), or one (ino).
    if (req.open_inos.empty()) req.open_inos.push_back(req.ino);
    close_all(req.open_inos);
    return Send(r, Status::OK(), wire::MetaReply{});
  }
  if (op == Op::kSessionBeat) {
    for (uint64_t ino : open_files_.Beat(req.session, req.open_inos, now)) Reclaim(ino);
    wire::MetaReply rep;
    rep.session_timeout_ms = static_cast<uint32_t>(opts_.session_timeout_ms);
    return Send(r, Status::OK(), rep);
  }
  if (op == Op::kReclaim) {  // deferred to the last close when open anywhere
    (void)Reclaim(req.ino, std::make_shared<rpc::Responder>(std::move(r)));
    return;
  }
  if (mutation) {
    wire::MetaReply rep;
    Status st = ns_->Write(op, req, &rep);
    if (st.ok() && op == Op::kSetAttr && req.lock.kind == wire::LockKind::kTruncate && req.lock.type == wire::LockType::kUnlock)
      (void)locks_->Acquire(req.session, req.ino, req.lock, nullptr);  // the truncation is over
    if (!st.ok()) rep = wire::MetaReply();
    if (st.ok() && op == Op::kMknod && req.opens != 0)
      open_files_.Open(req.session, rep.attr.ino, OpenFiles::Clock::now());
    if (st.ok()) PublishChanges(op, req, &rep);
    // The last name of a file open nowhere: reclaimed now, in this request,
    // instead of by a kReclaim when the remover's kernel forgets it.
    if (st.ok() && (op == Op::kUnlink || op == Op::kRename) && rep.attr.ino != 0 && rep.attr.nlink == 0 &&
        !S_ISDIR(rep.attr.mode))
      rep.reclaimed = Reclaim(rep.attr.ino, nullptr, /*after_reply=*/true);
    return Acknowledge(std::move(r), st, std::move(rep), req.sync);
  }
  // An open is counted before the inode is read, so a reclaim cannot delete
  // it between the two (OpenFiles::BeginReclaim).
  const bool opening = op == Op::kGetAttr && req.opens != 0;
  if (opening && !open_files_.Open(req.session, req.ino, now))
    return r.Reply(Status::Error(ENOENT, "file is being removed"));
  wire::MetaReply rep;
  Status st = HandleDirect(op, req, &rep);
  if (!st.ok() && opening) open_files_.Close(req.session, req.ino, now);
  // A membership change is acted on by block daemons (a replaced store
  // discards its blocks) and the mover: answered once it is on disk, so a
  // power loss cannot take back a change something already acted on.
  const bool changed_node =
      op == Op::kRegisterNode && (rep.reset_store || rep.node_id != req.node.id);  // not a heartbeat
  const bool node_change = (op == Op::kNodeAdd || op == Op::kNodeRemove) && !(req.flags & wire::kDryRun);
  if (st.ok() && (changed_node || node_change)) return Acknowledge(std::move(r), st, std::move(rep), true);
  Send(r, st, rep);
}

// Locks live in memory (common/lock_table.h): a request that must wait is
// answered from the lock table when granted, cancelled or timed out.
void Service::HandleLock(Op op, const wire::MetaRequest& req, rpc::Responder&& r) {
  if (req.session == 0) return r.Reply(Status::Error(EINVAL, "locks need a session"));
  if (req.lock.kind > wire::LockKind::kTruncate || req.lock.type > wire::LockType::kWrite)
    return r.Reply(Status::Error(EINVAL, "bad lock kind or type"));
  // After a restart, until every session it knew has beaten (and so taken
  // its locks back), no new lock is granted: it could be one of theirs.
  if (op == Op::kLock && req.lock.type != wire::LockType::kUnlock && !req.lock.cancel && InGrace())
    return r.Reply(req.lock.wait ? Status::Error(ETIMEDOUT, "restarted: sessions are taking their locks back")
                                 : Status::Error(EAGAIN, "restarted: sessions are taking their locks back"));
  if (op == Op::kGetLock) {
    wire::MetaReply rep;
    rep.lock = locks_->Test(req.session, req.ino, req.lock);
    return r.ReplyWith(rep);
  }
  auto resp = std::make_shared<rpc::Responder>(std::move(r));
  Status st = locks_->Acquire(req.session, req.ino, req.lock,
                              [resp](const Status& done) { Send(*resp, done, wire::MetaReply{}); });
  if (st.code() != EINPROGRESS) Send(*resp, st, wire::MetaReply{});
}

void Service::ReclaimLocks(const wire::MetaRequest& req) {
  {
    std::lock_guard<std::mutex> lock(session_mu_);
    // Only before the session's first beat since the restart: later beats'
    // lists may be older than an unlock that overtook them.
    if (!awaiting_.count(req.session)) return;
  }
  size_t taken = 0;
  for (const wire::InodeLock& l : req.held_locks) {
    wire::LockSpec lk = l.lock;
    lk.wait = false;
    lk.cancel = false;
    if (lk.type == wire::LockType::kUnlock || lk.kind == wire::LockKind::kTruncate) continue;
    Status st = locks_->Acquire(req.session, l.ino, lk, nullptr);
    if (st.ok()) {
      taken++;
    } else {
      LOG_WARN("session %lx cannot take back its lock on %lu: %s", (unsigned long)req.session, (unsigned long)l.ino,
               st.ToString().c_str());
    }
  }
  LOG_INFO("session %lx took back %zu of %zu locks", (unsigned long)req.session, taken, req.held_locks.size());
}

Status Service::HandleDirect(Op op, const wire::MetaRequest& req, wire::MetaReply* rep) {
  switch (op) {
    case Op::kRegisterNode: {
      ASSIGN_OR_RETURN(auto reg, nodes_->Register(req.node));
      rep->node_id = reg.id;
      rep->reset_store = reg.reset_store;
      rep->map = nodes_->Map();
      if (gossip::ZmqGossip* g = gossip_live_.load()) rep->gossip_seed = g->endpoint();
      return Status::OK();
    }
    case Op::kGetMap:
      rep->map = nodes_->Map();
      rep->events_addr = events_.endpoint();
      rep->event_incarnation = events_.incarnation();
      rep->event_seq = events_.seq();
      return Status::OK();
    case Op::kNodeAdd:
    case Op::kNodeRemove: {
      const bool dry = req.flags & wire::kDryRun;
      const wire::ClusterMap before = nodes_->Map();
      Result<wire::ClusterMap> after =
          op == Op::kNodeAdd
              ? nodes_->Admit(req.node.id, req.node.addr, req.node.zone, req.node.weight, dry)
              : nodes_->Remove(req.node.id, req.flags & wire::kForce, dry);
      if (!after.ok()) return after.status();
      // Planned against the records as they are (an inline scan: admin ops are rare).
      ASSIGN_OR_RETURN(rep->plan, gc_->Plan(before, *after));
      rep->map = *after;
      if (!dry) gc_->Kick();
      return Status::OK();
    }
    case Op::kClusterStatus:
      rep->map = nodes_->Map();
      rep->health = gc_->health();
      rep->journal = journal_state();
      rep->value = stats::DumpAll();  // requests served, by op
      return Status::OK();
    case Op::kStatfs: {
      RETURN_IF_ERROR(ns_->Read(op, req, rep));
      // Usable space: raw space over the copies each block takes (no more
      // copies than there are nodes to hold them).
      NodeRegistry::Space sp = nodes_->AliveSpace();
      uint64_t copies = std::max<uint64_t>(1, std::min<uint64_t>(nodes_->replicas(), sp.alive));
      rep->statfs.total_bytes = sp.capacity / copies;
      rep->statfs.free_bytes = (sp.capacity - sp.used) / copies;
      return Status::OK();
    }
    default:
      // Read before the answer: every event up to it is in the answer.
      rep->event_incarnation = events_.incarnation();
      rep->event_seq = events_.seq();
      {
        const uint64_t seq = rep->event_seq, inc = rep->event_incarnation;
        RETURN_IF_ERROR(ns_->Read(op, req, rep));
        rep->event_seq = seq;
        rep->event_incarnation = inc;
      }
      return Status::OK();
  }
}

}  // namespace ringfs::meta
