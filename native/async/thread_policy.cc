#include "thread_policy.h"

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#endif

#if defined(__APPLE__)
#include <pthread.h>
#endif

#include <thread>

namespace p11 {

unsigned UsableCores() {
#if defined(__linux__) && defined(CPU_COUNT)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return static_cast<unsigned>(CPU_COUNT(&set));
#endif
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

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

unsigned LowerWorkerPriority(unsigned increment) {
#if defined(__linux__)
  if (increment == 0) return 0;
  // PRIO_PROCESS with a thread id sets that thread's nice value alone (setpriority(2), Linux).
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  int current = getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return 0;
  int target = std::min(19, current + static_cast<int>(increment));
  if (setpriority(PRIO_PROCESS, tid, target) != 0) return 0;
  return static_cast<unsigned>(target - current);
#else
  (void)increment;
  return 0;
#endif
}

void UseDefaultScheduling() {
#if defined(__linux__)
  sched_param param{};
  param.sched_priority = 0;
  pthread_setschedparam(pthread_self(), SCHED_OTHER, &param);
#endif
}

void NameThread(const char* name) {
#if defined(__linux__)
  pthread_setname_np(pthread_self(), name);  // fails only for names over 15 characters
#elif defined(__APPLE__)
  pthread_setname_np(name);  // macOS names only the calling thread
#else
  (void)name;
#endif
}

}  // namespace p11
