#include "mechanism.h"

#include <cstring>
#include <string>

#include "../generated/constants.h"
#include "ulong.h"

namespace p11 {

namespace {

// Reads one field of a parameter object, with errors naming its full path.
class Fields {
 public:
  Fields(const Args& args, const Napi::Object& object, const std::string& where)
      : args_(args), object_(object), where_(where) {}

  bool Has(const char* key) const {
    Napi::Value value = object_.Get(key);
    return !value.IsUndefined() && !value.IsNull();
  }
  CK_ULONG Ulong(const char* key) const {
    CK_ULONG out = 0;
    if (!UlongFromJs(object_.Get(key), out)) Fail(key, "a non-negative integer");
    return out;
  }
  bool Bool(const char* key) const {
    Napi::Value value = object_.Get(key);
    if (!value.IsBoolean()) Fail(key, "a boolean");
    return value.As<Napi::Boolean>().Value();
  }
  void Bytes(const char* key, std::vector<CK_BYTE>& out) const {
    BytesResult result = BytesFromJs(object_.Get(key), out);
    if (result == BytesResult::Ok) return;
    std::string name = where_ + "." + key;
    args_.FailBytes(name.c_str(), result);
  }
  [[noreturn]] void Fail(const char* key, const char* expected) const {
    std::string name = where_ + "." + key;
    args_.Fail(name.c_str(), expected);
  }

