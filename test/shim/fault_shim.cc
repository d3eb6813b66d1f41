// Fault-injecting PKCS#11 module for the test suite: a real module that forwards all 68
// PKCS#11 v2.40 functions to a target module (FAULT_SHIM_TARGET, default SoftHSM2) and injects
// the faults named in a control file (FAULT_SHIM_CONTROL). See test/support/shim.ts for the
// control keys and the statistics file (FAULT_SHIM_STATS).
//
// Every entry point: Enter() (count, down/hang/delay/fail), translate handles in, forward,
// translate handles out, Leave(). Only C_GetFunctionList and C_GetInterface are exported.
//
// C_GetInterface is always exported (exports are fixed at build time) but answers
// CKR_FUNCTION_NOT_SUPPORTED unless the control file says interface=1. A caller that falls
// back to C_GetFunctionList when C_GetInterface fails therefore sees "no C_GetInterface".
#include <cstring>
#include <vector>

#include "fault_shim.h"

namespace shim {
namespace {

constexpr CK_ULONG kUnavailable = ~0UL;  // CK_UNAVAILABLE_INFORMATION
constexpr CK_ULONG kLieExtra = 16;       // lie.buffer asks for this many bytes more than needed

// Mechanism parameters that carry an object handle need translating too. Of those, only
// CKM_CONCATENATE_BASE_AND_KEY (the parameter is the other key's handle) is known to SoftHSM2.
struct MechanismIn {
  CK_MECHANISM copy{};
  CK_OBJECT_HANDLE handle = 0;
  CK_MECHANISM* Translate(CK_MECHANISM* mechanism) {
    if (mechanism == nullptr || mechanism->mechanism != ck::CKM_CONCATENATE_BASE_AND_KEY ||
        mechanism->pParameter == nullptr || mechanism->ulParameterLen != sizeof(CK_OBJECT_HANDLE)) {
      return mechanism;
    }
    handle = HandleIn(*static_cast<CK_OBJECT_HANDLE*>(mechanism->pParameter));
    copy = *mechanism;
    copy.pParameter = &handle;
    return &copy;
  }
};

// lie.buffer for "(…, out, &outLen)" functions. When this call has an output buffer and is the
// first of its operation to have one, asks the target for the true length (`query`: the same
// call with a NULL buffer, which per the standard leaves the operation active) and answers
// CKR_BUFFER_TOO_SMALL with 16 bytes more. Returns true when *rv is the answer.
template <typename Query>
bool LieAboutLength(Fn fn, CK_SESSION_HANDLE session, const void* out, CK_ULONG_PTR outLen, Query query, CK_RV* rv) {
  if (!LieBufferEnabled() || out == nullptr || outLen == nullptr || !ClaimLie(fn, session)) return false;
  CK_ULONG trueLength = 0;
  CK_RV queried = query(&trueLength);
  if (queried != ck::CKR_OK) {
    CancelLie(fn, session);
    *rv = Leave(fn, queried);  // the operation failed anyway: report the real error
    return true;
  }
  *outLen = trueLength + kLieExtra;
  NoteLie(fn);
  *rv = ck::CKR_BUFFER_TOO_SMALL;
  return true;
}

// Nested templates (CKA_WRAP_TEMPLATE …) are length queries of their members, not value
// buffers: lie.buffer leaves them alone.
bool IsTemplateAttribute(CK_ATTRIBUTE_TYPE type) { return ck::AttributeKind(type) == ck::AttrKind::Template; }

bool WantsValues(const CK_ATTRIBUTE* attributes, CK_ULONG count) {
  if (attributes == nullptr) return false;
  for (CK_ULONG i = 0; i < count; ++i)
    if (attributes[i].pValue != nullptr && !IsTemplateAttribute(attributes[i].type)) return true;
  return false;
}

// lie.buffer for C_GetAttributeValue; returns true when *rv is the answer.
bool LieAboutAttributes(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE* attributes,
                        CK_ULONG count, CK_RV* rv) {
  if (!LieBufferEnabled() || !WantsValues(attributes, count) || !ClaimLie(kC_GetAttributeValue, session)) {
    return false;
  }
  std::vector<CK_ATTRIBUTE> lengths(attributes, attributes + count);
  for (CK_ATTRIBUTE& attribute : lengths) attribute.pValue = nullptr;
  CK_RV queried = Target().C_GetAttributeValue(session, object, lengths.data(), count);
  if (queried != ck::CKR_OK && queried != ck::CKR_ATTRIBUTE_SENSITIVE && queried != ck::CKR_ATTRIBUTE_TYPE_INVALID) {
    CancelLie(kC_GetAttributeValue, session);
    *rv = Leave(kC_GetAttributeValue, queried);
    return true;
  }
  bool anyValue = false;
  for (CK_ULONG i = 0; i < count; ++i) {
    const CK_ATTRIBUTE& a = attributes[i];
    if (a.pValue != nullptr && !IsTemplateAttribute(a.type) && lengths[i].ulValueLen != kUnavailable) anyValue = true;
  }
  if (!anyValue) {
    CancelLie(kC_GetAttributeValue, session);  // nothing to lie about: only sensitive/unknown attributes
    return false;
  }
  for (CK_ULONG i = 0; i < count; ++i) {
    CK_ATTRIBUTE& a = attributes[i];
    if (IsTemplateAttribute(a.type) && a.pValue != nullptr) continue;
    if (a.pValue == nullptr || lengths[i].ulValueLen == kUnavailable) {
      a.ulValueLen = lengths[i].ulValueLen;
    } else {
      a.ulValueLen = lengths[i].ulValueLen + kLieExtra;
    }
  }
  NoteLie(kC_GetAttributeValue);
  *rv = ck::CKR_BUFFER_TOO_SMALL;
  return true;
}

CK_RV Shim_Initialize(CK_VOID_PTR pInitArgs) {
  RefreshEnvironment();  // a new load/initialisation may come with a new control file or target
  NoteInitializeArgs(pInitArgs);
  CK_RV rv;
  if (!Enter(kC_Initialize, &rv)) return rv;
  if (InjectCantLock(pInitArgs)) return ck::CKR_CANT_LOCK;
  ExerciseMutexes(pInitArgs);
  const CK_FUNCTION_LIST& t = Target();
  // An earlier initialize.already lie left the target initialised with nobody owning it; a new
  // C_Initialize means that caller is gone, so start the target afresh.
  if (TakeOrphanedInitialization() && t.C_Finalize(nullptr) == ck::CKR_OK) {
    AllSessionsClosed();
    NoteTargetFinalized();
  }
  rv = t.C_Initialize(pInitArgs);
  bool lie = false;
  if (rv == ck::CKR_OK) {
    lie = InjectAlreadyInitialized();
    NoteTargetInitialized(lie);
  }
  rv = Leave(kC_Initialize, rv);
  WriteStats();
  return lie ? ck::CKR_CRYPTOKI_ALREADY_INITIALIZED : rv;
}

CK_RV Shim_Finalize(CK_VOID_PTR pReserved) {
  CK_RV rv;
  if (!Enter(kC_Finalize, &rv)) return rv;
  rv = Target().C_Finalize(pReserved);
  if (rv == ck::CKR_OK) {
    AllSessionsClosed();
    NoteTargetFinalized();
  }
  rv = Leave(kC_Finalize, rv);
  WriteStats();
  return rv;
}

CK_RV Shim_GetInfo(CK_INFO* pInfo) {
  CK_RV rv;
  if (!Enter(kC_GetInfo, &rv)) return rv;
  return Leave(kC_GetInfo, Target().C_GetInfo(pInfo));
}

CK_RV Shim_GetFunctionList(CK_FUNCTION_LIST** ppFunctionList);

CK_RV Shim_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID* pSlotList, CK_ULONG_PTR pulCount) {
  CK_RV rv;
  if (!Enter(kC_GetSlotList, &rv)) return rv;
  rv = Target().C_GetSlotList(tokenPresent, pSlotList, pulCount);
  if (rv == ck::CKR_OK && pSlotList != nullptr && pulCount != nullptr) {
    for (CK_ULONG i = 0; i < *pulCount; ++i) pSlotList[i] = SlotOut(pSlotList[i]);
  }
  return Leave(kC_GetSlotList, rv);
}

CK_RV Shim_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO* pInfo) {
  CK_RV rv;
  if (!Enter(kC_GetSlotInfo, &rv)) return rv;
  return Leave(kC_GetSlotInfo, Target().C_GetSlotInfo(SlotIn(slotID), pInfo));
}

