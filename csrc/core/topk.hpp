// Small result containers for searches: a bounded max-heap (exact top-k) and the sorted
// linear candidate pool used by the unfiltered graph walk.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace bitgraph {

struct Scored {
  float dist;
  uint32_t id;
};

inline bool closer(const Scored& a, const Scored& b) {
  return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
}

// `closer` as a type: the heap algorithms inline it (through a function pointer they did not:
// 18% of a small batched flat search went to the out-of-line call).
struct Closer {
  bool operator()(const Scored& a, const Scored& b) const { return closer(a, b); }
};

// Keeps the k smallest distances seen. worst() is the admission bound once full.
class TopK {
 public:
  void reset(size_t k) { k_ = k; heap_.clear(); heap_.reserve(k); }
  bool full() const { return heap_.size() >= k_; }
  float worst() const { return full() ? heap_.front().dist : std::numeric_limits<float>::infinity(); }
  size_t size() const { return heap_.size(); }
  void push(float dist, uint32_t id) {
    if (heap_.size() < k_) {
      heap_.push_back({dist, id});
      std::push_heap(heap_.begin(), heap_.end(), Closer{});
    } else if (closer({dist, id}, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), Closer{});
      heap_.back() = {dist, id};
      std::push_heap(heap_.begin(), heap_.end(), Closer{});
    }
  }
  // Sorts in place, closest first; the heap is unusable afterwards until reset().
  const std::vector<Scored>& sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), Closer{});
    return heap_;
  }

 private:
  size_t k_ = 0;
  std::vector<Scored> heap_;
};

// Candidates sorted by distance, capacity ef, with a cursor at the closest unexpanded one.
// Replaces hnswlib's two priority queues in the unfiltered walk: one sorted array is both the
// candidate queue and the result set, so an insert is a short memmove in cache.
class LinearPool {
 public:
  static constexpr uint32_t kExpanded = 0x80000000u;

  void reset(size_t capacity) {
    cap_ = capacity;
    if (buf_.size() < capacity + 1) buf_.resize(capacity + 1);
    size_ = 0;
    cur_ = 0;
  }
  bool has_next() const { return cur_ < size_; }
  float bound() const {
    return size_ < cap_ ? std::numeric_limits<float>::infinity() : buf_[size_ - 1].dist;
  }
  // Inserts if it beats the current worst (or the pool is not full).
  void insert(uint32_t id, float dist) {
    if (size_ == cap_ && !(dist < buf_[size_ - 1].dist)) return;
    size_t lo = 0, hi = size_;
    while (lo < hi) {  // first position whose distance is greater than dist
      size_t mid = (lo + hi) / 2;
      if (buf_[mid].dist <= dist) lo = mid + 1; else hi = mid;
    }
    size_t moved = (size_ < cap_ ? size_ : cap_ - 1) - lo;
    std::memmove(&buf_[lo + 1], &buf_[lo], moved * sizeof(Scored));
    buf_[lo] = {dist, id};
    if (size_ < cap_) ++size_;
    if (lo < cur_) cur_ = lo;
  }
  // Marks the closest unexpanded candidate expanded and returns its id.
  uint32_t pop() {
    uint32_t id = buf_[cur_].id;
    buf_[cur_].id |= kExpanded;
    while (cur_ < size_ && (buf_[cur_].id & kExpanded)) ++cur_;
    return id;
  }
  // The id the next pop() will return (for prefetching its links).
  bool peek(uint32_t* id) const {
    if (cur_ >= size_) return false;
    *id = buf_[cur_].id;
    return true;
  }
  size_t size() const { return size_; }
  uint32_t id_at(size_t i) const { return buf_[i].id & ~kExpanded; }
  float dist_at(size_t i) const { return buf_[i].dist; }

 private:
  std::vector<Scored> buf_;
  size_t size_ = 0, cap_ = 0, cur_ = 0;
};

}  // namespace bitgraph
