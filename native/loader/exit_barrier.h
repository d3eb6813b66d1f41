// Calls inside PKCS#11 modules when the process exits. process.exit() runs the C exit handlers
// (a module's static destructors among them) while engine threads may still be inside C_Sign:
// SoftHSM2 then frees what those calls use. A handler registered after each module is loaded,
// and again after its first C_Initialize (which may load more, and register their handlers),
// runs before that module's own (exit handlers run in reverse order): it stops new calls and
// waits, briefly, for the ones inside to return.
#pragma once

namespace p11 {

class ExitBarrier {
 public:
  // Registers the drain handler; call after each fresh dlopen and its first C_Initialize.
  static void ArmAfterLoad();
  // Every call into a module passes through these; Enter is false once the process is exiting.
  static bool Enter();
  static void Leave();
};

// Holds the barrier for one call; `entered()` is false when the process is exiting.
class ExitBarrierPass {
 public:
  ExitBarrierPass() : entered_(ExitBarrier::Enter()) {}
  ~ExitBarrierPass() {
    if (entered_) ExitBarrier::Leave();
  }
  ExitBarrierPass(const ExitBarrierPass&) = delete;
  ExitBarrierPass& operator=(const ExitBarrierPass&) = delete;
  bool entered() const { return entered_; }

 private:
  bool entered_;
};

}  // namespace p11