CK_RV Shim_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO* pInfo) {
  CK_RV rv;
  if (!Enter(kC_GetTokenInfo, &rv)) return rv;
  return Leave(kC_GetTokenInfo, Target().C_GetTokenInfo(SlotIn(slotID), pInfo));
}

CK_RV Shim_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE* pMechanismList, CK_ULONG_PTR pulCount) {
  CK_RV rv;
  if (!Enter(kC_GetMechanismList, &rv)) return rv;
  return Leave(kC_GetMechanismList, Target().C_GetMechanismList(SlotIn(slotID), pMechanismList, pulCount));
}

CK_RV Shim_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO* pInfo) {
  CK_RV rv;
  if (!Enter(kC_GetMechanismInfo, &rv)) return rv;
  return Leave(kC_GetMechanismInfo, Target().C_GetMechanismInfo(SlotIn(slotID), type, pInfo));
}

CK_RV Shim_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel) {
  CK_RV rv;
  if (!Enter(kC_InitToken, &rv)) return rv;
  return Leave(kC_InitToken, Target().C_InitToken(SlotIn(slotID), pPin, ulPinLen, pLabel));
}

CK_RV Shim_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen) {
  CK_RV rv;
  if (!Enter(kC_InitPIN, &rv)) return rv;
  return Leave(kC_InitPIN, Target().C_InitPIN(HandleIn(hSession), pPin, ulPinLen));
}

