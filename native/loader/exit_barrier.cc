#include "exit_barrier.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace p11 {

namespace {

std::atomic<int> callsInside{0};
std::atomic<bool> exiting{false};

// Long enough for any normal call to finish; a hung HSM call does not hold the exit up for ever.
constexpr auto kDrainLimit = std::chrono::seconds(3);

void DrainAtExit() {
  exiting.store(true);
  auto deadline = std::chrono::steady_clock::now() + kDrainLimit;
  while (callsInside.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

void ExitBarrier::ArmAfterLoad() { std::atexit(DrainAtExit); }

bool ExitBarrier::Enter() {
  callsInside.fetch_add(1);
  if (exiting.load()) {
    callsInside.fetch_sub(1);
    return false;
  }
  return true;
}

void ExitBarrier::Leave() { callsInside.fetch_sub(1); }

}  // namespace p11
