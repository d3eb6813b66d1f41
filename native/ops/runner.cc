#include "runner.h"

#include <algorithm>
#include <chrono>

#include "../async/thread_policy.h"

namespace p11 {

Engine& GetEngine(Napi::Env env) {
  AddonData& data = GetAddonData(env);
  if (!data.engine) {
    unsigned threads = data.threadCount;
    if (threads == 0) {
      // Enough threads to keep every core busy and to hide a network HSM's latency.
      threads = std::max(8u, UsableCores() * 2);
    }
    data.engine = Engine::Create(env, {threads, data.workerNice, data.workerYield, std::chrono::milliseconds(data.threadIdleMs)});
  }
  return *data.engine;
}

Napi::Buffer<CK_BYTE> BytesToJs(Napi::Env env, std::vector<CK_BYTE>& bytes) {
  return Napi::Buffer<CK_BYTE>::Copy(env, bytes.data(), bytes.size());
}

}  // namespace p11
