#include "attributes.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "../generated/constants.h"
#include "ulong.h"

namespace p11 {

namespace {

constexpr CK_ULONG kUnavailable = ~static_cast<CK_ULONG>(0);  // CK_UNAVAILABLE_INFORMATION
constexpr size_t kMaxAttributes = 1024;
constexpr int kLengthRetries = 3;  // a module whose lengths keep changing is given up on

void AppendUlong(std::vector<CK_BYTE>& out, CK_ULONG value) {
  size_t at = out.size();
  out.resize(at + sizeof value);
  std::memcpy(out.data() + at, &value, sizeof value);
}

bool IsDate(const Napi::Value& value) {
  bool is = false;
  return napi_is_date(value.Env(), value, &is) == napi_ok && is;
}

// CK_DATE from a JS Date (its UTC calendar day) or an 8-digit "YYYYMMDD" string.
bool DateFromJs(const Napi::Value& value, std::vector<CK_BYTE>& out) {
  char text[16];
  if (IsDate(value)) {
    double ms = value.As<Napi::Date>().ValueOf();
    if (ms != ms) return false;  // Invalid Date
    // The UTC calendar day from the time value itself (days-to-civil conversion), not from the
    // object's methods, which a caller could have replaced.
    long long days = static_cast<long long>(std::floor(ms / 86400000.0)) + 719468;
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    long long dayOfEra = days - era * 146097;
    long long yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365;
    long long dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100);
    long long monthIndex = (5 * dayOfYear + 2) / 153;
    int day = static_cast<int>(dayOfYear - (153 * monthIndex + 2) / 5 + 1);
    int month = static_cast<int>(monthIndex < 10 ? monthIndex + 3 : monthIndex - 9);
    int year = static_cast<int>(yearOfEra + era * 400 + (month <= 2 ? 1 : 0));
    if (year < 0 || year > 9999 || month < 1 || month > 12 || day < 1 || day > 31) return false;
    std::snprintf(text, sizeof text, "%04d%02d%02d", year, month, day);
  } else if (value.IsString()) {
    std::string s = value.As<Napi::String>().Utf8Value();
    if (s.size() != 8 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    std::memcpy(text, s.data(), 8);
  } else {
    return false;
  }
  out.assign(text, text + 8);
  return true;
}

Napi::Value DateToJs(Napi::Env env, const std::vector<CK_BYTE>& bytes) {
  if (bytes.empty()) return env.Null();
  std::string text(bytes.begin(), bytes.end());
  if (text.size() != 8 || text.find_first_not_of("0123456789") != std::string::npos) {
    return Napi::String::New(env, text);  // not a valid CK_DATE: show what the token holds
  }
  Napi::Function utc = env.Global().Get("Date").As<Napi::Object>().Get("UTC").As<Napi::Function>();
  double ms = utc.Call({Napi::Number::New(env, std::stoi(text.substr(0, 4))),
                        Napi::Number::New(env, std::stoi(text.substr(4, 2)) - 1),
                        Napi::Number::New(env, std::stoi(text.substr(6, 2)))})
                  .As<Napi::Number>()
                  .DoubleValue();
  return Napi::Date::New(env, ms);
}

}  // namespace

void Template::Parse(const Args& args, const Napi::Value& value, const std::string& name) {
  if (!value.IsArray()) args.Fail(name.c_str(), "an array of { type, value } attributes");
  Napi::Array array = value.As<Napi::Array>();
  uint32_t length = array.Length();  // read once: element getters may change the array
  if (length > kMaxAttributes) args.Fail(name.c_str(), "at most 1024 attributes");
  attributes_.resize(length);
  values_.resize(length);
  for (uint32_t i = 0; i < length; ++i) {
    std::string itemName = name + "[" + std::to_string(i) + "]";
    Napi::Value item = array.Get(i);
    if (!item.IsObject() || item.IsArray()) args.Fail(itemName.c_str(), "an object { type, value }");
    Napi::Object attribute = item.As<Napi::Object>();
    CK_ATTRIBUTE_TYPE type = 0;
    if (!UlongFromJs(attribute.Get("type"), type)) {
      std::string typeName = itemName + ".type";
      args.Fail(typeName.c_str(), "an attribute type (non-negative integer)");
    }
    attributes_[i].type = type;
    Napi::Value attributeValue = attribute.Get("value");
    if (attributeValue.IsUndefined() || attributeValue.IsNull()) continue;  // no value: NULL, length 0
    ParseValue(args, type, attributeValue, itemName + ".value", values_[i]);
    if (ck::AttributeKind(type) == ck::AttrKind::Template) {
      Template& inner = *nested_.back();
      attributes_[i].pValue = inner.data();
      attributes_[i].ulValueLen = inner.count() * sizeof(CK_ATTRIBUTE);
    } else {
      attributes_[i].pValue = values_[i].empty() ? nullptr : values_[i].data();
      attributes_[i].ulValueLen = values_[i].size();
    }
  }
}

bool Template::Has(CK_ATTRIBUTE_TYPE type) const {
  for (const CK_ATTRIBUTE& attribute : attributes_)
    if (attribute.type == type) return true;
  return false;
}

void Template::AddBoolIfAbsent(CK_ATTRIBUTE_TYPE type, bool value) {
  if (Has(type)) return;
  values_.emplace_back(1, value ? 1 : 0);
  attributes_.push_back({type, values_.back().data(), 1});
}

void Template::ParseValue(const Args& args, CK_ATTRIBUTE_TYPE type, const Napi::Value& value,
                          const std::string& name, std::vector<CK_BYTE>& out) {
  ck::AttrKind kind = ck::AttributeKind(type);
  if (kind == ck::AttrKind::Unknown) {
    // Vendor or unlisted attribute: the JS type decides the encoding.
    if (value.IsBoolean()) kind = ck::AttrKind::Bool;
    else if (value.IsNumber() || value.IsBigInt()) kind = ck::AttrKind::Ulong;
    else if (value.IsString()) kind = ck::AttrKind::String;
    else if (IsDate(value)) kind = ck::AttrKind::Date;
    else kind = ck::AttrKind::Bytes;
  }
  switch (kind) {
    case ck::AttrKind::Bool:
      if (!value.IsBoolean()) args.Fail(name.c_str(), "a boolean");
      out.assign(1, value.As<Napi::Boolean>().Value() ? 1 : 0);
      return;
    case ck::AttrKind::Ulong: {
      CK_ULONG number = 0;
      if (!UlongFromJs(value, number)) args.Fail(name.c_str(), "a non-negative integer");
      AppendUlong(out, number);
      return;
    }
    case ck::AttrKind::Date:
      if (!DateFromJs(value, out)) args.Fail(name.c_str(), "a valid Date or a 'YYYYMMDD' string");
      return;
    case ck::AttrKind::Template: {
      auto inner = std::make_unique<Template>();
      inner->Parse(args, value, name);
      for (CK_ULONG i = 0; i < inner->count(); ++i) {
        if (ck::AttributeKind(inner->data()[i].type) == ck::AttrKind::Template) {
          args.Fail(name.c_str(), "a template without nested templates");
        }
      }
      nested_.push_back(std::move(inner));
      return;
    }
    case ck::AttrKind::Mechanisms: {
      if (!value.IsArray()) args.Fail(name.c_str(), "an array of mechanism types");
      Napi::Array list = value.As<Napi::Array>();
      for (uint32_t i = 0; i < list.Length(); ++i) {
        CK_ULONG mechanism = 0;
        if (!UlongFromJs(list.Get(i), mechanism)) args.Fail(name.c_str(), "an array of mechanism types");
        AppendUlong(out, mechanism);
      }
      return;
    }
    case ck::AttrKind::String:
    case ck::AttrKind::Bytes:
    case ck::AttrKind::Unknown: {
      BytesResult result = BytesOrStringFromJs(value, out);
      if (result != BytesResult::Ok) {
        if (result == BytesResult::NotBytes) args.Fail(name.c_str(), "a Buffer, Uint8Array or string");
        args.FailBytes(name.c_str(), result);
      }
      return;
    }
  }
}

void AttributeQuery::Parse(const Args& args, const Napi::Value& value, const char* name) {
  if (!value.IsArray()) args.Fail(name, "an array of attribute types");
  Napi::Array array = value.As<Napi::Array>();
  // The length is read once: a getter on an element could grow the array while we read it.
  uint32_t length = array.Length();
  if (length > kMaxAttributes) args.Fail(name, "at most 1024 attribute types");
  entries_.resize(length);
  for (uint32_t i = 0; i < length; ++i) {
    Napi::Value item = array.Get(i);
    if (item.IsObject() && !item.IsArray()) item = item.As<Napi::Object>().Get("type");
    if (!UlongFromJs(item, entries_[i].type)) args.Fail(name, "an array of attribute types (or { type } objects)");
  }
}

namespace {

// Fills `entries` (already sized, types set): lengths first, then values. Template values get
// a nested round for their own members' lengths.
CK_RV ReadValues(const CK_FUNCTION_LIST* f, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                 std::vector<AttributeQuery::Entry>& entries, bool allowNested) {
  const std::vector<CK_RV> perAttribute = {ck::CKR_OK, ck::CKR_ATTRIBUTE_SENSITIVE, ck::CKR_ATTRIBUTE_TYPE_INVALID};
  auto tolerated = [&](CK_RV rv) {
    for (CK_RV ok : perAttribute)
      if (rv == ok) return true;
    return false;
  };
  // One spare entry, so the array is never NULL even for an empty query (see Template::data).
  std::vector<CK_ATTRIBUTE> query(entries.size() + 1);
  bool complete = false;
  for (int attempt = 0; attempt < kLengthRetries && !complete; ++attempt) {
    for (size_t i = 0; i < entries.size(); ++i) query[i] = {entries[i].type, nullptr, 0};
    CK_RV rv = f->C_GetAttributeValue(session, object, query.data(), static_cast<CK_ULONG>(entries.size()));
    if (!tolerated(rv)) return rv;

    // Second call: only the attributes that have a value, with buffers of the announced size.
    std::vector<size_t> available;
    std::vector<CK_ATTRIBUTE> fetch;
    fetch.reserve(entries.size() + 1);
    std::vector<std::vector<CK_ATTRIBUTE>> nestedQueries;
    for (size_t i = 0; i < entries.size(); ++i) {
      AttributeQuery::Entry& entry = entries[i];
      entry.length = query[i].ulValueLen;
      entry.status = ck::CKR_OK;
      entry.nested.clear();
      if (entry.length == kUnavailable) continue;
      if (entry.length > kMaxInputBytes) return ck::CKR_DEVICE_MEMORY;  // an implausible length: refuse
      available.push_back(i);
      entry.value.assign(entry.length, 0);
      fetch.push_back({entry.type, entry.value.empty() ? nullptr : entry.value.data(), entry.length});
    }
    if (fetch.empty()) {
      complete = true;
      break;
    }
    rv = f->C_GetAttributeValue(session, object, fetch.data(), static_cast<CK_ULONG>(fetch.size()));
    if (rv == ck::CKR_BUFFER_TOO_SMALL) continue;  // a value grew between the calls: ask again
    if (!tolerated(rv)) return rv;
    for (size_t k = 0; k < available.size(); ++k) {
      AttributeQuery::Entry& entry = entries[available[k]];
      if (fetch[k].ulValueLen == kUnavailable) {
        entry.length = kUnavailable;
        entry.value.clear();
        continue;
      }
      if (fetch[k].ulValueLen > entry.value.size()) return ck::CKR_GENERAL_ERROR;  // module wrote past our buffer?
      entry.length = fetch[k].ulValueLen;
      entry.value.resize(entry.length);
    }
    complete = true;
  }
  // Every pass ended in CKR_BUFFER_TOO_SMALL: never hand out zero-filled buffers as values.
  if (!complete) return ck::CKR_BUFFER_TOO_SMALL;

  for (AttributeQuery::Entry& entry : entries) {
    if (entry.length == kUnavailable) {
      // Ask for this one alone: its own return value tells sensitive from unknown.
      CK_ATTRIBUTE single{entry.type, nullptr, 0};
      CK_RV rv = f->C_GetAttributeValue(session, object, &single, 1);
      entry.status = rv == ck::CKR_OK ? ck::CKR_ATTRIBUTE_SENSITIVE : rv;
      entry.value.clear();
      continue;
    }
    if (allowNested && ck::AttributeKind(entry.type) == ck::AttrKind::Template) {
      size_t count = entry.length / sizeof(CK_ATTRIBUTE);
      std::vector<CK_ATTRIBUTE> members(count);
      if (count > 0) std::memcpy(members.data(), entry.value.data(), count * sizeof(CK_ATTRIBUTE));
      entry.nested.resize(count);
      for (size_t i = 0; i < count; ++i) entry.nested[i].type = members[i].type;
      // The pointers inside the copied array are meaningless here; read the members again.
      std::vector<CK_ATTRIBUTE> lengths(count);
      for (size_t i = 0; i < count; ++i) lengths[i] = {members[i].type, nullptr, 0};
      CK_ATTRIBUTE outer{entry.type, lengths.data(), static_cast<CK_ULONG>(count * sizeof(CK_ATTRIBUTE))};
      CK_RV rv = f->C_GetAttributeValue(session, object, &outer, 1);
      if (rv != ck::CKR_OK) return rv;
      for (size_t i = 0; i < count; ++i) {
        if (lengths[i].ulValueLen == kUnavailable || lengths[i].ulValueLen > kMaxInputBytes) {
          return ck::CKR_GENERAL_ERROR;
        }
        entry.nested[i].value.assign(lengths[i].ulValueLen, 0);
        entry.nested[i].length = lengths[i].ulValueLen;
        lengths[i].pValue = entry.nested[i].value.empty() ? nullptr : entry.nested[i].value.data();
      }
      rv = f->C_GetAttributeValue(session, object, &outer, 1);
      if (rv != ck::CKR_OK) return rv;
      for (size_t i = 0; i < count; ++i) entry.nested[i].value.resize(lengths[i].ulValueLen);
    }
  }
  return ck::CKR_OK;
}

}  // namespace

CK_RV AttributeQuery::Run(const CK_FUNCTION_LIST* functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object) {
  return ReadValues(functions, session, object, entries_, true);
}

Napi::Value AttributeValueToJs(Napi::Env env, const AttributeQuery::Entry& entry) {
  const std::vector<CK_BYTE>& bytes = entry.value;
  switch (ck::AttributeKind(entry.type)) {
    case ck::AttrKind::Bool:
      if (bytes.size() == 1) return Napi::Boolean::New(env, bytes[0] != 0);
      break;
    case ck::AttrKind::Ulong:
      if (bytes.size() == sizeof(CK_ULONG)) {
        CK_ULONG number;
        std::memcpy(&number, bytes.data(), sizeof number);
        return UlongToJs(env, number);
      }
      break;
    case ck::AttrKind::String:
      return Napi::String::New(env, reinterpret_cast<const char*>(bytes.data()), bytes.size());
    case ck::AttrKind::Date:
      return DateToJs(env, bytes);
    case ck::AttrKind::Template: {
      Napi::Array members = Napi::Array::New(env, entry.nested.size());
      for (size_t i = 0; i < entry.nested.size(); ++i) {
        Napi::Object member = Napi::Object::New(env);
        member.Set("type", UlongToJs(env, entry.nested[i].type));
        member.Set("value", AttributeValueToJs(env, entry.nested[i]));
        members.Set(static_cast<uint32_t>(i), member);
      }
      return members;
    }
    case ck::AttrKind::Mechanisms: {
      size_t count = bytes.size() / sizeof(CK_ULONG);
      Napi::Array list = Napi::Array::New(env, count);
      for (size_t i = 0; i < count; ++i) {
        CK_ULONG mechanism;
        std::memcpy(&mechanism, bytes.data() + i * sizeof(CK_ULONG), sizeof mechanism);
        list.Set(static_cast<uint32_t>(i), UlongToJs(env, mechanism));
      }
      return list;
    }
    default:
      break;
  }
  return Napi::Buffer<CK_BYTE>::Copy(env, bytes.data(), bytes.size());
}

Napi::Array AttributeQuery::ToJs(Napi::Env env) const {
  Napi::Array result = Napi::Array::New(env, entries_.size());
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& entry = entries_[i];
    Napi::Object item = Napi::Object::New(env);
    item.Set("type", UlongToJs(env, entry.type));
    if (entry.length == kUnavailable) {
      item.Set("value", env.Null());
      std::string status = ck::RvName(entry.status) ? ck::RvName(entry.status) : "CKR_GENERAL_ERROR";
      item.Set("status", Napi::String::New(env, status));
    } else {
      item.Set("value", AttributeValueToJs(env, entry));
    }
    result.Set(static_cast<uint32_t>(i), item);
  }
  return result;
}

}  // namespace p11