CK_RV Shim_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin,
                  CK_ULONG ulNewLen) {
  CK_RV rv;
  if (!Enter(kC_SetPIN, &rv)) return rv;
  return Leave(kC_SetPIN, Target().C_SetPIN(HandleIn(hSession), pOldPin, ulOldLen, pNewPin, ulNewLen));
}

// Notify callbacks are passed through untranslated (SoftHSM2 never calls them).
CK_RV Shim_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
                       CK_SESSION_HANDLE* phSession) {
  CK_RV rv;
  if (!Enter(kC_OpenSession, &rv)) return rv;
  CK_SLOT_ID slot = SlotIn(slotID);
  rv = Target().C_OpenSession(slot, flags, pApplication, Notify, phSession);
  if (rv == ck::CKR_OK && phSession != nullptr) {
    SessionOpened(*phSession, slot);
    *phSession = HandleOut(*phSession);
  }
  rv = Leave(kC_OpenSession, rv);
  WriteStats();
  return rv;
}

CK_RV Shim_CloseSession(CK_SESSION_HANDLE hSession) {
  CK_RV rv;
  if (!Enter(kC_CloseSession, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  rv = Target().C_CloseSession(session);
  if (rv == ck::CKR_OK) SessionClosed(session);
  rv = Leave(kC_CloseSession, rv);
  WriteStats();
  return rv;
}

CK_RV Shim_CloseAllSessions(CK_SLOT_ID slotID) {
  CK_RV rv;
  if (!Enter(kC_CloseAllSessions, &rv)) return rv;
  CK_SLOT_ID slot = SlotIn(slotID);
  rv = Target().C_CloseAllSessions(slot);
  if (rv == ck::CKR_OK) SlotSessionsClosed(slot);
  rv = Leave(kC_CloseAllSessions, rv);
  WriteStats();
  return rv;
}

CK_RV Shim_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO* pInfo) {
  CK_RV rv;
  if (!Enter(kC_GetSessionInfo, &rv)) return rv;
  rv = Target().C_GetSessionInfo(HandleIn(hSession), pInfo);
  if (rv == ck::CKR_OK && pInfo != nullptr) pInfo->slotID = SlotOut(pInfo->slotID);
  return Leave(kC_GetSessionInfo, rv);
}

// The saved state is opaque; handles inside it (if any) are the target's own.
CK_RV Shim_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                             CK_ULONG_PTR pulOperationStateLen) {
  CK_RV rv;
  if (!Enter(kC_GetOperationState, &rv)) return rv;
  return Leave(kC_GetOperationState,
               Target().C_GetOperationState(HandleIn(hSession), pOperationState, pulOperationStateLen));
}

CK_RV Shim_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, CK_ULONG ulOperationStateLen,
                             CK_OBJECT_HANDLE hEncryptionKey, CK_OBJECT_HANDLE hAuthenticationKey) {
  CK_RV rv;
  if (!Enter(kC_SetOperationState, &rv)) return rv;
  return Leave(kC_SetOperationState,
               Target().C_SetOperationState(HandleIn(hSession), pOperationState, ulOperationStateLen,
                                            HandleIn(hEncryptionKey), HandleIn(hAuthenticationKey)));
}

CK_RV Shim_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen) {
  CK_RV rv;
  if (!Enter(kC_Login, &rv)) return rv;
  return Leave(kC_Login, Target().C_Login(HandleIn(hSession), userType, pPin, ulPinLen));
}

CK_RV Shim_Logout(CK_SESSION_HANDLE hSession) {
  CK_RV rv;
  if (!Enter(kC_Logout, &rv)) return rv;
  return Leave(kC_Logout, Target().C_Logout(HandleIn(hSession)));
}

CK_RV Shim_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE* pTemplate, CK_ULONG ulCount,
                        CK_OBJECT_HANDLE* phObject) {
  CK_RV rv;
  if (!Enter(kC_CreateObject, &rv)) return rv;
  rv = Target().C_CreateObject(HandleIn(hSession), pTemplate, ulCount, phObject);
  if (rv == ck::CKR_OK && phObject != nullptr) *phObject = HandleOut(*phObject);
  return Leave(kC_CreateObject, rv);
}

CK_RV Shim_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE* pTemplate,
                      CK_ULONG ulCount, CK_OBJECT_HANDLE* phNewObject) {
  CK_RV rv;
  if (!Enter(kC_CopyObject, &rv)) return rv;
  rv = Target().C_CopyObject(HandleIn(hSession), HandleIn(hObject), pTemplate, ulCount, phNewObject);
  if (rv == ck::CKR_OK && phNewObject != nullptr) *phNewObject = HandleOut(*phNewObject);
  return Leave(kC_CopyObject, rv);
}

CK_RV Shim_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject) {
  CK_RV rv;
  if (!Enter(kC_DestroyObject, &rv)) return rv;
  return Leave(kC_DestroyObject, Target().C_DestroyObject(HandleIn(hSession), HandleIn(hObject)));
}

CK_RV Shim_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize) {
  CK_RV rv;
  if (!Enter(kC_GetObjectSize, &rv)) return rv;
  return Leave(kC_GetObjectSize, Target().C_GetObjectSize(HandleIn(hSession), HandleIn(hObject), pulSize));
}

