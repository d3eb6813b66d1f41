// Attribute templates in both directions. Values are converted by the attribute's kind from
// the constants table (CK_BBOOL, CK_ULONG, bytes, UTF-8, CK_DATE, nested templates, mechanism
// lists); unknown vendor attributes follow the JS value's type, and are read back as bytes.
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../pkcs11/types.h"
#include "args.h"

namespace p11 {

// A template to pass in: [{ type, value }, ...]. Owns every value; pointers stay valid when
// the template is moved (they point into heap storage, never into this object).
class Template {
 public:
  void Parse(const Args& args, const Napi::Value& value, const std::string& name);
  // Never NULL: some modules (SoftHSM2) answer a NULL template with CKR_ARGUMENTS_BAD even when
  // the count is 0, so an empty template points at an unused entry.
  CK_ATTRIBUTE* data() { return attributes_.empty() ? &empty_ : attributes_.data(); }
  CK_ULONG count() const { return static_cast<CK_ULONG>(attributes_.size()); }
  bool Has(CK_ATTRIBUTE_TYPE type) const;
  // Appends a CK_BBOOL attribute unless the template already has one of this type.
  void AddBoolIfAbsent(CK_ATTRIBUTE_TYPE type, bool value);

 private:
  void ParseValue(const Args& args, CK_ATTRIBUTE_TYPE type, const Napi::Value& value, const std::string& name,
                  std::vector<CK_BYTE>& out);

  std::vector<CK_ATTRIBUTE> attributes_;
  std::vector<std::vector<CK_BYTE>> values_;
  std::vector<std::unique_ptr<Template>> nested_;
  CK_ATTRIBUTE empty_{};
};

// C_GetAttributeValue with the two-call length query done here. One attribute that is
// sensitive or unknown to the object does not lose the others: each gets its own status.
class AttributeQuery {
 public:
  // `value`: array of attribute types, or of { type } objects.
  void Parse(const Args& args, const Napi::Value& value, const char* name);
  // Worker-safe: no N-API. Returns the failing CK_RV, or CKR_OK when every attribute has a
  // value or a per-attribute status.
  CK_RV Run(const CK_FUNCTION_LIST* functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object);
  // [{ type, value }] and, for attributes without a value, { type, value: null, status }.
  Napi::Array ToJs(Napi::Env env) const;

  struct Entry {
    CK_ATTRIBUTE_TYPE type = 0;
    CK_ULONG length = 0;
    CK_RV status = 0;  // CKR_OK, CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID, ...
    std::vector<CK_BYTE> value;
    std::vector<Entry> nested;  // CKA_*_TEMPLATE values
  };

 private:
  std::vector<Entry> entries_;
};

// Decodes one attribute value by its kind (shared with templates read back elsewhere).
Napi::Value AttributeValueToJs(Napi::Env env, const AttributeQuery::Entry& entry);

}  // namespace p11
