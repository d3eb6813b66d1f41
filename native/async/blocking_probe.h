// Whether a PKCS#11 call waited (on the network, a device, a slow lock) rather than computed:
// the engine runs one call per core for a module that computes (more threads would only queue on
// the cores and delay the JS thread), and more for one that waits (a network HSM), where extra
// threads hide the latency. A call waited if its thread gave up the CPU voluntarily during it
// AND was off the CPU for more than half of it: a short wait for a lock inside a module that
// otherwise computes (SoftHSM2's object-file locks) does not count.
#pragma once

#include <chrono>

namespace p11 {

class BlockingProbe {
 public:
  // False where the platform cannot tell (then the engine never lowers its thread limit).
  static bool Supported();
  // Around one call on the calling thread.
  void Before();
  bool WaitedSinceBefore() const;

 private:
  long switches_ = 0;
  long long cpuMicros_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace p11