CK_RV Shim_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE* pTemplate,
                             CK_ULONG ulCount) {
  CK_RV rv;
  if (!Enter(kC_GetAttributeValue, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  CK_OBJECT_HANDLE object = HandleIn(hObject);
  if (LieAboutAttributes(session, object, pTemplate, ulCount, &rv)) return rv;
  return Leave(kC_GetAttributeValue, Target().C_GetAttributeValue(session, object, pTemplate, ulCount));
}

CK_RV Shim_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE* pTemplate,
                             CK_ULONG ulCount) {
  CK_RV rv;
  if (!Enter(kC_SetAttributeValue, &rv)) return rv;
  return Leave(kC_SetAttributeValue,
               Target().C_SetAttributeValue(HandleIn(hSession), HandleIn(hObject), pTemplate, ulCount));
}

CK_RV Shim_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE* pTemplate, CK_ULONG ulCount) {
  CK_RV rv;
  if (!Enter(kC_FindObjectsInit, &rv)) return rv;
  return Leave(kC_FindObjectsInit, Target().C_FindObjectsInit(HandleIn(hSession), pTemplate, ulCount));
}

CK_RV Shim_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE* phObject, CK_ULONG ulMaxObjectCount,
                       CK_ULONG_PTR pulObjectCount) {
  CK_RV rv;
  if (!Enter(kC_FindObjects, &rv)) return rv;
  rv = Target().C_FindObjects(HandleIn(hSession), phObject, ulMaxObjectCount, pulObjectCount);
  if (rv == ck::CKR_OK && phObject != nullptr && pulObjectCount != nullptr) {
    for (CK_ULONG i = 0; i < *pulObjectCount && i < ulMaxObjectCount; ++i) phObject[i] = HandleOut(phObject[i]);
  }
  return Leave(kC_FindObjects, rv);
}

CK_RV Shim_FindObjectsFinal(CK_SESSION_HANDLE hSession) {
  CK_RV rv;
  if (!Enter(kC_FindObjectsFinal, &rv)) return rv;
  return Leave(kC_FindObjectsFinal, Target().C_FindObjectsFinal(HandleIn(hSession)));
}

CK_RV Shim_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey) {
  CK_RV rv;
  if (!Enter(kC_EncryptInit, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  ResetLies(kC_EncryptInit, session);
  MechanismIn mechanism;
  return Leave(kC_EncryptInit, Target().C_EncryptInit(session, mechanism.Translate(pMechanism), HandleIn(hKey)));
}

CK_RV Shim_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pEncryptedData,
                   CK_ULONG_PTR pulEncryptedDataLen) {
  CK_RV rv;
  if (!Enter(kC_Encrypt, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  const CK_FUNCTION_LIST& t = Target();
  auto query = [&](CK_ULONG_PTR length) { return t.C_Encrypt(session, pData, ulDataLen, nullptr, length); };
  if (LieAboutLength(kC_Encrypt, session, pEncryptedData, pulEncryptedDataLen, query, &rv)) return rv;
  return Leave(kC_Encrypt, t.C_Encrypt(session, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen));
}

CK_RV Shim_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                         CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen) {
  CK_RV rv;
  if (!Enter(kC_EncryptUpdate, &rv)) return rv;
  return Leave(kC_EncryptUpdate,
               Target().C_EncryptUpdate(HandleIn(hSession), pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen));
}

CK_RV Shim_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
                        CK_ULONG_PTR pulLastEncryptedPartLen) {
  CK_RV rv;
  if (!Enter(kC_EncryptFinal, &rv)) return rv;
  return Leave(kC_EncryptFinal,
               Target().C_EncryptFinal(HandleIn(hSession), pLastEncryptedPart, pulLastEncryptedPartLen));
}

CK_RV Shim_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey) {
  CK_RV rv;
  if (!Enter(kC_DecryptInit, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  ResetLies(kC_DecryptInit, session);
  MechanismIn mechanism;
  return Leave(kC_DecryptInit, Target().C_DecryptInit(session, mechanism.Translate(pMechanism), HandleIn(hKey)));
}

CK_RV Shim_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
                   CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen) {
  CK_RV rv;
  if (!Enter(kC_Decrypt, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  const CK_FUNCTION_LIST& t = Target();
  auto query = [&](CK_ULONG_PTR length) {
    return t.C_Decrypt(session, pEncryptedData, ulEncryptedDataLen, nullptr, length);
  };
  if (LieAboutLength(kC_Decrypt, session, pData, pulDataLen, query, &rv)) return rv;
  return Leave(kC_Decrypt, t.C_Decrypt(session, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen));
}

CK_RV Shim_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
                         CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen) {
  CK_RV rv;
  if (!Enter(kC_DecryptUpdate, &rv)) return rv;
  return Leave(kC_DecryptUpdate, Target().C_DecryptUpdate(HandleIn(hSession), pEncryptedPart, ulEncryptedPartLen,
                                                          pPart, pulPartLen));
}

CK_RV Shim_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen) {
  CK_RV rv;
  if (!Enter(kC_DecryptFinal, &rv)) return rv;
  return Leave(kC_DecryptFinal, Target().C_DecryptFinal(HandleIn(hSession), pLastPart, pulLastPartLen));
}

CK_RV Shim_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism) {
  CK_RV rv;
  if (!Enter(kC_DigestInit, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  ResetLies(kC_DigestInit, session);
  MechanismIn mechanism;
  return Leave(kC_DigestInit, Target().C_DigestInit(session, mechanism.Translate(pMechanism)));
}

CK_RV Shim_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
                  CK_ULONG_PTR pulDigestLen) {
  CK_RV rv;
  if (!Enter(kC_Digest, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  const CK_FUNCTION_LIST& t = Target();
  auto query = [&](CK_ULONG_PTR length) { return t.C_Digest(session, pData, ulDataLen, nullptr, length); };
  if (LieAboutLength(kC_Digest, session, pDigest, pulDigestLen, query, &rv)) return rv;
  return Leave(kC_Digest, t.C_Digest(session, pData, ulDataLen, pDigest, pulDigestLen));
}

CK_RV Shim_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  CK_RV rv;
  if (!Enter(kC_DigestUpdate, &rv)) return rv;
  return Leave(kC_DigestUpdate, Target().C_DigestUpdate(HandleIn(hSession), pPart, ulPartLen));
}

CK_RV Shim_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey) {
  CK_RV rv;
  if (!Enter(kC_DigestKey, &rv)) return rv;
  return Leave(kC_DigestKey, Target().C_DigestKey(HandleIn(hSession), HandleIn(hKey)));
}

CK_RV Shim_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen) {
  CK_RV rv;
  if (!Enter(kC_DigestFinal, &rv)) return rv;
  return Leave(kC_DigestFinal, Target().C_DigestFinal(HandleIn(hSession), pDigest, pulDigestLen));
}

