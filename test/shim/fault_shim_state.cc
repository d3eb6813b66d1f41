// Shared state of the fault shim: the target module, the control file (re-read when it
// changes), fault decisions, counters and the JSON statistics file.
//
// Locking: g_mutex guards everything below except the atomics. It is never held while the
// target is called or while sleeping/hanging. g_statsMutex orders statistics writes (taken
// before g_mutex, never after), so a newer snapshot can't be overwritten by an older one.
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "fault_shim.h"

namespace shim {

std::atomic<CK_ULONG> g_handleOffset{0};

namespace {

const char* const kFnNames[kFnCount] = {
    "C_Initialize", "C_Finalize", "C_GetInfo", "C_GetFunctionList", "C_GetSlotList", "C_GetSlotInfo",
    "C_GetTokenInfo", "C_GetMechanismList", "C_GetMechanismInfo", "C_InitToken", "C_InitPIN", "C_SetPIN",
    "C_OpenSession", "C_CloseSession", "C_CloseAllSessions", "C_GetSessionInfo", "C_GetOperationState",
    "C_SetOperationState", "C_Login", "C_Logout", "C_CreateObject", "C_CopyObject", "C_DestroyObject",
    "C_GetObjectSize", "C_GetAttributeValue", "C_SetAttributeValue", "C_FindObjectsInit", "C_FindObjects",
    "C_FindObjectsFinal", "C_EncryptInit", "C_Encrypt", "C_EncryptUpdate", "C_EncryptFinal", "C_DecryptInit",
    "C_Decrypt", "C_DecryptUpdate", "C_DecryptFinal", "C_DigestInit", "C_Digest", "C_DigestUpdate",
    "C_DigestKey", "C_DigestFinal", "C_SignInit", "C_Sign", "C_SignUpdate", "C_SignFinal", "C_SignRecoverInit",
    "C_SignRecover", "C_VerifyInit", "C_Verify", "C_VerifyUpdate", "C_VerifyFinal", "C_VerifyRecoverInit",
    "C_VerifyRecover", "C_DigestEncryptUpdate", "C_DecryptDigestUpdate", "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate", "C_GenerateKey", "C_GenerateKeyPair", "C_WrapKey", "C_UnwrapKey", "C_DeriveKey",
    "C_SeedRandom", "C_GenerateRandom", "C_GetFunctionStatus", "C_CancelFunction", "C_WaitForSlotEvent",
    "C_GetInterface",
};

const char* const kDefaultTarget = "/usr/lib/softhsm/libsofthsm2.so";

struct FailRule {
  bool set = false;
  CK_RV rv = 0;
  unsigned long after = 0;
  bool hasCount = false;
  unsigned long count = 0;
  bool forward = false;  // forward the call, then answer rv instead of the target's answer
  bool operator!=(const FailRule& o) const {
    return set != o.set || rv != o.rv || after != o.after || hasCount != o.hasCount || count != o.count ||
           forward != o.forward;
  }
};

// hang.<fn>=<bool> and hang.<fn>.count=<K>. A count alone switches the rule on; hang.<fn>=0
// switches it off whatever the count says.
struct HangRule {
  bool set = false;    // hang.<fn> given
  bool value = false;  // its value
  bool hasCount = false;
  unsigned long count = 0;
  bool enabled() const { return set ? value : hasCount; }
  bool operator!=(const HangRule& o) const {
    return enabled() != o.enabled() || hasCount != o.hasCount || count != o.count;
  }
};

struct Config {
  FailRule fail[kFnCount];
  long delayMs[kFnCount];  // -1: not set, delay.all applies
  HangRule hang[kFnCount];
  long delayAllMs = 0;
  long hangMaxMs = 0;  // 0: a hang lasts until released
  bool down = false;
  CK_RV downRv = ck::CKR_DEVICE_REMOVED;
  bool lieBuffer = false;
  CK_ULONG handleOffset = 0;
  bool cantLock = false;
  bool refuseMutexes = false;
  bool exerciseMutexes = false;
  bool already = false;
  bool interface = false;
  bool statsAlways = false;
  std::vector<std::string> warnings;
  Config() {
    for (long& ms : delayMs) ms = -1;
  }
};

// Identity of one version of the control file; any difference means "re-read it".
struct Stamp {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  long mtimeSec = 0, mtimeNsec = 0, ctimeSec = 0, ctimeNsec = 0;
  bool operator==(const Stamp& o) const {
    return exists == o.exists && dev == o.dev && ino == o.ino && size == o.size && mtimeSec == o.mtimeSec &&
           mtimeNsec == o.mtimeNsec && ctimeSec == o.ctimeSec && ctimeNsec == o.ctimeNsec;
  }
};

struct Faults {
  unsigned long total = 0, fail = 0, down = 0, delay = 0, hang = 0, lieBuffer = 0, cantLock = 0, already = 0;
};

struct State {
  Config config;
  bool loaded = false;  // config read at least once for the current control path
  Stamp stamp;
  unsigned long controlLoads = 0;
  std::string controlPath, statsPath, targetPath;

