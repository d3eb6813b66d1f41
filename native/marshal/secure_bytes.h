// Owned bytes that are overwritten with zeros when released: PINs live in one of these from
// the moment they leave the JS heap until the PKCS#11 call that consumed them returns.
#pragma once

#include <cstddef>
#include <memory>

#include "../pkcs11/types.h"

namespace p11 {

class SecureBytes {
 public:
  SecureBytes() = default;
  explicit SecureBytes(size_t size) : data_(new CK_BYTE[size == 0 ? 1 : size]()), size_(size) {}
  ~SecureBytes() { Wipe(); }
  SecureBytes(SecureBytes&& other) noexcept : data_(std::move(other.data_)), size_(other.size_) { other.size_ = 0; }
  SecureBytes& operator=(SecureBytes&& other) noexcept {
    if (this != &other) {
      Wipe();
      data_ = std::move(other.data_);
      size_ = other.size_;
      other.size_ = 0;
    }
    return *this;
  }
  SecureBytes(const SecureBytes&) = delete;
  SecureBytes& operator=(const SecureBytes&) = delete;

  CK_BYTE* data() { return data_.get(); }
  size_t size() const { return size_; }
  void Resize(size_t size) {
    Wipe();
    data_.reset(new CK_BYTE[size == 0 ? 1 : size]());
    size_ = size;
  }
  // Shrinks the visible length without reallocating (the tail stays owned and is wiped later).
  void Truncate(size_t size) {
    if (size < size_) size_ = size;
  }

 private:
  void Wipe() {
    if (!data_) return;
    // Writes through a volatile pointer so the compiler cannot drop them as dead stores.
    volatile CK_BYTE* bytes = data_.get();
    for (size_t i = 0; i < size_; ++i) bytes[i] = 0;
  }

  std::unique_ptr<CK_BYTE[]> data_;
  size_t size_ = 0;
};

}  // namespace p11