CK_RV Shim_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey) {
  CK_RV rv;
  if (!Enter(kC_SignInit, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  ResetLies(kC_SignInit, session);
  MechanismIn mechanism;
  return Leave(kC_SignInit, Target().C_SignInit(session, mechanism.Translate(pMechanism), HandleIn(hKey)));
}

CK_RV Shim_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                CK_ULONG_PTR pulSignatureLen) {
  CK_RV rv;
  if (!Enter(kC_Sign, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  const CK_FUNCTION_LIST& t = Target();
  auto query = [&](CK_ULONG_PTR length) { return t.C_Sign(session, pData, ulDataLen, nullptr, length); };
  if (LieAboutLength(kC_Sign, session, pSignature, pulSignatureLen, query, &rv)) return rv;
  return Leave(kC_Sign, t.C_Sign(session, pData, ulDataLen, pSignature, pulSignatureLen));
}

CK_RV Shim_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  CK_RV rv;
  if (!Enter(kC_SignUpdate, &rv)) return rv;
  return Leave(kC_SignUpdate, Target().C_SignUpdate(HandleIn(hSession), pPart, ulPartLen));
}

CK_RV Shim_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen) {
  CK_RV rv;
  if (!Enter(kC_SignFinal, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  const CK_FUNCTION_LIST& t = Target();
  auto query = [&](CK_ULONG_PTR length) { return t.C_SignFinal(session, nullptr, length); };
  if (LieAboutLength(kC_SignFinal, session, pSignature, pulSignatureLen, query, &rv)) return rv;
  return Leave(kC_SignFinal, t.C_SignFinal(session, pSignature, pulSignatureLen));
}

CK_RV Shim_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey) {
  CK_RV rv;
  if (!Enter(kC_SignRecoverInit, &rv)) return rv;
  MechanismIn mechanism;
  return Leave(kC_SignRecoverInit,
               Target().C_SignRecoverInit(HandleIn(hSession), mechanism.Translate(pMechanism), HandleIn(hKey)));
}

CK_RV Shim_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                       CK_ULONG_PTR pulSignatureLen) {
  CK_RV rv;
  if (!Enter(kC_SignRecover, &rv)) return rv;
  return Leave(kC_SignRecover,
               Target().C_SignRecover(HandleIn(hSession), pData, ulDataLen, pSignature, pulSignatureLen));
}

CK_RV Shim_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey) {
  CK_RV rv;
  if (!Enter(kC_VerifyInit, &rv)) return rv;
  MechanismIn mechanism;
  return Leave(kC_VerifyInit,
               Target().C_VerifyInit(HandleIn(hSession), mechanism.Translate(pMechanism), HandleIn(hKey)));
}

CK_RV Shim_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                  CK_ULONG ulSignatureLen) {
  CK_RV rv;
  if (!Enter(kC_Verify, &rv)) return rv;
  return Leave(kC_Verify, Target().C_Verify(HandleIn(hSession), pData, ulDataLen, pSignature, ulSignatureLen));
}

CK_RV Shim_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen) {
  CK_RV rv;
  if (!Enter(kC_VerifyUpdate, &rv)) return rv;
  return Leave(kC_VerifyUpdate, Target().C_VerifyUpdate(HandleIn(hSession), pPart, ulPartLen));
}

