#include "blocking_probe.h"

#if defined(__linux__)
#include <sys/resource.h>
#endif

namespace p11 {

namespace {

long VoluntarySwitches() {
#if defined(__linux__)
  struct rusage usage {};
  if (getrusage(RUSAGE_THREAD, &usage) == 0) return usage.ru_nvcsw;
#endif
  return 0;
}

}  // namespace

bool BlockingProbe::Supported() {
#if defined(__linux__)
  return true;
#else
  return false;
#endif
}

void BlockingProbe::Before() { switches_ = VoluntarySwitches(); }

bool BlockingProbe::BlockedSinceBefore() const { return VoluntarySwitches() > switches_; }

}  // namespace p11