  void* targetHandle = nullptr;
  const CK_FUNCTION_LIST* target = nullptr;  // never reset to null once set: Target() hands it out
  bool targetStale = false;                  // FAULT_SHIM_TARGET changed: load the new one on next use
  bool targetInitialized = false;
  bool initializationOrphaned = false;  // initialised, but the caller was told someone else did it
  const char* servedVia = nullptr;

  unsigned long calls[kFnCount] = {};
  unsigned long okSinceRule[kFnCount] = {};        // successful forwarded calls since fail.<fn> changed
  unsigned long injectedSinceRule[kFnCount] = {};  // fail.<fn> injections since it changed
  unsigned long hangsSinceRule[kFnCount] = {};     // hang.<fn> hangs since it changed
  unsigned long faultsByFn[kFnCount] = {};
  Faults faults;
  std::vector<long> initializeFlags;  // -1: C_Initialize(NULL)
  std::vector<bool> initializeMutexes;  // whether that C_Initialize came with mutex functions
  std::string mutexCheck = "null";     // JSON from CheckMutexes, the latest

  std::map<CK_SESSION_HANDLE, CK_SLOT_ID> sessions;
  std::map<CK_SESSION_HANDLE, unsigned> pendingLies;  // session -> bits of LieBit()
  unsigned long sessionsOpened = 0, sessionsClosed = 0;
  unsigned long statsWrites = 0;
};

pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_statsMutex = PTHREAD_MUTEX_INITIALIZER;
std::atomic<bool> g_lieBuffer{false};

// Never destroyed: worker threads of the host may still call in while the process exits.
State& S() {
  static State* state = new State();
  return *state;
}

// Holds g_mutex for a scope; a helper rather than a macro.
class Lock {
 public:
  explicit Lock(pthread_mutex_t& m) : m_(m) { pthread_mutex_lock(&m_); }
  ~Lock() { pthread_mutex_unlock(&m_); }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

