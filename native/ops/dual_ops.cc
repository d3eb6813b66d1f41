// The four dual-function updates, which continue two active operations with one call. Each
// takes a part and returns the (encrypted or decrypted) output for that part.
#include "call_shapes.h"
#include "method_tables.h"

namespace p11 {

namespace {

// Room for padding or a block carried over from an earlier part, on top of the part itself.
constexpr size_t kOutputSlack = 256;

// The four share their shape, their input's name and their output guess.
template <typename Self>
struct DualUpdateCall : BytesInOutCall<Self> {
  static constexpr const char* kInput = "part";
  static size_t OutputGuess(size_t size) { return size + kOutputSlack; }
};

struct DigestEncryptUpdateOp : DualUpdateCall<DigestEncryptUpdateOp> {
  static constexpr const char* kName = "C_DigestEncryptUpdate";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_DigestEncryptUpdate;
};

struct DecryptDigestUpdateOp : DualUpdateCall<DecryptDigestUpdateOp> {
  static constexpr const char* kName = "C_DecryptDigestUpdate";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_DecryptDigestUpdate;
};

struct SignEncryptUpdateOp : DualUpdateCall<SignEncryptUpdateOp> {
  static constexpr const char* kName = "C_SignEncryptUpdate";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_SignEncryptUpdate;
};

struct DecryptVerifyUpdateOp : DualUpdateCall<DecryptVerifyUpdateOp> {
  static constexpr const char* kName = "C_DecryptVerifyUpdate";
  static constexpr auto kFunction = &CK_FUNCTION_LIST::C_DecryptVerifyUpdate;
};

}  // namespace

void AddDualMethods(MethodTable& table) {
  AddSyncAndAsync<DigestEncryptUpdateOp>(table);
  AddSyncAndAsync<DecryptDigestUpdateOp>(table);
  AddSyncAndAsync<SignEncryptUpdateOp>(table);
  AddSyncAndAsync<DecryptVerifyUpdateOp>(table);
}

}  // namespace p11
