// Whether a PKCS#11 call blocked (waited on I/O or a lock) rather than computed: the engine runs
// as many threads as there are cores for a module that computes (more would only queue on the
// cores and delay the JS thread), and more for one that waits (a network HSM), where extra
// threads hide the latency. A call blocked if its thread gave up the CPU voluntarily during it.
#pragma once

namespace p11 {

class BlockingProbe {
 public:
  // False where the platform cannot tell (then the engine never lowers its thread limit).
  static bool Supported();
  // Around one call on the calling thread.
  void Before();
  bool BlockedSinceBefore() const;

 private:
  long switches_ = 0;
};

}  // namespace p11