 private:
  pthread_mutex_t& m_;
};

void SleepMs(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::string EnvOr(const char* name, const char* fallback) {
  const char* value = getenv(name);
  return value != nullptr && value[0] != '\0' ? std::string(value) : std::string(fallback);
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Decimal or 0x-hex (no octal: "010" is ten).
bool ParseUlong(const std::string& text, CK_ULONG& out) {
  if (text.empty()) return false;
  bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  const char* digits = text.c_str() + (hex ? 2 : 0);
  if (*digits == '\0' || *digits == '-' || *digits == '+') return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long value = strtoull(digits, &end, hex ? 16 : 10);
  if (errno != 0 || *end != '\0') return false;
  out = static_cast<CK_ULONG>(value);
  return true;
}

// A CKR_ name (looked up through the binding's own name table) or a number.
bool ParseRv(const std::string& text, CK_RV& out) {
  if (text.compare(0, 4, "CKR_") == 0) {
    if (text == "CKR_VENDOR_DEFINED") {
      out = ck::CKR_VENDOR_DEFINED;
      return true;
    }
    for (CK_RV rv = 0; rv < 0x400; ++rv) {
      const char* name = ck::RvName(rv);
      if (name != nullptr && text == name) {
        out = rv;
        return true;
      }
    }
    return false;
  }
  return ParseUlong(text, out);
}

bool ParseBool(const std::string& text) { return text == "1" || text == "true" || text == "yes" || text == "on"; }

int FnByName(const std::string& name) {
  for (int i = 0; i < kFnCount; ++i)
    if (name == kFnNames[i]) return i;
  return -1;
}

// One `key=value` line into `config`; problems become warnings shown in the statistics.
void ParseLine(const std::string& key, const std::string& value, Config& config) {
  auto warn = [&](const char* why) { config.warnings.push_back(key + ": " + why); };
  CK_ULONG number = 0;
  if (key.compare(0, 5, "fail.") == 0 || key.compare(0, 6, "delay.") == 0 || key.compare(0, 5, "hang.") == 0) {
    size_t dot = key.find('.');
    std::string rest = key.substr(dot + 1);
    std::string kind = key.substr(0, dot);
    std::string option;
    size_t optionDot = rest.find('.');
    if (optionDot != std::string::npos) {
      option = rest.substr(optionDot + 1);
      rest = rest.substr(0, optionDot);
    }
    if (kind == "delay" && rest == "all" && option.empty()) {
      if (!ParseUlong(value, number)) return warn("not a number of milliseconds");
      config.delayAllMs = static_cast<long>(number);
      return;
    }
    if (kind == "hang" && rest == "max" && option.empty()) {
      if (!ParseUlong(value, number)) return warn("not a number of milliseconds");
      config.hangMaxMs = static_cast<long>(number);
      return;
    }
    int fn = FnByName(rest);
    if (fn < 0) return warn("unknown function name");
    if (kind == "fail" && option.empty()) {
      if (value.empty() || value == "0" || value == "CKR_OK") {
        config.fail[fn].set = false;  // "fail.X=" switches the rule off
        return;
      }
      if (!ParseRv(value, config.fail[fn].rv)) return warn("not a CKR_ name or number");
      config.fail[fn].set = true;
    } else if (kind == "fail" && option == "forward") {
      config.fail[fn].forward = ParseBool(value);
    } else if (kind == "fail" && (option == "after" || option == "count")) {
      if (!ParseUlong(value, number)) return warn("not a number");
      if (option == "after") {
        config.fail[fn].after = number;
      } else {
        config.fail[fn].hasCount = true;
        config.fail[fn].count = number;
      }
    } else if (kind == "delay" && option.empty()) {
      if (!ParseUlong(value, number)) return warn("not a number of milliseconds");
      config.delayMs[fn] = static_cast<long>(number);
    } else if (kind == "hang" && option.empty()) {
      config.hang[fn].set = true;
      config.hang[fn].value = ParseBool(value);
    } else if (kind == "hang" && option == "count") {
      if (!ParseUlong(value, number)) return warn("not a number");
      config.hang[fn].hasCount = true;
      config.hang[fn].count = number;
    } else {
      warn("unknown option");
    }
    return;
  }
  if (key == "down") {
    config.down = ParseBool(value);
  } else if (key == "down.rv") {
    if (!ParseRv(value, config.downRv)) warn("not a CKR_ name or number");
  } else if (key == "lie.buffer") {
    config.lieBuffer = ParseBool(value);
  } else if (key == "handles.offset") {
    if (!ParseUlong(value, config.handleOffset)) warn("not a number");
  } else if (key == "initialize.cantlock") {
    config.cantLock = ParseBool(value);
  } else if (key == "initialize.refusemutexes") {
    config.refuseMutexes = ParseBool(value);
  } else if (key == "initialize.exercisemutexes") {
    config.exerciseMutexes = ParseBool(value);
  } else if (key == "initialize.already") {
    config.already = ParseBool(value);
  } else if (key == "interface") {
    config.interface = ParseBool(value);
  } else if (key == "stats.always") {
    config.statsAlways = ParseBool(value);
  } else if (key == "generation") {
    // Written by test/support/shim.ts so every version of the file differs; no meaning here.
  } else {
    warn("unknown key");
  }
}

Config ParseControl(const std::string& text) {
  Config config;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = Trim(text.substr(start, end - start));
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      config.warnings.push_back(line + ": no '='");
      continue;
    }
    ParseLine(Trim(line.substr(0, eq)), Trim(line.substr(eq + 1)), config);
  }
  return config;
}

Stamp StatControl(const std::string& path) {
  Stamp stamp;
  struct stat st;
  if (path.empty() || stat(path.c_str(), &st) != 0) return stamp;
  stamp.exists = true;
  stamp.dev = st.st_dev;
  stamp.ino = st.st_ino;
  stamp.size = st.st_size;
  stamp.mtimeSec = st.st_mtim.tv_sec;
  stamp.mtimeNsec = st.st_mtim.tv_nsec;
  stamp.ctimeSec = st.st_ctim.tv_sec;
  stamp.ctimeNsec = st.st_ctim.tv_nsec;
  return stamp;
}

std::string ReadFile(const std::string& path) {
  std::string text;
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) return text;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
  fclose(f);
  return text;
}

// Installs a freshly parsed config. A changed fail.<fn> rule restarts its after/count window,
// a changed hang.<fn> rule its count.
void Install(State& s, Config&& config) {
  for (int fn = 0; fn < kFnCount; ++fn) {
    if (config.fail[fn] != s.config.fail[fn]) {
      s.okSinceRule[fn] = 0;
      s.injectedSinceRule[fn] = 0;
    }
    if (config.hang[fn] != s.config.hang[fn]) s.hangsSinceRule[fn] = 0;
  }
  s.config = std::move(config);
  s.loaded = true;
  ++s.controlLoads;
  g_handleOffset.store(s.config.handleOffset, std::memory_order_relaxed);
  g_lieBuffer.store(s.config.lieBuffer, std::memory_order_relaxed);
}

// stat() per call; the file is only read when its identity changed.
void RefreshControl() {
  std::string path;
  {
    Lock lock(g_mutex);
    path = S().controlPath;
  }
  Stamp stamp = StatControl(path);
  Lock lock(g_mutex);
  State& s = S();
  if (s.controlPath != path) return;  // the environment changed meanwhile; the next call reloads
  if (s.loaded && stamp == s.stamp) return;
  s.stamp = stamp;
  Install(s, stamp.exists ? ParseControl(ReadFile(path)) : Config());
}

// Loads the target module on first use (or after FAULT_SHIM_TARGET changed). Called with g_mutex held.
bool LoadTargetLocked(State& s) {
  if (s.target != nullptr && !s.targetStale) return true;
  void* handle = dlopen(s.targetPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    fprintf(stderr, "fault_shim: cannot load target '%s': %s\n", s.targetPath.c_str(), dlerror());
    return false;
  }
  auto getFunctionList = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle, "C_GetFunctionList"));
  CK_FUNCTION_LIST* list = nullptr;
  if (getFunctionList == nullptr || getFunctionList(&list) != ck::CKR_OK || list == nullptr) {
    fprintf(stderr, "fault_shim: '%s' has no usable C_GetFunctionList\n", s.targetPath.c_str());
    dlclose(handle);
    return false;
  }
  s.targetHandle = handle;
  s.target = list;
  s.targetStale = false;
  return true;
}

