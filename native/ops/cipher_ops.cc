// Encryption and decryption: the standard C_Encrypt* and C_Decrypt* functions, and the one-hop
// encrypt() / decrypt() that run Init and the single-part call in one engine job.
#include <algorithm>

#include "call_shapes.h"
#include "method_tables.h"

namespace p11 {

namespace {

// Room for padding, an IV or an AEAD tag on top of the input, so one call normally suffices;
// a larger output is fetched after CKR_BUFFER_TOO_SMALL.
constexpr size_t kOutputSlack = 256;
constexpr size_t kMinOutputGuess = 1024;
constexpr size_t kFinalGuess = 1024;

size_t CipherOutputGuess(size_t inputSize) { return std::max(inputSize + kOutputSlack, kMinOutputGuess); }

struct EncryptInitOp : KeyedInitCall<EncryptInitOp> {
  static constexpr const char* kName = "C_EncryptInit";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_EncryptInit;
};

struct EncryptOp : BytesInOutCall<EncryptOp> {
  static constexpr const char* kName = "C_Encrypt";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_Encrypt;
  static constexpr const char* kInput = "data";
  static size_t OutputGuess(size_t size) { return CipherOutputGuess(size); }
};

struct EncryptUpdateOp : BytesInOutCall<EncryptUpdateOp> {
  static constexpr const char* kName = "C_EncryptUpdate";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_EncryptUpdate;
  static constexpr const char* kInput = "part";
  static size_t OutputGuess(size_t size) { return CipherOutputGuess(size); }
};

struct EncryptFinalOp : BytesOutCall<EncryptFinalOp> {
  static constexpr const char* kName = "C_EncryptFinal";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_EncryptFinal;
  static size_t OutputGuess(size_t) { return kFinalGuess; }
};

struct DecryptInitOp : KeyedInitCall<DecryptInitOp> {
  static constexpr const char* kName = "C_DecryptInit";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_DecryptInit;
};

struct DecryptOp : BytesInOutCall<DecryptOp> {
  static constexpr const char* kName = "C_Decrypt";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_Decrypt;
  static constexpr const char* kInput = "encryptedData";
  static size_t OutputGuess(size_t size) { return CipherOutputGuess(size); }
};

struct DecryptUpdateOp : BytesInOutCall<DecryptUpdateOp> {
  static constexpr const char* kName = "C_DecryptUpdate";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_DecryptUpdate;
  static constexpr const char* kInput = "encryptedPart";
  static size_t OutputGuess(size_t size) { return CipherOutputGuess(size); }
};

struct DecryptFinalOp : BytesOutCall<DecryptFinalOp> {
  static constexpr const char* kName = "C_DecryptFinal";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_DecryptFinal;
  static size_t OutputGuess(size_t) { return kFinalGuess; }
};

// encrypt(session, mechanism, key, data) and decrypt(session, mechanism, key, encryptedData).
struct OneShotEncryptOp : InitThenCall<EncryptInitOp, EncryptOp> {
  static constexpr const char* kName = "encrypt";
};

struct OneShotDecryptOp : InitThenCall<DecryptInitOp, DecryptOp> {
  static constexpr const char* kName = "decrypt";
};

}  // namespace

void AddCipherMethods(MethodTable& table) {
  AddSyncAndAsync<EncryptInitOp>(table);
  AddSyncAndAsync<EncryptOp>(table);
  AddSyncAndAsync<EncryptUpdateOp>(table);
  AddSyncAndAsync<EncryptFinalOp>(table);
  AddSyncAndAsync<DecryptInitOp>(table);
  AddSyncAndAsync<DecryptOp>(table);
  AddSyncAndAsync<DecryptUpdateOp>(table);
  AddSyncAndAsync<DecryptFinalOp>(table);
  AddAsyncAs<OneShotEncryptOp>(table, "encrypt");
  table.emplace_back("encryptSync", &SyncEntry<OneShotEncryptOp>);
  AddAsyncAs<OneShotDecryptOp>(table, "decrypt");
  table.emplace_back("decryptSync", &SyncEntry<OneShotDecryptOp>);
}

}  // namespace p11
