// A growable, 64-byte aligned array that can also borrow read-only memory (a memory-mapped
// file). Borrowed memory is never written: the first mutation copies it into owned memory.
//
// Growth keeps the slack bounded. Doubling (what std::vector does) leaves up to 2x unused
// memory that is never given back: a streaming ingest of 61,678 x 384 vectors in chunks of
// 5,000 held 210 MB for 101 MiB of data. Here small buffers double (their slack is cheap), and
// large ones live in their own anonymous mapping that grows by 1/32 with mremap on Linux: the
// kernel moves page tables instead of copying bytes, so the fine-grained growth costs no
// copying and the slack stays within ~3% (1/4 elsewhere, where growth copies).
// reserve() sets the capacity for a known size, shrink_to_fit() gives the slack back.
#pragma once
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#define BITGRAPH_HAVE_MREMAP 1
#else
#define BITGRAPH_HAVE_MREMAP 0
#endif

namespace bitgraph {

namespace buffer_detail {

constexpr size_t kMapThreshold = size_t(1) << 20;  // bytes: larger buffers get a mapping
constexpr size_t kPage = 4096;

inline size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// Bytes a buffer of `have` bytes grows to when it needs `need`: double while small, then add a
// fraction (1/32 with mremap, 1/4 where growing copies everything).
inline size_t grown_bytes(size_t have, size_t need) {
  size_t target = have < kMapThreshold ? 2 * have : have + have / (BITGRAPH_HAVE_MREMAP ? 32 : 4);
  return need > target ? need : target;
}

// One allocation: heap memory below the threshold, an anonymous mapping above it (Linux).
struct Block {
  void* data = nullptr;
  size_t bytes = 0;  // usable (and accounted) bytes
  bool mapped = false;
};

inline Block allocate(size_t bytes) {
  Block b;
#if BITGRAPH_HAVE_MREMAP
  if (bytes >= kMapThreshold) {
    b.bytes = round_up(bytes, kPage);
    void* p = ::mmap(nullptr, b.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    ::madvise(p, b.bytes, MADV_HUGEPAGE);
#endif
    b.data = p;  // zero-filled by the kernel; untouched pages take no memory
    b.mapped = true;
    return b;
  }
#endif
  b.bytes = round_up(bytes ? bytes : 1, 64);
  b.data = std::aligned_alloc(64, b.bytes);
  if (!b.data) throw std::bad_alloc();
  std::memset(b.data, 0, b.bytes);
  return b;
}

inline void deallocate(Block& b) {
  if (!b.data) return;
#if BITGRAPH_HAVE_MREMAP
  if (b.mapped) {
    ::munmap(b.data, b.bytes);
    b = Block();
    return;
  }
#endif
  std::free(b.data);
  b = Block();
}

// Resizes `b` to hold `bytes`, keeping its first `keep` bytes; new bytes are zero. A mapping
// is resized in place or moved by the kernel (no copy); anything else is copied.
inline void resize(Block& b, size_t bytes, size_t keep) {
#if BITGRAPH_HAVE_MREMAP
  if (b.mapped && bytes >= kMapThreshold) {
    const size_t want = round_up(bytes, kPage);
    if (want == b.bytes) return;
    void* p = ::mremap(b.data, b.bytes, want, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) throw std::bad_alloc();
    b.data = p;
    b.bytes = want;
    return;
  }
#endif
  Block fresh = allocate(bytes);
  if (keep) std::memcpy(fresh.data, b.data, keep < fresh.bytes ? keep : fresh.bytes);
  deallocate(b);
  b = fresh;
}

}  // namespace buffer_detail

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

  // Makes the capacity at least `count` elements (new elements zeroed), growing with bounded
  // slack (see above); copies borrowed data into owned memory.
  void reserve(size_t count) {
    if (owned_ && count <= capacity_) return;
    const size_t have = owned_ ? capacity_ * sizeof(T) : 0;
    const size_t need = (count > size_ ? count : size_) * sizeof(T);
    set_capacity_bytes(buffer_detail::grown_bytes(have, need));
  }
  // Sets the capacity to exactly `count` elements (at least the size): what an index about
  // to receive a known number of items calls to avoid any slack.
  void reserve_exact(size_t count) {
    if (owned_ && count <= capacity_) return;
    set_capacity_bytes((count > size_ ? count : size_) * sizeof(T));
  }
  // Gives the unused capacity back (free with mremap; a copy otherwise).
  void shrink_to_fit() {
    if (!owned_ || capacity_ == size_ || !block_.data) return;
    if (!block_.mapped && capacity_ * sizeof(T) < buffer_detail::kMapThreshold) return;
    set_capacity_bytes(size_ * sizeof(T));
  }

  void make_owned() { if (!owned_) reserve_exact(size_); }
  void resize(size_t count) { reserve(count); size_ = count; }

  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool owned() const { return owned_; }
  size_t owned_bytes() const { return owned_ ? block_.bytes : 0; }
  size_t borrowed_bytes() const { return owned_ ? 0 : size_ * sizeof(T); }

 private:
  void set_capacity_bytes(size_t bytes) {
    const size_t keep = size_ * sizeof(T);
    if (owned_) {
      buffer_detail::resize(block_, bytes, keep);
    } else {  // borrowed: copy the rows into a fresh block, never touching the source
      buffer_detail::Block fresh = buffer_detail::allocate(bytes);
      if (keep) std::memcpy(fresh.data, data_, keep);
      block_ = fresh;
      owned_ = true;
    }
    data_ = static_cast<T*>(block_.data);
    capacity_ = block_.bytes / sizeof(T);
  }
  void release() {
    if (owned_) buffer_detail::deallocate(block_);
    block_ = buffer_detail::Block();
    data_ = nullptr;
    size_ = capacity_ = 0;
    owned_ = true;
  }
  void swap(Buffer& o) noexcept {
    std::swap(block_, o.block_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(capacity_, o.capacity_);
    std::swap(owned_, o.owned_);
  }

  buffer_detail::Block block_;
  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  bool owned_ = true;
};

}  // namespace bitgraph