// Keeps the shim loaded after the host's dlclose(): its state (counters, an initialisation the
// caller was told belongs to someone else) must outlive one load of the module.
void PinSelf() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&PinSelf), &info) != 0 && info.dli_fname != nullptr) {
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  }
}

void CountFault(State& s, Fn fn, unsigned long Faults::*kind) {
  ++(s.faults.*kind);
  ++s.faults.total;
  ++s.faultsByFn[fn];
}

void AppendJsonString(std::string& out, const std::string& text) {
  out += '"';
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char escaped[8];
      snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

void AppendField(std::string& out, const char* name, unsigned long value, bool comma = true) {
  out += '"';
  out += name;
  out += "\":";
  out += std::to_string(value);
  if (comma) out += ',';
}

std::string StatsJson(const State& s) {
  std::string j = "{";
  AppendField(j, "pid", static_cast<unsigned long>(getpid()));
  j += "\"target\":";
  AppendJsonString(j, s.targetPath);
  j += ",\"servedVia\":";
  if (s.servedVia != nullptr) {
    AppendJsonString(j, s.servedVia);
  } else {
    j += "null";
  }
  j += ",\"targetInitialized\":";
  j += s.targetInitialized ? "true" : "false";
  j += ',';
  AppendField(j, "openSessions", s.sessions.size());
  AppendField(j, "sessionsOpened", s.sessionsOpened);
  AppendField(j, "sessionsClosed", s.sessionsClosed);
  j += "\"calls\":{";
  bool first = true;
  for (int fn = 0; fn < kFnCount; ++fn) {
    if (s.calls[fn] == 0) continue;
    if (!first) j += ',';
    first = false;
    AppendField(j, kFnNames[fn], s.calls[fn], false);
  }
  j += "},\"faults\":{";
  AppendField(j, "total", s.faults.total);
  AppendField(j, "fail", s.faults.fail);
  AppendField(j, "down", s.faults.down);
  AppendField(j, "delay", s.faults.delay);
  AppendField(j, "hang", s.faults.hang);
  AppendField(j, "lieBuffer", s.faults.lieBuffer);
  AppendField(j, "cantLock", s.faults.cantLock);
  AppendField(j, "alreadyInitialized", s.faults.already, false);
  j += "},\"faultsByFunction\":{";
  first = true;
  for (int fn = 0; fn < kFnCount; ++fn) {
    if (s.faultsByFn[fn] == 0) continue;
    if (!first) j += ',';
    first = false;
    AppendField(j, kFnNames[fn], s.faultsByFn[fn], false);
  }
  j += "},\"initializeFlags\":[";
  for (size_t i = 0; i < s.initializeFlags.size(); ++i) {
    if (i > 0) j += ',';
    j += s.initializeFlags[i] < 0 ? std::string("null") : std::to_string(s.initializeFlags[i]);
  }
  j += "],\"initializeMutexes\":[";
  for (size_t i = 0; i < s.initializeMutexes.size(); ++i) {
    if (i > 0) j += ',';
    j += s.initializeMutexes[i] ? "true" : "false";
  }
  j += "],\"mutexCheck\":";
  j += s.mutexCheck;
  j += ',';
  // As a hex string: JSON numbers lose precision above 2^53.
  char offset[32];
  snprintf(offset, sizeof offset, "0x%lx", s.config.handleOffset);
  j += "\"handleOffset\":";
  AppendJsonString(j, offset);
  j += ',';
  AppendField(j, "controlLoads", s.controlLoads);
  AppendField(j, "statsWrites", s.statsWrites);
  j += "\"controlWarnings\":[";
  for (size_t i = 0; i < s.config.warnings.size(); ++i) {
    if (i > 0) j += ',';
    AppendJsonString(j, s.config.warnings[i]);
  }
  j += "]}\n";
  return j;
}

bool WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// A bit per function that lie.buffer applies to; 0 for the others.
unsigned LieBit(Fn fn) {
  switch (fn) {
    case kC_Sign: return 1u << 0;
    case kC_SignFinal: return 1u << 1;
    case kC_Encrypt: return 1u << 2;
    case kC_Decrypt: return 1u << 3;
    case kC_Digest: return 1u << 4;
    case kC_WrapKey: return 1u << 5;
    case kC_GetAttributeValue: return 1u << 6;
    default: return 0;
  }
}

// A new operation of this kind starts: forget a lie its predecessor never retried.
unsigned LieBitsStartedBy(Fn initFn) {
  switch (initFn) {
    case kC_SignInit: return LieBit(kC_Sign) | LieBit(kC_SignFinal);
    case kC_EncryptInit: return LieBit(kC_Encrypt);
    case kC_DecryptInit: return LieBit(kC_Decrypt);
    case kC_DigestInit: return LieBit(kC_Digest);
    default: return 0;
  }
}

bool HasMutexFunctions(const CK_C_INITIALIZE_ARGS* args) {
  return args != nullptr && args->CreateMutex != nullptr && args->DestroyMutex != nullptr &&
         args->LockMutex != nullptr && args->UnlockMutex != nullptr;
}

bool DownExempt(Fn fn) { return fn == kC_GetFunctionList || fn == kC_Finalize || fn == kC_GetInterface; }

// fail.<fn>.forward: the fault decided in Enter() and delivered by Leave() of the same call
// (both run on the calling thread). fn -1: none pending.
struct ForwardedFault {
  int fn = -1;
  CK_RV rv = 0;
};
thread_local ForwardedFault t_forwardedFault;

}  // namespace

