#include "blocking_probe.h"

#if defined(__linux__)
#include <sys/resource.h>
#endif

namespace p11 {

namespace {

struct ThreadUsage {
  long voluntarySwitches = 0;
  long long cpuMicros = 0;
};

ThreadUsage Usage() {
  ThreadUsage usage;
#if defined(__linux__)
  struct rusage ru {};
  if (getrusage(RUSAGE_THREAD, &ru) == 0) {
    usage.voluntarySwitches = ru.ru_nvcsw;
    usage.cpuMicros = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
  }
#endif
  return usage;
}

}  // namespace

bool BlockingProbe::Supported() {
#if defined(__linux__)
  return true;
#else
  return false;
#endif
}

void BlockingProbe::Before() {
  ThreadUsage usage = Usage();
  switches_ = usage.voluntarySwitches;
  cpuMicros_ = usage.cpuMicros;
  start_ = std::chrono::steady_clock::now();
}

bool BlockingProbe::WaitedSinceBefore() const {
  auto wall = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start_).count();
  ThreadUsage usage = Usage();
  return usage.voluntarySwitches > switches_ && (usage.cpuMicros - cpuMicros_) * 2 < wall;
}

}  // namespace p11
