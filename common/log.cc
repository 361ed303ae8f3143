#include "common/log.h"

#include <cstdarg>
#include <ctime>
#include <mutex>

namespace ringfs {

LogLevel g_log_level = LogLevel::kInfo;

void LogLine(LogLevel level, const char* fmt, ...) {
  static const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  fprintf(stderr, "%02d:%02d:%02d.%03ld %s %s\n", t.tm_hour, t.tm_min, t.tm_sec,
          ts.tv_nsec / 1000000, kNames[static_cast<int>(level)], msg);
}

}  // namespace ringfs