const char* FnName(Fn fn) { return fn >= 0 && fn < kFnCount ? kFnNames[fn] : "?"; }

void RefreshEnvironment() {
  static pthread_once_t pinned = PTHREAD_ONCE_INIT;
  pthread_once(&pinned, PinSelf);
  std::string control = EnvOr("FAULT_SHIM_CONTROL", "");
  std::string stats = EnvOr("FAULT_SHIM_STATS", "");
  std::string target = EnvOr("FAULT_SHIM_TARGET", kDefaultTarget);
  Lock lock(g_mutex);
  State& s = S();
  if (control != s.controlPath || stats != s.statsPath) {
    // A new control/stats pair means a new test: start counting afresh. Open sessions are
    // real state of the target and stay.
    s.controlPath = control;
    s.statsPath = stats;
    s.loaded = false;
    std::fill(s.calls, s.calls + kFnCount, 0);
    std::fill(s.okSinceRule, s.okSinceRule + kFnCount, 0);
    std::fill(s.injectedSinceRule, s.injectedSinceRule + kFnCount, 0);
    std::fill(s.hangsSinceRule, s.hangsSinceRule + kFnCount, 0);
    std::fill(s.faultsByFn, s.faultsByFn + kFnCount, 0);
    s.faults = Faults();
    s.initializeFlags.clear();
    s.initializeMutexes.clear();
    s.mutexCheck = "null";
    s.sessionsOpened = s.sessionsClosed = 0;
    s.controlLoads = 0;
    s.statsWrites = 0;
    s.servedVia = nullptr;
  }
  if (target != s.targetPath && !s.targetInitialized) {
    // The old target stays mapped (never dlclosed): cheap, and safe should anything still point into it.
    s.targetPath = target;
    s.targetStale = s.target != nullptr;
  }
}