CK_RV Shim_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen) {
  CK_RV rv;
  if (!Enter(kC_VerifyFinal, &rv)) return rv;
  return Leave(kC_VerifyFinal, Target().C_VerifyFinal(HandleIn(hSession), pSignature, ulSignatureLen));
}

CK_RV Shim_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey) {
  CK_RV rv;
  if (!Enter(kC_VerifyRecoverInit, &rv)) return rv;
  MechanismIn mechanism;
  return Leave(kC_VerifyRecoverInit,
               Target().C_VerifyRecoverInit(HandleIn(hSession), mechanism.Translate(pMechanism), HandleIn(hKey)));
}

CK_RV Shim_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
                         CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen) {
  CK_RV rv;
  if (!Enter(kC_VerifyRecover, &rv)) return rv;
  return Leave(kC_VerifyRecover,
               Target().C_VerifyRecover(HandleIn(hSession), pSignature, ulSignatureLen, pData, pulDataLen));
}

CK_RV Shim_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                               CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen) {
  CK_RV rv;
  if (!Enter(kC_DigestEncryptUpdate, &rv)) return rv;
  return Leave(kC_DigestEncryptUpdate, Target().C_DigestEncryptUpdate(HandleIn(hSession), pPart, ulPartLen,
                                                                      pEncryptedPart, pulEncryptedPartLen));
}

CK_RV Shim_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
                               CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen) {
  CK_RV rv;
  if (!Enter(kC_DecryptDigestUpdate, &rv)) return rv;
  return Leave(kC_DecryptDigestUpdate, Target().C_DecryptDigestUpdate(HandleIn(hSession), pEncryptedPart,
                                                                      ulEncryptedPartLen, pPart, pulPartLen));
}

CK_RV Shim_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                             CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen) {
  CK_RV rv;
  if (!Enter(kC_SignEncryptUpdate, &rv)) return rv;
  return Leave(kC_SignEncryptUpdate, Target().C_SignEncryptUpdate(HandleIn(hSession), pPart, ulPartLen,
                                                                  pEncryptedPart, pulEncryptedPartLen));
}

CK_RV Shim_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, CK_ULONG ulEncryptedPartLen,
                               CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen) {
  CK_RV rv;
  if (!Enter(kC_DecryptVerifyUpdate, &rv)) return rv;
  return Leave(kC_DecryptVerifyUpdate, Target().C_DecryptVerifyUpdate(HandleIn(hSession), pEncryptedPart,
                                                                      ulEncryptedPartLen, pPart, pulPartLen));
}

CK_RV Shim_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_ATTRIBUTE* pTemplate,
                       CK_ULONG ulCount, CK_OBJECT_HANDLE* phKey) {
  CK_RV rv;
  if (!Enter(kC_GenerateKey, &rv)) return rv;
  MechanismIn mechanism;
  rv = Target().C_GenerateKey(HandleIn(hSession), mechanism.Translate(pMechanism), pTemplate, ulCount, phKey);
  if (rv == ck::CKR_OK && phKey != nullptr) *phKey = HandleOut(*phKey);
  return Leave(kC_GenerateKey, rv);
}

CK_RV Shim_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_ATTRIBUTE* pPublicKeyTemplate,
                           CK_ULONG ulPublicKeyAttributeCount, CK_ATTRIBUTE* pPrivateKeyTemplate,
                           CK_ULONG ulPrivateKeyAttributeCount, CK_OBJECT_HANDLE* phPublicKey,
                           CK_OBJECT_HANDLE* phPrivateKey) {
  CK_RV rv;
  if (!Enter(kC_GenerateKeyPair, &rv)) return rv;
  MechanismIn mechanism;
  rv = Target().C_GenerateKeyPair(HandleIn(hSession), mechanism.Translate(pMechanism), pPublicKeyTemplate,
                                  ulPublicKeyAttributeCount, pPrivateKeyTemplate, ulPrivateKeyAttributeCount,
                                  phPublicKey, phPrivateKey);
  if (rv == ck::CKR_OK && phPublicKey != nullptr) *phPublicKey = HandleOut(*phPublicKey);
  if (rv == ck::CKR_OK && phPrivateKey != nullptr) *phPrivateKey = HandleOut(*phPrivateKey);
  return Leave(kC_GenerateKeyPair, rv);
}

CK_RV Shim_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hWrappingKey,
                   CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen) {
  CK_RV rv;
  if (!Enter(kC_WrapKey, &rv)) return rv;
  CK_SESSION_HANDLE session = HandleIn(hSession);
  CK_OBJECT_HANDLE wrappingKey = HandleIn(hWrappingKey);
  CK_OBJECT_HANDLE key = HandleIn(hKey);
  MechanismIn mechanism;
  CK_MECHANISM* m = mechanism.Translate(pMechanism);
  const CK_FUNCTION_LIST& t = Target();
  auto query = [&](CK_ULONG_PTR length) { return t.C_WrapKey(session, m, wrappingKey, key, nullptr, length); };
  if (LieAboutLength(kC_WrapKey, session, pWrappedKey, pulWrappedKeyLen, query, &rv)) return rv;
  return Leave(kC_WrapKey, t.C_WrapKey(session, m, wrappingKey, key, pWrappedKey, pulWrappedKeyLen));
}

