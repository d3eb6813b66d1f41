// The baseline: how fast this token signs with no binding in the way. C++ only for the
// project's own PKCS#11 headers (native/pkcs11); the loop itself is plain C.
//
// dlopen the module, C_Initialize with CKF_OS_LOCKING_OK and the binding's own mutex functions
// (native/loader/spinning_mutex.h, as the binding does by default; --os-locking leaves them
// out, so the module uses its own OS locks), then per thread: open a session, log
// in (token-wide, so "already logged in" is fine), find the private key by label, and sign in a
// tight loop (C_SignInit + C_Sign, the same two calls every binding makes) until told to stop.
// The main thread lets the threads warm up, then counts signatures over a fixed window.
// With --wake-every N the loop also stands in for an event loop's cost (see Listen below).
// Output: one JSON object on stdout. The PIN comes from the environment (RAW_SIGN_PIN), never
// argv, which other users can read in ps.
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "generated/constants.h"
#include "loader/spinning_mutex.h"

using namespace ck;

namespace {

CK_FUNCTION_LIST* f = nullptr;

[[noreturn]] void Fail(const char* what, CK_RV rv) {
  // JSON on stdout even for errors, so the caller has one thing to parse.
  printf("{\"error\":\"%s failed: CKR 0x%lx\"}\n", what, rv);
  fflush(stdout);
  _exit(1);
}

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

long RssKb() {
  FILE* statm = fopen("/proc/self/statm", "r");
  if (!statm) return -1;
  long size = 0, resident = 0;
  if (fscanf(statm, "%ld %ld", &size, &resident) != 2) resident = -1;
  fclose(statm);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

struct Config {
  std::string module, token, keyLabel, mechanism, pin;
  int threads = 1;
  double duration = 2, warmup = 0.5;
  bool osLocking = false;  // --os-locking: no mutex functions at C_Initialize
  int wakeEvery = 0;   // signatures (all threads together) per wake-up of the listener; 0: none
  double wakeWorkUs = 0;  // the listener's busy time per signal, in µs
};

struct alignas(64) Worker {  // one cache line each: the counters are written in the hot loop
  pthread_t thread;
  std::atomic<unsigned long> count{0};
  std::vector<double> latencies;  // seconds, recorded only inside the measured window
  CK_SESSION_HANDLE session = 0;
  CK_OBJECT_HANDLE key = 0;
};

Config config;
CK_SLOT_ID slot;
CK_MECHANISM mechanism;
CK_RSA_PKCS_PSS_PARAMS pss{CKM_SHA256, CKG_MGF1_SHA256, 32};
std::vector<CK_BYTE> data;
std::atomic<bool> measuring{false}, stop{false};
pthread_barrier_t ready;
int wakePipe[2] = {-1, -1};
std::atomic<unsigned long> signedSoFar{0};
std::atomic<unsigned long> wakeups{0};

CK_SLOT_ID FindSlot(const std::string& label) {
  CK_ULONG count = 0;
  CK_RV rv = f->C_GetSlotList(1, nullptr, &count);
  if (rv != CKR_OK) Fail("C_GetSlotList", rv);
  std::vector<CK_SLOT_ID> slots(count);
  rv = f->C_GetSlotList(1, slots.data(), &count);
  if (rv != CKR_OK) Fail("C_GetSlotList", rv);
  char padded[32];
  memset(padded, ' ', sizeof padded);
  memcpy(padded, label.data(), std::min(label.size(), sizeof padded));
  for (CK_ULONG i = 0; i < count; i++) {
    CK_TOKEN_INFO info;
    if (f->C_GetTokenInfo(slots[i], &info) == CKR_OK && memcmp(info.label, padded, 32) == 0) return slots[i];
  }
  printf("{\"error\":\"no token labelled '%s'\"}\n", label.c_str());
  _exit(1);
}

void Spin(double seconds) {
  double until = Now() + seconds;
  while (Now() < until) {
  }
}

// What a binding's event loop costs the signing threads merely by being woken, apart from its
// own work: the threads wake this one through a pipe after every --wake-every signatures (as a
// binding wakes its JS thread for each batch of answers), and it keeps its core for
// --wake-work-us µs per signal it reads: one that fell behind reads several at once and works
// for each, as a JS thread settles every answer it finds. On a machine with as many cores as
// signing threads, each wake-up takes a core from a thread that signs, at whatever point that
// thread has reached.
void* Listen(void*) {
  char bytes[256];
  for (;;) {
    ssize_t n = read(wakePipe[0], bytes, sizeof bytes);
    if (n == 0) return nullptr;  // the write end is closed: the run is over
    if (n < 0) {
      if (errno == EINTR) continue;
      return nullptr;
    }
    wakeups.fetch_add(1, std::memory_order_relaxed);
    if (config.wakeWorkUs > 0) Spin(n * config.wakeWorkUs / 1e6);
  }
}

void NoteSigned() {
  if (config.wakeEvery <= 0) return;
  if (signedSoFar.fetch_add(1, std::memory_order_relaxed) % config.wakeEvery != 0) return;
  char one = 1;
  // Non-blocking: a listener that falls behind finds several bytes at once, as a busy JS
  // thread finds several batches; a full pipe (EAGAIN) loses nothing that matters.
  ssize_t written = write(wakePipe[1], &one, 1);
  (void)written;
}

void* Run(void* arg) {
  Worker& w = *static_cast<Worker*>(arg);
  CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &w.session);
  if (rv != CKR_OK) Fail("C_OpenSession", rv);
  rv = f->C_Login(w.session, CKU_USER, (CK_UTF8CHAR*)config.pin.data(), config.pin.size());
  if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) Fail("C_Login", rv);
  CK_OBJECT_CLASS keyClass = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE find[] = {{CKA_CLASS, &keyClass, sizeof keyClass},
                         {CKA_LABEL, (void*)config.keyLabel.data(), config.keyLabel.size()}};
  CK_OBJECT_HANDLE found[2];
  CK_ULONG n = 0;
  if ((rv = f->C_FindObjectsInit(w.session, find, 2)) != CKR_OK) Fail("C_FindObjectsInit", rv);
  if ((rv = f->C_FindObjects(w.session, found, 2, &n)) != CKR_OK) Fail("C_FindObjects", rv);
  f->C_FindObjectsFinal(w.session);
  if (n != 1) {
    printf("{\"error\":\"%lu private keys labelled '%s' (need exactly one)\"}\n", n, config.keyLabel.c_str());
    _exit(1);
  }
  w.key = found[0];
  w.latencies.reserve(1 << 16);
  pthread_barrier_wait(&ready);  // setup (sessions, login) is not part of the measurement