bool Enter(Fn fn, CK_RV* rv) {
  t_forwardedFault.fn = -1;  // one left by a call that never reached Leave() (a lie.buffer answer)
  RefreshControl();
  bool down = false;
  bool hang = false;
  long delay = 0;
  {
    Lock lock(g_mutex);
    State& s = S();
    ++s.calls[fn];
    down = s.config.down && !DownExempt(fn);
    if (down) {
      CountFault(s, fn, &Faults::down);
      *rv = s.config.downRv;
    } else {
      const HangRule& rule = s.config.hang[fn];
      hang = rule.enabled() && (!rule.hasCount || s.hangsSinceRule[fn] < rule.count);
      delay = s.config.delayMs[fn] >= 0 ? s.config.delayMs[fn] : s.config.delayAllMs;
      if (hang) {
        ++s.hangsSinceRule[fn];
        CountFault(s, fn, &Faults::hang);
      }
      if (delay > 0) CountFault(s, fn, &Faults::delay);
    }
  }
  if (down) {
    WriteStats();
    return false;
  }
  if (hang || delay > 0) WriteStats();  // lets a test see that the call is now hanging
  // hang.max is a safety net for tests: a release that never comes ends the hang anyway. A call
  // that started hanging (its count claimed) hangs until the rule is switched off or removed.
  for (long waited = 0; hang; waited += 10) {
    SleepMs(10);
    RefreshControl();
    Lock lock(g_mutex);
    hang = S().config.hang[fn].enabled() && (S().config.hangMaxMs == 0 || waited + 10 < S().config.hangMaxMs);
  }
  if (delay > 0) SleepMs(delay);

  bool inject = false;
  bool forward = false;
  {
    Lock lock(g_mutex);
    State& s = S();
    const FailRule& rule = s.config.fail[fn];
    if (rule.set && s.okSinceRule[fn] >= rule.after && (!rule.hasCount || s.injectedSinceRule[fn] < rule.count)) {
      ++s.injectedSinceRule[fn];
      CountFault(s, fn, &Faults::fail);
      *rv = rule.rv;
      inject = true;
      forward = rule.forward;
    }
    if ((!inject || forward) && fn != kC_GetFunctionList && fn != kC_GetInterface && !LoadTargetLocked(s)) {
      *rv = ck::CKR_GENERAL_ERROR;
      return false;
    }
  }
  if (inject) WriteStats();
  if (inject && forward) {
    t_forwardedFault.fn = fn;
    t_forwardedFault.rv = *rv;
    return true;  // Leave() replaces the target's answer
  }
  return !inject;
}