CK_RV Shim_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hUnwrappingKey,
                     CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE* pTemplate,
                     CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE* phKey) {
  CK_RV rv;
  if (!Enter(kC_UnwrapKey, &rv)) return rv;
  MechanismIn mechanism;
  rv = Target().C_UnwrapKey(HandleIn(hSession), mechanism.Translate(pMechanism), HandleIn(hUnwrappingKey),
                            pWrappedKey, ulWrappedKeyLen, pTemplate, ulAttributeCount, phKey);
  if (rv == ck::CKR_OK && phKey != nullptr) *phKey = HandleOut(*phKey);
  return Leave(kC_UnwrapKey, rv);
}

CK_RV Shim_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hBaseKey,
                     CK_ATTRIBUTE* pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE* phKey) {
  CK_RV rv;
  if (!Enter(kC_DeriveKey, &rv)) return rv;
  MechanismIn mechanism;
  rv = Target().C_DeriveKey(HandleIn(hSession), mechanism.Translate(pMechanism), HandleIn(hBaseKey), pTemplate,
                            ulAttributeCount, phKey);
  if (rv == ck::CKR_OK && phKey != nullptr) *phKey = HandleOut(*phKey);
  return Leave(kC_DeriveKey, rv);
}

CK_RV Shim_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen) {
  CK_RV rv;
  if (!Enter(kC_SeedRandom, &rv)) return rv;
  return Leave(kC_SeedRandom, Target().C_SeedRandom(HandleIn(hSession), pSeed, ulSeedLen));
}

CK_RV Shim_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen) {
  CK_RV rv;
  if (!Enter(kC_GenerateRandom, &rv)) return rv;
  return Leave(kC_GenerateRandom, Target().C_GenerateRandom(HandleIn(hSession), RandomData, ulRandomLen));
}

CK_RV Shim_GetFunctionStatus(CK_SESSION_HANDLE hSession) {
  CK_RV rv;
  if (!Enter(kC_GetFunctionStatus, &rv)) return rv;
  return Leave(kC_GetFunctionStatus, Target().C_GetFunctionStatus(HandleIn(hSession)));
}

CK_RV Shim_CancelFunction(CK_SESSION_HANDLE hSession) {
  CK_RV rv;
  if (!Enter(kC_CancelFunction, &rv)) return rv;
  return Leave(kC_CancelFunction, Target().C_CancelFunction(HandleIn(hSession)));
}

CK_RV Shim_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID* pSlot, CK_VOID_PTR pReserved) {
  CK_RV rv;
  if (!Enter(kC_WaitForSlotEvent, &rv)) return rv;
  rv = Target().C_WaitForSlotEvent(flags, pSlot, pReserved);
  if (rv == ck::CKR_OK && pSlot != nullptr) *pSlot = SlotOut(*pSlot);
  return Leave(kC_WaitForSlotEvent, rv);
}

