#include "thread_policy.h"

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace p11 {

bool UseBatchScheduling() {
#if defined(__linux__) && defined(SCHED_BATCH)
  // Unprivileged: moving between SCHED_OTHER and SCHED_BATCH needs no capability (sched(7)).
  sched_param param{};
  param.sched_priority = 0;
  return pthread_setschedparam(pthread_self(), SCHED_BATCH, &param) == 0;
#else
  return false;
#endif
}

void UseDefaultScheduling() {
#if defined(__linux__)
  sched_param param{};
  param.sched_priority = 0;
  pthread_setschedparam(pthread_self(), SCHED_OTHER, &param);
#endif
}

}  // namespace p11