 private:
  const Args& args_;
  const Napi::Object& object_;
  const std::string& where_;
};

}  // namespace

void Mechanism::Parse(const Args& args, const Napi::Value& value, const char* name) {
  if (value.IsNumber() || value.IsBigInt()) {
    if (!UlongFromJs(value, type_)) args.Fail(name, "a mechanism type or { mechanism, parameter }");
    layout_ = Layout::None;
    return;
  }
  if (!value.IsObject() || value.IsArray()) args.Fail(name, "a mechanism type or { mechanism, parameter }");
  Napi::Object object = value.As<Napi::Object>();
  std::string where(name);
  if (!UlongFromJs(object.Get("mechanism"), type_)) {
    std::string field = where + ".mechanism";
    args.Fail(field.c_str(), "a mechanism type (non-negative integer)");
  }
  Napi::Value parameter = object.Get("parameter");
  if (parameter.IsUndefined() || parameter.IsNull()) {
    layout_ = Layout::None;
    return;
  }
  std::string parameterName = where + ".parameter";
  BytesResult bytes = BytesFromJs(parameter, first_);
  if (bytes == BytesResult::Ok) {
    layout_ = Layout::Raw;  // bytes are passed as they are, whatever the mechanism
    return;
  }
  if (bytes != BytesResult::NotBytes) args.FailBytes(parameterName.c_str(), bytes);
  if (parameter.IsNumber() || parameter.IsBigInt()) {
    if (!UlongFromJs(parameter, ulong_)) args.Fail(parameterName.c_str(), "a non-negative integer");
    layout_ = Layout::Ulong;
    return;
  }
  if (!parameter.IsObject()) args.Fail(parameterName.c_str(), "a Buffer, a number or a parameter object");
  ParseStructured(args, parameter.As<Napi::Object>(), parameterName);
}

void Mechanism::ParseStructured(const Args& args, const Napi::Object& parameter, const std::string& where) {
  Fields fields(args, parameter, where);
  switch (ck::MechanismParamKind(type_)) {
    case ck::ParamKind::Pss:
      layout_ = Layout::Pss;
      pss_.hashAlg = fields.Ulong("hashAlg");
      pss_.mgf = fields.Ulong("mgf");
      pss_.sLen = fields.Ulong("saltLen");
      return;
    case ck::ParamKind::Oaep:
      layout_ = Layout::Oaep;
      oaep_.hashAlg = fields.Ulong("hashAlg");
      oaep_.mgf = fields.Ulong("mgf");
      oaep_.source = fields.Has("source") ? fields.Ulong("source") : ck::CKZ_DATA_SPECIFIED;
      if (fields.Has("sourceData")) fields.Bytes("sourceData", first_);
      return;
    case ck::ParamKind::Ecdh1:
      layout_ = Layout::Ecdh1;
      ecdh1_.kdf = fields.Has("kdf") ? fields.Ulong("kdf") : ck::CKD_NULL;
      if (fields.Has("sharedData")) fields.Bytes("sharedData", first_);
      fields.Bytes("publicData", second_);
      return;
    case ck::ParamKind::Gcm:
      layout_ = Layout::Gcm;
      fields.Bytes("iv", first_);
      if (fields.Has("aad")) fields.Bytes("aad", second_);
      gcm_.ulTagBits = fields.Has("tagBits") ? fields.Ulong("tagBits") : 128;
      gcm_.ulIvBits = fields.Has("ivBits") ? fields.Ulong("ivBits") : first_.size() * 8;
      return;
    case ck::ParamKind::Ctr: {
      layout_ = Layout::Ctr;
      ctr_.ulCounterBits = fields.Ulong("counterBits");
      std::vector<CK_BYTE> block;
      fields.Bytes("counterBlock", block);
      if (block.size() != sizeof ctr_.cb) fields.Fail("counterBlock", "exactly 16 bytes");
      std::memcpy(ctr_.cb, block.data(), sizeof ctr_.cb);
      return;
    }
    case ck::ParamKind::EdDsa:
      layout_ = Layout::EdDsa;
      eddsa_.phFlag = fields.Has("phFlag") && fields.Bool("phFlag") ? 1 : 0;
      if (fields.Has("contextData")) fields.Bytes("contextData", first_);
      return;
    case ck::ParamKind::Iv:
      layout_ = Layout::Raw;
      fields.Bytes("iv", first_);
      return;
    default:
      args.Fail(where.c_str(), "a Buffer: this mechanism has no structured parameter known to the binding");
  }
}

CK_MECHANISM* Mechanism::Bind() {
  mechanism_.mechanism = type_;
  mechanism_.pParameter = nullptr;
  mechanism_.ulParameterLen = 0;
  auto firstOrNull = [this]() { return first_.empty() ? nullptr : first_.data(); };
  auto secondOrNull = [this]() { return second_.empty() ? nullptr : second_.data(); };
  switch (layout_) {
    case Layout::None:
      break;
    case Layout::Raw:
      mechanism_.pParameter = firstOrNull();
      mechanism_.ulParameterLen = first_.size();
      break;
    case Layout::Ulong:
      mechanism_.pParameter = &ulong_;
      mechanism_.ulParameterLen = sizeof ulong_;
      break;
    case Layout::Pss:
      mechanism_.pParameter = &pss_;
      mechanism_.ulParameterLen = sizeof pss_;
      break;
    case Layout::Oaep:
      oaep_.pSourceData = firstOrNull();
      oaep_.ulSourceDataLen = first_.size();
      mechanism_.pParameter = &oaep_;
      mechanism_.ulParameterLen = sizeof oaep_;
      break;
    case Layout::Ecdh1:
      ecdh1_.pSharedData = firstOrNull();
      ecdh1_.ulSharedDataLen = first_.size();
      ecdh1_.pPublicData = secondOrNull();
      ecdh1_.ulPublicDataLen = second_.size();
      mechanism_.pParameter = &ecdh1_;
      mechanism_.ulParameterLen = sizeof ecdh1_;
      break;
    case Layout::Gcm:
      gcm_.pIv = firstOrNull();
      gcm_.ulIvLen = first_.size();
      gcm_.pAAD = secondOrNull();
      gcm_.ulAADLen = second_.size();
      mechanism_.pParameter = &gcm_;
      mechanism_.ulParameterLen = sizeof gcm_;
      break;
    case Layout::Ctr:
      mechanism_.pParameter = &ctr_;
      mechanism_.ulParameterLen = sizeof ctr_;
      break;
    case Layout::EdDsa:
      eddsa_.pContextData = firstOrNull();
      eddsa_.ulContextDataLen = first_.size();
      mechanism_.pParameter = &eddsa_;
      mechanism_.ulParameterLen = sizeof eddsa_;
      break;
  }
  return &mechanism_;
}

}  // namespace p11