CK_RV Leave(Fn fn, CK_RV rv) {
  if (t_forwardedFault.fn == fn) {
    rv = t_forwardedFault.rv;
    t_forwardedFault.fn = -1;
  }
  bool always;
  {
    Lock lock(g_mutex);
    if (rv == ck::CKR_OK) ++S().okSinceRule[fn];
    always = S().config.statsAlways;
  }
  if (always) WriteStats();
  return rv;
}

const CK_FUNCTION_LIST& Target() {
  Lock lock(g_mutex);
  return *S().target;
}

void NoteInitializeArgs(CK_VOID_PTR initArgs) {
  Lock lock(g_mutex);
  State& s = S();
  const auto* args = static_cast<const CK_C_INITIALIZE_ARGS*>(initArgs);
  long flags = args == nullptr ? -1 : static_cast<long>(args->flags);
  if (s.initializeFlags.size() < 64) {
    s.initializeFlags.push_back(flags);
    s.initializeMutexes.push_back(HasMutexFunctions(args));
  }
}

bool InjectCantLock(CK_VOID_PTR initArgs) {
  bool inject;
  {
    Lock lock(g_mutex);
    State& s = S();
    const auto* args = static_cast<const CK_C_INITIALIZE_ARGS*>(initArgs);
    // CKR_CANT_LOCK is the standard's answer both to "no OS locks here" and to "I will not use
    // the mutex functions you gave me"; the two options inject one or the other.
    inject = (s.config.cantLock && args != nullptr && (args->flags & ck::CKF_OS_LOCKING_OK) != 0) ||
             (s.config.refuseMutexes && HasMutexFunctions(args));
    if (inject) CountFault(s, kC_Initialize, &Faults::cantLock);
  }
  if (inject) WriteStats();
  return inject;
}

void ExerciseMutexes(CK_VOID_PTR initArgs) {
  const auto* args = static_cast<const CK_C_INITIALIZE_ARGS*>(initArgs);
  {
    Lock lock(g_mutex);
    if (!S().config.exerciseMutexes || !HasMutexFunctions(args)) return;
  }
  // Outside g_mutex: the check runs threads, and the functions are the caller's code.
  std::string result = CheckMutexes(*args);
  Lock lock(g_mutex);
  S().mutexCheck = result;
}