  CK_BYTE signature[1024];  // one C_Sign call, no length query: the fastest honest loop
  while (!stop.load(std::memory_order_relaxed)) {
    double t0 = Now();
    if ((rv = f->C_SignInit(w.session, &mechanism, w.key)) != CKR_OK) Fail("C_SignInit", rv);
    CK_ULONG length = sizeof signature;
    if ((rv = f->C_Sign(w.session, data.data(), data.size(), signature, &length)) != CKR_OK) Fail("C_Sign", rv);
    double t1 = Now();
    w.count.fetch_add(1, std::memory_order_relaxed);
    NoteSigned();
    if (measuring.load(std::memory_order_relaxed)) w.latencies.push_back(t1 - t0);
  }
  return nullptr;
}

unsigned long Total(std::vector<Worker>& workers) {
  unsigned long total = 0;
  for (auto& w : workers) total += w.count.load(std::memory_order_relaxed);
  return total;
}

std::vector<CK_BYTE> FromHex(const std::string& hex) {
  std::vector<CK_BYTE> bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) bytes.push_back((CK_BYTE)strtoul(hex.substr(i, 2).c_str(), nullptr, 16));
  return bytes;
}

void SleepFor(double seconds) {
  timespec ts{(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string name = argv[i], value = argv[i + 1];
    if (name == "--module") config.module = value;
    else if (name == "--token") config.token = value;
    else if (name == "--key-label") config.keyLabel = value;
    else if (name == "--mechanism") config.mechanism = value;
    else if (name == "--threads") config.threads = atoi(value.c_str());
    else if (name == "--duration") config.duration = atof(value.c_str());
    else if (name == "--warmup") config.warmup = atof(value.c_str());
    else if (name == "--data-hex") data = FromHex(value);
    else if (name == "--os-locking") config.osLocking = value == "1";
    else if (name == "--wake-every") config.wakeEvery = atoi(value.c_str());
    else if (name == "--wake-work-us") config.wakeWorkUs = atof(value.c_str());
    else {
      printf("{\"error\":\"unknown option %s\"}\n", name.c_str());
      return 2;
    }
  }
  const char* pin = getenv("RAW_SIGN_PIN");
  if (pin) config.pin = pin;
  if (config.threads < 1 || config.module.empty() || config.token.empty() || config.keyLabel.empty()) {
    printf("{\"error\":\"usage: raw-sign --module P --token L --key-label K --mechanism M --threads N --data-hex H [--os-locking 1] [--wake-every N --wake-work-us U]\"}\n");
    return 2;
  }
  // The same mechanisms and parameters the Node loads use (bench/mechanisms.ts); the input
  // bytes come from there too (--data-hex).
  if (config.mechanism == "ecdsa") mechanism = {CKM_ECDSA, nullptr, 0};
  else if (config.mechanism == "ecdsa-sha256") mechanism = {CKM_ECDSA_SHA256, nullptr, 0};
  else if (config.mechanism == "rsa-pkcs") mechanism = {CKM_SHA256_RSA_PKCS, nullptr, 0};
  else if (config.mechanism == "rsa-pss") mechanism = {CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof pss};
  else if (config.mechanism == "ed25519") mechanism = {CKM_EDDSA, nullptr, 0};
  else {
    printf("{\"error\":\"unknown mechanism %s\"}\n", config.mechanism.c_str());
    return 2;
  }
  if (data.empty()) {
    printf("{\"error\":\"--data-hex is required\"}\n");
    return 2;
  }

  void* lib = dlopen(config.module.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    printf("{\"error\":\"dlopen: %s\"}\n", dlerror());
    return 1;
  }
  auto getList = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
  if (!getList) Fail("dlsym C_GetFunctionList", 0);
  CK_RV rv = getList(&f);
  if (rv != CKR_OK) Fail("C_GetFunctionList", rv);
  CK_C_INITIALIZE_ARGS init{};
  init.flags = CKF_OS_LOCKING_OK;
  if (!config.osLocking) p11::UseSpinningMutexes(init);
  if ((rv = f->C_Initialize(&init)) != CKR_OK) Fail("C_Initialize", rv);
  slot = FindSlot(config.token);

  pthread_t listener{};
  if (config.wakeEvery > 0) {
    if (pipe(wakePipe) != 0) {
      printf("{\"error\":\"pipe: %s\"}\n", strerror(errno));
      return 1;
    }
    fcntl(wakePipe[1], F_SETFL, fcntl(wakePipe[1], F_GETFL) | O_NONBLOCK);
    pthread_create(&listener, nullptr, Listen, nullptr);
  }

  std::vector<Worker> workers(config.threads);
  pthread_barrier_init(&ready, nullptr, config.threads + 1);
  for (auto& w : workers) pthread_create(&w.thread, nullptr, Run, &w);
  pthread_barrier_wait(&ready);
  long rssBefore = RssKb();

  SleepFor(config.warmup);
  // The process's CPU time and context switches over the window, all threads (RUSAGE_SELF).
  rusage usage0{}, usage1{};
  getrusage(RUSAGE_SELF, &usage0);
  unsigned long start = Total(workers);
  unsigned long wakeups0 = wakeups.load();
  double t0 = Now();
  measuring = true;
  SleepFor(config.duration);
  // Wake-ups before signatures: a stall between the two reads then adds signatures, not
  // wake-ups (a listener wakes at most once per --wake-every signatures).
  unsigned long wakeups1 = wakeups.load();
  unsigned long end = Total(workers);
  double t1 = Now();
  getrusage(RUSAGE_SELF, &usage1);
  measuring = false;
  stop = true;
  for (auto& w : workers) pthread_join(w.thread, nullptr);
  if (config.wakeEvery > 0) {
    close(wakePipe[1]);
    pthread_join(listener, nullptr);
  }
  long rssAfter = RssKb();

  std::vector<double> all;
  for (auto& w : workers) all.insert(all.end(), w.latencies.begin(), w.latencies.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0 : all[std::min(all.size() - 1, (size_t)(p * all.size()))] * 1e3; };
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  double cpu = seconds(usage1.ru_utime) + seconds(usage1.ru_stime) - seconds(usage0.ru_utime) - seconds(usage0.ru_stime);
  printf(
      "{\"threads\":%d,\"signs\":%lu,\"seconds\":%.6f,\"signsPerSec\":%.1f,"
      "\"latencyMs\":{\"p50\":%.4f,\"p99\":%.4f,\"max\":%.4f},\"rssBeforeKb\":%ld,\"rssAfterKb\":%ld,"
      "\"cpuSeconds\":%.6f,\"voluntarySwitches\":%ld,\"involuntarySwitches\":%ld,\"wakeups\":%lu}\n",
      config.threads, end - start, t1 - t0, (end - start) / (t1 - t0), pct(0.5), pct(0.99),
      all.empty() ? 0 : all.back() * 1e3, rssBefore, rssAfter, cpu, usage1.ru_nvcsw - usage0.ru_nvcsw,
      usage1.ru_nivcsw - usage0.ru_nivcsw, wakeups1 - wakeups0);
  fflush(stdout);
  for (auto& w : workers) f->C_CloseSession(w.session);
  f->C_Finalize(nullptr);
  return 0;
}
