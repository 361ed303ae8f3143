#include "common/codec.h"

namespace ringfs::codec {

namespace {
thread_local const SpanBuf* t_current = nullptr;
}

size_t Remaining() { return t_current ? t_current->remaining() : 0; }

RemainingScope::RemainingScope(const SpanBuf* buf) : prev_(t_current) { t_current = buf; }
RemainingScope::~RemainingScope() { t_current = prev_; }

}  // namespace ringfs::codec
