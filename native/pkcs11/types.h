// PKCS#11 v2.40 types and the function list, written from the OASIS specification
// (pkcs11-base-v2.40, section 3 and appendix). We do not include a system pkcs11.h: the
// binding must build where none is installed, and vendors ship subtly different copies.
//
// Platform rule from the standard: on Windows every Cryptoki structure is packed to 1 byte
// and CK_ULONG is 32 bits; elsewhere the platform's natural alignment is used and CK_ULONG
// is `unsigned long` (64 bits on LP64 Linux/macOS).
#pragma once

#ifdef _WIN32
#pragma pack(push, cryptoki, 1)
#define PKCS11_CALL __cdecl
#else
#define PKCS11_CALL
#endif

extern "C" {

typedef unsigned char CK_BYTE;
typedef CK_BYTE CK_CHAR;
typedef CK_BYTE CK_UTF8CHAR;
typedef CK_BYTE CK_BBOOL;
typedef unsigned long CK_ULONG;
typedef long CK_LONG;
typedef CK_ULONG CK_FLAGS;
typedef void* CK_VOID_PTR;
typedef CK_BYTE* CK_BYTE_PTR;
typedef CK_ULONG* CK_ULONG_PTR;
typedef CK_UTF8CHAR* CK_UTF8CHAR_PTR;

typedef CK_ULONG CK_RV;
typedef CK_ULONG CK_SLOT_ID;
typedef CK_ULONG CK_SESSION_HANDLE;
typedef CK_ULONG CK_OBJECT_HANDLE;
typedef CK_ULONG CK_OBJECT_CLASS;
typedef CK_ULONG CK_KEY_TYPE;
typedef CK_ULONG CK_CERTIFICATE_TYPE;
typedef CK_ULONG CK_ATTRIBUTE_TYPE;
typedef CK_ULONG CK_MECHANISM_TYPE;
typedef CK_ULONG CK_USER_TYPE;
typedef CK_ULONG CK_STATE;
typedef CK_ULONG CK_NOTIFICATION;
typedef CK_ULONG CK_RSA_PKCS_MGF_TYPE;
typedef CK_ULONG CK_RSA_PKCS_OAEP_SOURCE_TYPE;
typedef CK_ULONG CK_EC_KDF_TYPE;

struct CK_VERSION {
  CK_BYTE major;
  CK_BYTE minor;
};

struct CK_INFO {
  CK_VERSION cryptokiVersion;
  CK_UTF8CHAR manufacturerID[32];
  CK_FLAGS flags;
  CK_UTF8CHAR libraryDescription[32];
  CK_VERSION libraryVersion;
};

struct CK_SLOT_INFO {
  CK_UTF8CHAR slotDescription[64];
  CK_UTF8CHAR manufacturerID[32];
  CK_FLAGS flags;
  CK_VERSION hardwareVersion;
  CK_VERSION firmwareVersion;
};

struct CK_TOKEN_INFO {
  CK_UTF8CHAR label[32];
  CK_UTF8CHAR manufacturerID[32];
  CK_UTF8CHAR model[16];
  CK_CHAR serialNumber[16];
  CK_FLAGS flags;
  CK_ULONG ulMaxSessionCount;
  CK_ULONG ulSessionCount;
  CK_ULONG ulMaxRwSessionCount;
  CK_ULONG ulRwSessionCount;
  CK_ULONG ulMaxPinLen;
  CK_ULONG ulMinPinLen;
  CK_ULONG ulTotalPublicMemory;
  CK_ULONG ulFreePublicMemory;
  CK_ULONG ulTotalPrivateMemory;
  CK_ULONG ulFreePrivateMemory;
  CK_VERSION hardwareVersion;
  CK_VERSION firmwareVersion;
  CK_CHAR utcTime[16];
};

struct CK_SESSION_INFO {
  CK_SLOT_ID slotID;
  CK_STATE state;
  CK_FLAGS flags;
  CK_ULONG ulDeviceError;
};

struct CK_ATTRIBUTE {
  CK_ATTRIBUTE_TYPE type;
  CK_VOID_PTR pValue;
  CK_ULONG ulValueLen;
};

struct CK_DATE {
  CK_CHAR year[4];
  CK_CHAR month[2];
  CK_CHAR day[2];
};

struct CK_MECHANISM {
  CK_MECHANISM_TYPE mechanism;
  CK_VOID_PTR pParameter;
  CK_ULONG ulParameterLen;
};

struct CK_MECHANISM_INFO {
  CK_ULONG ulMinKeySize;
  CK_ULONG ulMaxKeySize;
  CK_FLAGS flags;
};

// Mechanism parameter structures (pkcs11-curr-v2.40).
struct CK_RSA_PKCS_PSS_PARAMS {
  CK_MECHANISM_TYPE hashAlg;
  CK_RSA_PKCS_MGF_TYPE mgf;
  CK_ULONG sLen;
};

struct CK_RSA_PKCS_OAEP_PARAMS {
  CK_MECHANISM_TYPE hashAlg;
  CK_RSA_PKCS_MGF_TYPE mgf;
  CK_RSA_PKCS_OAEP_SOURCE_TYPE source;
  CK_VOID_PTR pSourceData;
  CK_ULONG ulSourceDataLen;
};

struct CK_ECDH1_DERIVE_PARAMS {
  CK_EC_KDF_TYPE kdf;
  CK_ULONG ulSharedDataLen;
  CK_BYTE_PTR pSharedData;
  CK_ULONG ulPublicDataLen;
  CK_BYTE_PTR pPublicData;
};

// v2.40 layout (with ulIvBits), which SoftHSM2 and most v2.x modules expect.
struct CK_GCM_PARAMS {
  CK_BYTE_PTR pIv;
  CK_ULONG ulIvLen;
  CK_ULONG ulIvBits;
  CK_BYTE_PTR pAAD;
  CK_ULONG ulAADLen;
  CK_ULONG ulTagBits;
};

struct CK_AES_CTR_PARAMS {
  CK_ULONG ulCounterBits;
  CK_BYTE cb[16];
};

struct CK_EDDSA_PARAMS {
  CK_BBOOL phFlag;
  CK_ULONG ulContextDataLen;
  CK_BYTE_PTR pContextData;
};

typedef CK_RV(PKCS11_CALL* CK_NOTIFY)(CK_SESSION_HANDLE, CK_NOTIFICATION, CK_VOID_PTR);
typedef CK_RV(PKCS11_CALL* CK_CREATEMUTEX)(CK_VOID_PTR*);
typedef CK_RV(PKCS11_CALL* CK_DESTROYMUTEX)(CK_VOID_PTR);
typedef CK_RV(PKCS11_CALL* CK_LOCKMUTEX)(CK_VOID_PTR);
typedef CK_RV(PKCS11_CALL* CK_UNLOCKMUTEX)(CK_VOID_PTR);

struct CK_C_INITIALIZE_ARGS {
  CK_CREATEMUTEX CreateMutex;
  CK_DESTROYMUTEX DestroyMutex;
  CK_LOCKMUTEX LockMutex;
  CK_UNLOCKMUTEX UnlockMutex;
  CK_FLAGS flags;
  CK_VOID_PTR pReserved;
};

struct CK_FUNCTION_LIST;

// The 68 entry points in the order the standard fixes for CK_FUNCTION_LIST.
struct CK_FUNCTION_LIST {
  CK_VERSION version;
  CK_RV(PKCS11_CALL* C_Initialize)(CK_VOID_PTR pInitArgs);
  CK_RV(PKCS11_CALL* C_Finalize)(CK_VOID_PTR pReserved);
  CK_RV(PKCS11_CALL* C_GetInfo)(CK_INFO* pInfo);
  CK_RV(PKCS11_CALL* C_GetFunctionList)(CK_FUNCTION_LIST** ppFunctionList);
  CK_RV(PKCS11_CALL* C_GetSlotList)(CK_BBOOL tokenPresent, CK_SLOT_ID* pSlotList, CK_ULONG_PTR pulCount);
  CK_RV(PKCS11_CALL* C_GetSlotInfo)(CK_SLOT_ID slotID, CK_SLOT_INFO* pInfo);
  CK_RV(PKCS11_CALL* C_GetTokenInfo)(CK_SLOT_ID slotID, CK_TOKEN_INFO* pInfo);
  CK_RV(PKCS11_CALL* C_GetMechanismList)(CK_SLOT_ID slotID, CK_MECHANISM_TYPE* pMechanismList, CK_ULONG_PTR pulCount);
  CK_RV(PKCS11_CALL* C_GetMechanismInfo)(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO* pInfo);
  CK_RV(PKCS11_CALL* C_InitToken)(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel);
  CK_RV(PKCS11_CALL* C_InitPIN)(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen);
  CK_RV(PKCS11_CALL* C_SetPIN)(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
                               CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen);
  CK_RV(PKCS11_CALL* C_OpenSession)(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
                                    CK_SESSION_HANDLE* phSession);
  CK_RV(PKCS11_CALL* C_CloseSession)(CK_SESSION_HANDLE hSession);
  CK_RV(PKCS11_CALL* C_CloseAllSessions)(CK_SLOT_ID slotID);
  CK_RV(PKCS11_CALL* C_GetSessionInfo)(CK_SESSION_HANDLE hSession, CK_SESSION_INFO* pInfo);
  CK_RV(PKCS11_CALL* C_GetOperationState)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                          CK_ULONG_PTR pulOperationStateLen);
  CK_RV(PKCS11_CALL* C_SetOperationState)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                          CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
                                          CK_OBJECT_HANDLE hAuthenticationKey);
  CK_RV(PKCS11_CALL* C_Login)(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
                              CK_ULONG ulPinLen);
  CK_RV(PKCS11_CALL* C_Logout)(CK_SESSION_HANDLE hSession);
  CK_RV(PKCS11_CALL* C_CreateObject)(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE* pTemplate, CK_ULONG ulCount,
                                     CK_OBJECT_HANDLE* phObject);
  CK_RV(PKCS11_CALL* C_CopyObject)(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE* pTemplate,
                                   CK_ULONG ulCount, CK_OBJECT_HANDLE* phNewObject);
  CK_RV(PKCS11_CALL* C_DestroyObject)(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject);
  CK_RV(PKCS11_CALL* C_GetObjectSize)(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize);
  CK_RV(PKCS11_CALL* C_GetAttributeValue)(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                          CK_ATTRIBUTE* pTemplate, CK_ULONG ulCount);
  CK_RV(PKCS11_CALL* C_SetAttributeValue)(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                          CK_ATTRIBUTE* pTemplate, CK_ULONG ulCount);
  CK_RV(PKCS11_CALL* C_FindObjectsInit)(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE* pTemplate, CK_ULONG ulCount);
  CK_RV(PKCS11_CALL* C_FindObjects)(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE* phObject,
                                    CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount);
  CK_RV(PKCS11_CALL* C_FindObjectsFinal)(CK_SESSION_HANDLE hSession);
  CK_RV(PKCS11_CALL* C_EncryptInit)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey);
  CK_RV(PKCS11_CALL* C_Encrypt)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                                CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen);
  CK_RV(PKCS11_CALL* C_EncryptUpdate)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                      CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen);
  CK_RV(PKCS11_CALL* C_EncryptFinal)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
                                     CK_ULONG_PTR pulLastEncryptedPartLen);
  CK_RV(PKCS11_CALL* C_DecryptInit)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey);
  CK_RV(PKCS11_CALL* C_Decrypt)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
                                CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen);
  CK_RV(PKCS11_CALL* C_DecryptUpdate)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                      CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen);
  CK_RV(PKCS11_CALL* C_DecryptFinal)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen);
  CK_RV(PKCS11_CALL* C_DigestInit)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism);
  CK_RV(PKCS11_CALL* C_Digest)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
                               CK_ULONG_PTR pulDigestLen);
  CK_RV(PKCS11_CALL* C_DigestUpdate)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen);
  CK_RV(PKCS11_CALL* C_DigestKey)(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey);
  CK_RV(PKCS11_CALL* C_DigestFinal)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen);
  CK_RV(PKCS11_CALL* C_SignInit)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey);
  CK_RV(PKCS11_CALL* C_Sign)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                             CK_ULONG_PTR pulSignatureLen);
  CK_RV(PKCS11_CALL* C_SignUpdate)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen);
  CK_RV(PKCS11_CALL* C_SignFinal)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen);
  CK_RV(PKCS11_CALL* C_SignRecoverInit)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey);
  CK_RV(PKCS11_CALL* C_SignRecover)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                                    CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen);
  CK_RV(PKCS11_CALL* C_VerifyInit)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey);
  CK_RV(PKCS11_CALL* C_Verify)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                               CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen);
  CK_RV(PKCS11_CALL* C_VerifyUpdate)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen);
  CK_RV(PKCS11_CALL* C_VerifyFinal)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen);
  CK_RV(PKCS11_CALL* C_VerifyRecoverInit)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism,
                                          CK_OBJECT_HANDLE hKey);
  CK_RV(PKCS11_CALL* C_VerifyRecover)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
                                      CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen);
  CK_RV(PKCS11_CALL* C_DigestEncryptUpdate)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                            CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen);
  CK_RV(PKCS11_CALL* C_DecryptDigestUpdate)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                            CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen);
  CK_RV(PKCS11_CALL* C_SignEncryptUpdate)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                          CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen);
  CK_RV(PKCS11_CALL* C_DecryptVerifyUpdate)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                            CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen);
  CK_RV(PKCS11_CALL* C_GenerateKey)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_ATTRIBUTE* pTemplate,
                                    CK_ULONG ulCount, CK_OBJECT_HANDLE* phKey);
  CK_RV(PKCS11_CALL* C_GenerateKeyPair)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism,
                                        CK_ATTRIBUTE* pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                                        CK_ATTRIBUTE* pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                                        CK_OBJECT_HANDLE* phPublicKey, CK_OBJECT_HANDLE* phPrivateKey);
  CK_RV(PKCS11_CALL* C_WrapKey)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hWrappingKey,
                                CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen);
  CK_RV(PKCS11_CALL* C_UnwrapKey)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism,
                                  CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen,
                                  CK_ATTRIBUTE* pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE* phKey);
  CK_RV(PKCS11_CALL* C_DeriveKey)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hBaseKey,
                                  CK_ATTRIBUTE* pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE* phKey);
  CK_RV(PKCS11_CALL* C_SeedRandom)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen);
  CK_RV(PKCS11_CALL* C_GenerateRandom)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen);
  CK_RV(PKCS11_CALL* C_GetFunctionStatus)(CK_SESSION_HANDLE hSession);
  CK_RV(PKCS11_CALL* C_CancelFunction)(CK_SESSION_HANDLE hSession);
  CK_RV(PKCS11_CALL* C_WaitForSlotEvent)(CK_FLAGS flags, CK_SLOT_ID* pSlot, CK_VOID_PTR pReserved);
};

typedef CK_RV(PKCS11_CALL* CK_C_GetFunctionList)(CK_FUNCTION_LIST** ppFunctionList);

// PKCS#11 3.0 discovery: a module may offer several interfaces; "PKCS 11" with a 3.x list
// starts with exactly the 2.40 entry points above, so it can be used through this struct.
struct CK_INTERFACE {
  CK_CHAR* pInterfaceName;
  CK_VOID_PTR pFunctionList;
  CK_FLAGS flags;
};
typedef CK_RV(PKCS11_CALL* CK_C_GetInterface)(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION* pVersion,
                                             CK_INTERFACE** ppInterface, CK_FLAGS flags);

}  // extern "C"

#ifdef _WIN32
#pragma pack(pop, cryptoki)
#endif