// Filled by name rather than position, so two functions of the same signature can't swap.
CK_FUNCTION_LIST MakeFunctionList() {
  CK_FUNCTION_LIST list{};
  list.version = {2, 40};
  list.C_Initialize = Shim_Initialize;
  list.C_Finalize = Shim_Finalize;
  list.C_GetInfo = Shim_GetInfo;
  list.C_GetFunctionList = Shim_GetFunctionList;
  list.C_GetSlotList = Shim_GetSlotList;
  list.C_GetSlotInfo = Shim_GetSlotInfo;
  list.C_GetTokenInfo = Shim_GetTokenInfo;
  list.C_GetMechanismList = Shim_GetMechanismList;
  list.C_GetMechanismInfo = Shim_GetMechanismInfo;
  list.C_InitToken = Shim_InitToken;
  list.C_InitPIN = Shim_InitPIN;
  list.C_SetPIN = Shim_SetPIN;
  list.C_OpenSession = Shim_OpenSession;
  list.C_CloseSession = Shim_CloseSession;
  list.C_CloseAllSessions = Shim_CloseAllSessions;
  list.C_GetSessionInfo = Shim_GetSessionInfo;
  list.C_GetOperationState = Shim_GetOperationState;
  list.C_SetOperationState = Shim_SetOperationState;
  list.C_Login = Shim_Login;
  list.C_Logout = Shim_Logout;
  list.C_CreateObject = Shim_CreateObject;
  list.C_CopyObject = Shim_CopyObject;
  list.C_DestroyObject = Shim_DestroyObject;
  list.C_GetObjectSize = Shim_GetObjectSize;
  list.C_GetAttributeValue = Shim_GetAttributeValue;
  list.C_SetAttributeValue = Shim_SetAttributeValue;
  list.C_FindObjectsInit = Shim_FindObjectsInit;
  list.C_FindObjects = Shim_FindObjects;
  list.C_FindObjectsFinal = Shim_FindObjectsFinal;
  list.C_EncryptInit = Shim_EncryptInit;
  list.C_Encrypt = Shim_Encrypt;
  list.C_EncryptUpdate = Shim_EncryptUpdate;
  list.C_EncryptFinal = Shim_EncryptFinal;
  list.C_DecryptInit = Shim_DecryptInit;
  list.C_Decrypt = Shim_Decrypt;
  list.C_DecryptUpdate = Shim_DecryptUpdate;
  list.C_DecryptFinal = Shim_DecryptFinal;
  list.C_DigestInit = Shim_DigestInit;
  list.C_Digest = Shim_Digest;
  list.C_DigestUpdate = Shim_DigestUpdate;
  list.C_DigestKey = Shim_DigestKey;
  list.C_DigestFinal = Shim_DigestFinal;
  list.C_SignInit = Shim_SignInit;
  list.C_Sign = Shim_Sign;
  list.C_SignUpdate = Shim_SignUpdate;
  list.C_SignFinal = Shim_SignFinal;
  list.C_SignRecoverInit = Shim_SignRecoverInit;
  list.C_SignRecover = Shim_SignRecover;
  list.C_VerifyInit = Shim_VerifyInit;
  list.C_Verify = Shim_Verify;
  list.C_VerifyUpdate = Shim_VerifyUpdate;
  list.C_VerifyFinal = Shim_VerifyFinal;
  list.C_VerifyRecoverInit = Shim_VerifyRecoverInit;
  list.C_VerifyRecover = Shim_VerifyRecover;
  list.C_DigestEncryptUpdate = Shim_DigestEncryptUpdate;
  list.C_DecryptDigestUpdate = Shim_DecryptDigestUpdate;
  list.C_SignEncryptUpdate = Shim_SignEncryptUpdate;
  list.C_DecryptVerifyUpdate = Shim_DecryptVerifyUpdate;
  list.C_GenerateKey = Shim_GenerateKey;
  list.C_GenerateKeyPair = Shim_GenerateKeyPair;
  list.C_WrapKey = Shim_WrapKey;
  list.C_UnwrapKey = Shim_UnwrapKey;
  list.C_DeriveKey = Shim_DeriveKey;
  list.C_SeedRandom = Shim_SeedRandom;
  list.C_GenerateRandom = Shim_GenerateRandom;
  list.C_GetFunctionStatus = Shim_GetFunctionStatus;
  list.C_CancelFunction = Shim_CancelFunction;
  list.C_WaitForSlotEvent = Shim_WaitForSlotEvent;
  return list;
}

CK_FUNCTION_LIST g_functionList = MakeFunctionList();

CK_CHAR g_interfaceName[] = "PKCS 11";
CK_INTERFACE g_interface = {g_interfaceName, &g_functionList, 0};

CK_RV Shim_GetFunctionList(CK_FUNCTION_LIST** ppFunctionList) {
  RefreshEnvironment();  // discovery is where a new load starts: pick up its control file
  CK_RV rv;
  if (!Enter(kC_GetFunctionList, &rv)) return rv;
  if (ppFunctionList == nullptr) return Leave(kC_GetFunctionList, ck::CKR_ARGUMENTS_BAD);
  *ppFunctionList = &g_functionList;
  MarkServedVia("C_GetFunctionList");
  return Leave(kC_GetFunctionList, ck::CKR_OK);
}

// Only the "PKCS 11" interface, version 2.40 (the list above); anything else is refused.
CK_RV Shim_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION* pVersion, CK_INTERFACE** ppInterface,
                        CK_FLAGS flags) {
  RefreshEnvironment();
  CK_RV rv;
  if (!Enter(kC_GetInterface, &rv)) return rv;
  if (!InterfaceEnabled()) return Leave(kC_GetInterface, ck::CKR_FUNCTION_NOT_SUPPORTED);
  if (ppInterface == nullptr) return Leave(kC_GetInterface, ck::CKR_ARGUMENTS_BAD);
  bool nameMatches = pInterfaceName == nullptr ||
                     std::strcmp(reinterpret_cast<const char*>(pInterfaceName), "PKCS 11") == 0;
  bool versionMatches = pVersion == nullptr || (pVersion->major == 2 && pVersion->minor == 40);
  if (!nameMatches || !versionMatches || (flags & ~g_interface.flags) != 0) {
    return Leave(kC_GetInterface, ck::CKR_ARGUMENTS_BAD);
  }
  *ppInterface = &g_interface;
  MarkServedVia("C_GetInterface");
  return Leave(kC_GetInterface, ck::CKR_OK);
}

}  // namespace
}  // namespace shim

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST** ppFunctionList) {
  return shim::Shim_GetFunctionList(ppFunctionList);
}

extern "C" __attribute__((visibility("default"))) CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName,
                                                                      CK_VERSION* pVersion,
                                                                      CK_INTERFACE** ppInterface, CK_FLAGS flags) {
  return shim::Shim_GetInterface(pInterfaceName, pVersion, ppInterface, flags);
}
