// Objects: create, copy, destroy, size, attributes, search, and the one-hop findObjects() that
// runs C_FindObjectsInit, the C_FindObjects loop and C_FindObjectsFinal in a single engine job.
#include <algorithm>

#include "../marshal/attributes.h"
#include "../marshal/ulong.h"
#include "list_result.h"
#include "method_tables.h"

namespace p11 {

namespace {

constexpr CK_ULONG kDefaultFindCount = 64;
constexpr CK_ULONG kMaxFindCount = 100000;  // bounds the handle buffer allocated per call
constexpr CK_ULONG kFindBatch = 256;

struct CreateObjectOp {
  static constexpr const char* kName = "C_CreateObject";
  CK_SESSION_HANDLE session = 0;
  Template objectTemplate;
  CK_OBJECT_HANDLE object = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    objectTemplate.Parse(args, args.At(1), "template");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return f->C_CreateObject(session, objectTemplate.data(), objectTemplate.count(), &object);
  }
  Napi::Value Result(Napi::Env env) { return UlongToJs(env, object); }
};

struct CopyObjectOp {
  static constexpr const char* kName = "C_CopyObject";
  CK_SESSION_HANDLE session = 0;
  CK_OBJECT_HANDLE object = 0;
  Template copyTemplate;
  CK_OBJECT_HANDLE copy = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    object = args.Ulong(1, "object");
    copyTemplate.Parse(args, args.At(2), "template");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return f->C_CopyObject(session, object, copyTemplate.data(), copyTemplate.count(), &copy);
  }
  Napi::Value Result(Napi::Env env) { return UlongToJs(env, copy); }
};

struct DestroyObjectOp {
  static constexpr const char* kName = "C_DestroyObject";
  CK_SESSION_HANDLE session = 0;
  CK_OBJECT_HANDLE object = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    object = args.Ulong(1, "object");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_DestroyObject(session, object); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct GetObjectSizeOp {
  static constexpr const char* kName = "C_GetObjectSize";
  CK_SESSION_HANDLE session = 0;
  CK_OBJECT_HANDLE object = 0;
  CK_ULONG size = 0;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    object = args.Ulong(1, "object");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_GetObjectSize(session, object, &size); }
  Napi::Value Result(Napi::Env env) { return UlongToJs(env, size); }
};

struct GetAttributeValueOp {
  static constexpr const char* kName = "C_GetAttributeValue";
  CK_SESSION_HANDLE session = 0;
  CK_OBJECT_HANDLE object = 0;
  AttributeQuery query;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    object = args.Ulong(1, "object");
    query.Parse(args, args.At(2), "types");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return query.Run(f, session, object); }
  Napi::Value Result(Napi::Env env) { return query.ToJs(env); }
};

struct SetAttributeValueOp {
  static constexpr const char* kName = "C_SetAttributeValue";
  CK_SESSION_HANDLE session = 0;
  CK_OBJECT_HANDLE object = 0;
  Template attributes;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    object = args.Ulong(1, "object");
    attributes.Parse(args, args.At(2), "template");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    return f->C_SetAttributeValue(session, object, attributes.data(), attributes.count());
  }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct FindObjectsInitOp {
  static constexpr const char* kName = "C_FindObjectsInit";
  CK_SESSION_HANDLE session = 0;
  Template search;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    search.Parse(args, args.At(1), "template");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_FindObjectsInit(session, search.data(), search.count()); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

struct FindObjectsOp {
  static constexpr const char* kName = "C_FindObjects";
  CK_SESSION_HANDLE session = 0;
  CK_ULONG maxCount = kDefaultFindCount;
  std::vector<CK_OBJECT_HANDLE> found;
  void Parse(const Args& args) {
    session = args.Ulong(0, "session");
    if (args.IsAbsent(1)) return;
    maxCount = args.Ulong(1, "maxCount");
    if (maxCount < 1 || maxCount > kMaxFindCount) args.Fail("maxCount", "an integer from 1 to 100000");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    found.assign(maxCount, 0);
    CK_ULONG count = 0;
    CK_RV rv = f->C_FindObjects(session, found.data(), maxCount, &count);
    if (rv != ck::CKR_OK) return rv;
    if (count > maxCount) return ck::CKR_GENERAL_ERROR;  // claims more than our buffer holds
    found.resize(count);
    return rv;
  }
  Napi::Value Result(Napi::Env env) { return UlongListToJs(env, found); }
};

struct FindObjectsFinalOp {
  static constexpr const char* kName = "C_FindObjectsFinal";
  CK_SESSION_HANDLE session = 0;
  void Parse(const Args& args) { session = args.Ulong(0, "session"); }
  CK_RV Run(const CK_FUNCTION_LIST* f) { return f->C_FindObjectsFinal(session); }
  Napi::Value Result(Napi::Env env) { return env.Undefined(); }
};

// findObjects(session, template, limit?): the whole search in one job. Once the search has
// started it is always finished with C_FindObjectsFinal, so a failed batch cannot leave the
// session stuck in an active search (CKR_OPERATION_ACTIVE on the next Init).
struct OneShotFindObjectsOp {
  static constexpr const char* kName = "findObjects";
  FindObjectsInitOp init;
  bool limited = false;
  CK_ULONG limit = 0;
  std::vector<CK_OBJECT_HANDLE> found;
  void Parse(const Args& args) {
    init.Parse(args);
    if (args.IsAbsent(2)) return;
    limited = true;
    limit = args.Ulong(2, "limit");
    if (limit < 1) args.Fail("limit", "a positive integer");
  }
  CK_RV Run(const CK_FUNCTION_LIST* f) {
    found.clear();
    CK_RV rv = init.Run(f);
    if (rv != ck::CKR_OK) return rv;
    rv = FindAll(f);
    CK_RV finalRv = f->C_FindObjectsFinal(init.session);
    return rv != ck::CKR_OK ? rv : finalRv;
  }
  Napi::Value Result(Napi::Env env) { return UlongListToJs(env, found); }

 private:
  CK_RV FindAll(const CK_FUNCTION_LIST* f) {
    for (;;) {
      CK_ULONG want = kFindBatch;
      if (limited) want = std::min(want, static_cast<CK_ULONG>(limit - found.size()));
      size_t start = found.size();
      found.resize(start + want);
      CK_ULONG count = 0;
      CK_RV rv = f->C_FindObjects(init.session, found.data() + start, want, &count);
      if (rv != ck::CKR_OK || count > want) {
        found.resize(start);
        return rv != ck::CKR_OK ? rv : ck::CKR_GENERAL_ERROR;
      }
      found.resize(start + count);
      if (count < want || (limited && found.size() >= limit)) return ck::CKR_OK;
    }
  }
};

}  // namespace

void AddObjectMethods(MethodTable& table) {
  AddSyncAndAsync<CreateObjectOp>(table);
  AddSyncAndAsync<CopyObjectOp>(table);
  AddSyncAndAsync<DestroyObjectOp>(table);
  AddSync<GetObjectSizeOp>(table);
  AddSyncAndAsync<GetAttributeValueOp>(table);
  AddSyncAndAsync<SetAttributeValueOp>(table);
  AddSyncAndAsync<FindObjectsInitOp>(table);
  AddSyncAndAsync<FindObjectsOp>(table);
  AddSyncAndAsync<FindObjectsFinalOp>(table);
  AddAsyncAs<OneShotFindObjectsOp>(table, "findObjects");
  table.emplace_back("findObjectsSync", &SyncEntry<OneShotFindObjectsOp>);
}

}  // namespace p11