bool InjectAlreadyInitialized() {
  Lock lock(g_mutex);
  State& s = S();
  if (s.config.already) CountFault(s, kC_Initialize, &Faults::already);
  return s.config.already;
}

void NoteTargetInitialized(bool hiddenByLie) {
  Lock lock(g_mutex);
  S().targetInitialized = true;
  S().initializationOrphaned = hiddenByLie;
}

void NoteTargetFinalized() {
  Lock lock(g_mutex);
  S().targetInitialized = false;
  S().initializationOrphaned = false;
}

bool TakeOrphanedInitialization() {
  Lock lock(g_mutex);
  State& s = S();
  bool orphaned = s.initializationOrphaned && s.targetInitialized;
  s.initializationOrphaned = false;
  return orphaned;
}

bool InterfaceEnabled() {
  Lock lock(g_mutex);
  return S().config.interface;
}

void MarkServedVia(const char* entryPoint) {
  Lock lock(g_mutex);
  S().servedVia = entryPoint;
}

void SessionOpened(CK_SESSION_HANDLE session, CK_SLOT_ID slot) {
  Lock lock(g_mutex);
  S().sessions[session] = slot;
  ++S().sessionsOpened;
}

void SessionClosed(CK_SESSION_HANDLE session) {
  Lock lock(g_mutex);
  State& s = S();
  s.sessionsClosed += s.sessions.erase(session);
  s.pendingLies.erase(session);
}

void SlotSessionsClosed(CK_SLOT_ID slot) {
  Lock lock(g_mutex);
  State& s = S();
  for (auto it = s.sessions.begin(); it != s.sessions.end();) {
    if (it->second == slot) {
      s.pendingLies.erase(it->first);
      it = s.sessions.erase(it);
      ++s.sessionsClosed;
    } else {
      ++it;
    }
  }
}

void AllSessionsClosed() {
  Lock lock(g_mutex);
  State& s = S();
  s.sessionsClosed += s.sessions.size();
  s.sessions.clear();
  s.pendingLies.clear();
}

void WriteStats() {
  Lock order(g_statsMutex);
  std::string path, json;
  {
    Lock lock(g_mutex);
    State& s = S();
    if (s.statsPath.empty()) return;
    ++s.statsWrites;
    path = s.statsPath;
    json = StatsJson(s);
  }
  static std::atomic<unsigned long> sequence{0};
  std::string temp = path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(++sequence);
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  bool ok = WriteAll(fd, json);
  close(fd);
  if (!ok || rename(temp.c_str(), path.c_str()) != 0) unlink(temp.c_str());
}

bool LieBufferEnabled() { return g_lieBuffer.load(std::memory_order_relaxed); }

bool ClaimLie(Fn fn, CK_SESSION_HANDLE session) {
  Lock lock(g_mutex);
  unsigned& pending = S().pendingLies[session];
  if (pending & LieBit(fn)) {
    pending &= ~LieBit(fn);  // the lie was told; this is the caller's retry
    return false;
  }
  pending |= LieBit(fn);
  return true;
}

void CancelLie(Fn fn, CK_SESSION_HANDLE session) {
  Lock lock(g_mutex);
  S().pendingLies[session] &= ~LieBit(fn);
}

void NoteLie(Fn fn) {
  {
    Lock lock(g_mutex);
    CountFault(S(), fn, &Faults::lieBuffer);
  }
  WriteStats();
}

void ResetLies(Fn initFn, CK_SESSION_HANDLE session) {
  Lock lock(g_mutex);
  auto it = S().pendingLies.find(session);
  if (it != S().pendingLies.end()) it->second &= ~LieBitsStartedBy(initFn);
}

namespace {

// Final statistics when the shim goes away (process exit, as the shim pins itself).
__attribute__((destructor)) void WriteStatsAtUnload() { WriteStats(); }

}  // namespace

}  // namespace shim
