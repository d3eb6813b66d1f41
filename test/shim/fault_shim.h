// Fault-injecting PKCS#11 module for the test suite: internal interface between the entry
// points (fault_shim.cc) and the shared state, control file and statistics
// (fault_shim_state.cc). Compiled as C++ so it can use the binding's own PKCS#11 types.
#pragma once

#include <atomic>
#include <string>

#include "../../native/generated/constants.h"
#include "../../native/pkcs11/types.h"

namespace shim {

// One id per entry point, in CK_FUNCTION_LIST order (so kFnNames lines up with the standard),
// plus C_GetInterface, which is exported but not in the 2.40 list.
enum Fn : int {
  kC_Initialize, kC_Finalize, kC_GetInfo, kC_GetFunctionList, kC_GetSlotList, kC_GetSlotInfo,
  kC_GetTokenInfo, kC_GetMechanismList, kC_GetMechanismInfo, kC_InitToken, kC_InitPIN, kC_SetPIN,
  kC_OpenSession, kC_CloseSession, kC_CloseAllSessions, kC_GetSessionInfo, kC_GetOperationState,
  kC_SetOperationState, kC_Login, kC_Logout, kC_CreateObject, kC_CopyObject, kC_DestroyObject,
  kC_GetObjectSize, kC_GetAttributeValue, kC_SetAttributeValue, kC_FindObjectsInit, kC_FindObjects,
  kC_FindObjectsFinal, kC_EncryptInit, kC_Encrypt, kC_EncryptUpdate, kC_EncryptFinal, kC_DecryptInit,
  kC_Decrypt, kC_DecryptUpdate, kC_DecryptFinal, kC_DigestInit, kC_Digest, kC_DigestUpdate, kC_DigestKey,
  kC_DigestFinal, kC_SignInit, kC_Sign, kC_SignUpdate, kC_SignFinal, kC_SignRecoverInit, kC_SignRecover,
  kC_VerifyInit, kC_Verify, kC_VerifyUpdate, kC_VerifyFinal, kC_VerifyRecoverInit, kC_VerifyRecover,
  kC_DigestEncryptUpdate, kC_DecryptDigestUpdate, kC_SignEncryptUpdate, kC_DecryptVerifyUpdate,
  kC_GenerateKey, kC_GenerateKeyPair, kC_WrapKey, kC_UnwrapKey, kC_DeriveKey, kC_SeedRandom,
  kC_GenerateRandom, kC_GetFunctionStatus, kC_CancelFunction, kC_WaitForSlotEvent,
  kC_GetInterface,
  kFnCount
};
static_assert(kC_WaitForSlotEvent == 67, "the 68 v2.40 functions come first");

const char* FnName(Fn fn);

// Re-reads FAULT_SHIM_CONTROL / FAULT_SHIM_STATS / FAULT_SHIM_TARGET. Only called from
// discovery and C_Initialize: tests change the environment between module loads, and reading
// it on every call could race with a setenv() on the JS thread.
void RefreshEnvironment();

// First step of every entry point: refreshes the control file, counts the call and applies
// down / hang / delay / fail. Returns false when the call must not be forwarded; *rv is then
// the answer (an injected fault, or CKR_GENERAL_ERROR when the target cannot be loaded).
bool Enter(Fn fn, CK_RV* rv);
// Last step of a forwarded call: records successes (for fail.<fn>.after) and returns rv.
CK_RV Leave(Fn fn, CK_RV rv);
// The real module's function list; valid once Enter() has returned true.
const CK_FUNCTION_LIST& Target();

// C_Initialize faults and bookkeeping.
void NoteInitializeArgs(CK_VOID_PTR initArgs);
bool InjectCantLock(CK_VOID_PTR initArgs);  // true: answer CKR_CANT_LOCK (counted)
bool InjectAlreadyInitialized();            // true: answer CKR_CRYPTOKI_ALREADY_INITIALIZED (counted)
void NoteTargetInitialized(bool hiddenByLie);
void NoteTargetFinalized();
// True when an earlier "already initialized" lie left the target initialised with nobody to
// finalise it; the caller must C_Finalize the target before forwarding a new C_Initialize.
bool TakeOrphanedInitialization();
// initialize.exercisemutexes: runs CheckMutexes on the caller's mutex functions, if it gave any,
// and keeps the answers for the statistics.
void ExerciseMutexes(CK_VOID_PTR initArgs);
// mutex_check.cc: uses the four functions of args; a JSON object of what they answered.
std::string CheckMutexes(const CK_C_INITIALIZE_ARGS& args);

// Interface discovery.
bool InterfaceEnabled();
void MarkServedVia(const char* entryPoint);

// Session accounting (real, untranslated handles).
void SessionOpened(CK_SESSION_HANDLE session, CK_SLOT_ID slot);
void SessionClosed(CK_SESSION_HANDLE session);
void SlotSessionsClosed(CK_SLOT_ID slot);
void AllSessionsClosed();
// Writes the statistics file (temp file + rename). No-op without FAULT_SHIM_STATS.
void WriteStats();

// lie.buffer. ClaimLie: true when this call (which has an output buffer) is the first of its
// operation and must lie; false when the lie was already told and this is the retry.
bool LieBufferEnabled();
bool ClaimLie(Fn fn, CK_SESSION_HANDLE session);
void CancelLie(Fn fn, CK_SESSION_HANDLE session);
void NoteLie(Fn fn);
void ResetLies(Fn initFn, CK_SESSION_HANDLE session);

// handles.offset: added to every handle and slot ID handed out, subtracted from those received.
extern std::atomic<CK_ULONG> g_handleOffset;
inline CK_SLOT_ID SlotOut(CK_SLOT_ID slot) { return slot + g_handleOffset.load(std::memory_order_relaxed); }
inline CK_SLOT_ID SlotIn(CK_SLOT_ID slot) { return slot - g_handleOffset.load(std::memory_order_relaxed); }
// CK_INVALID_HANDLE (0) keeps its meaning in both directions (e.g. "no key" in C_SetOperationState).
inline CK_ULONG HandleOut(CK_ULONG handle) {
  return handle == 0 ? 0 : handle + g_handleOffset.load(std::memory_order_relaxed);
}
inline CK_ULONG HandleIn(CK_ULONG handle) {
  return handle == 0 ? 0 : handle - g_handleOffset.load(std::memory_order_relaxed);
}

}  // namespace shim
