// Epoch-tagged visited sets: a node is visited when its tag equals the current epoch, so a
// reset is one increment instead of clearing the array (O(1) per query).
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace bitgraph {

class VisitedSet {
 public:
  void prepare(size_t n) {
    if (n > size_) {
      tags_.reset(new uint16_t[n]());
      size_ = n;
      epoch_ = 0;
    }
    if (++epoch_ == 0) {  // wrapped: clear once every 65535 queries
      std::memset(tags_.get(), 0, size_ * sizeof(uint16_t));
      epoch_ = 1;
    }
  }
  bool test_and_set(uint32_t i) {
    if (tags_[i] == epoch_) return true;
    tags_[i] = epoch_;
    return false;
  }
  bool test(uint32_t i) const { return tags_[i] == epoch_; }
  void prefetch(uint32_t i) const { __builtin_prefetch(tags_.get() + i, 0, 3); }

 private:
  std::unique_ptr<uint16_t[]> tags_;
  size_t size_ = 0;
  uint16_t epoch_ = 0;
};

// Reuses visited sets across calls and threads (allocating one per query would dominate).
class VisitedPool {
 public:
  std::unique_ptr<VisitedSet> acquire(size_t n) {
    std::unique_ptr<VisitedSet> v;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!free_.empty()) {
        v = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!v) v.reset(new VisitedSet());
    v->prepare(n);
    return v;
  }
  void release(std::unique_ptr<VisitedSet> v) {
    std::lock_guard<std::mutex> g(mu_);
    free_.push_back(std::move(v));
  }
  void clear() {
    std::lock_guard<std::mutex> g(mu_);
    free_.clear();
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<VisitedSet>> free_;
};

}  // namespace bitgraph
