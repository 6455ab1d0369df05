// A growable, 64-byte aligned array that can also borrow read-only memory (a memory-mapped
// file). Borrowed memory is never written: the first mutation copies it into owned memory.
#pragma once
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace bitgraph {

template <class T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept { swap(o); return *this; }
  ~Buffer() { release(); }

  // Points at memory owned by someone else; `count` elements are valid.
  void borrow(const T* data, size_t count) {
    release();
    data_ = const_cast<T*>(data);
    size_ = capacity_ = count;
    owned_ = false;
  }

  // Grows capacity to at least `count` elements (new elements zeroed); copies borrowed data.
  void reserve(size_t count) {
    if (owned_ && count <= capacity_) return;
    size_t cap = owned_ ? capacity_ : 0;
    size_t new_cap = count > cap ? count : cap;
    if (new_cap < size_) new_cap = size_;
    if (owned_ && new_cap < 2 * capacity_) new_cap = 2 * capacity_;  // geometric growth
    if (new_cap == 0) new_cap = 1;
    size_t bytes = ((new_cap * sizeof(T) + 63) / 64) * 64;
    T* fresh = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!fresh) throw std::bad_alloc();
    std::memset(static_cast<void*>(fresh), 0, bytes);
    if (size_) std::memcpy(static_cast<void*>(fresh), data_, size_ * sizeof(T));
    size_t keep = size_;
    release();
    data_ = fresh;
    size_ = keep;
    capacity_ = new_cap;
    owned_ = true;
  }

  void make_owned() { if (!owned_) reserve(size_); }
  void resize(size_t count) { reserve(count); size_ = count; }

  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool owned() const { return owned_; }
  size_t owned_bytes() const { return owned_ ? capacity_ * sizeof(T) : 0; }

 private:
  void release() {
    if (owned_ && data_) std::free(data_);
    data_ = nullptr;
    size_ = capacity_ = 0;
    owned_ = true;
  }
  void swap(Buffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(capacity_, o.capacity_);
    std::swap(owned_, o.owned_);
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  bool owned_ = true;
};

}  // namespace bitgraph
