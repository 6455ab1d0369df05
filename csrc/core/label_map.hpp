// Open-addressing hash map from user labels (int64) to slots (uint32): about 12 bytes per
// item at the load factor used here, a third of std::unordered_map's footprint.
#pragma once
#include <cstdint>
#include <vector>

namespace bitgraph {

class LabelMap {
 public:
  static constexpr uint32_t kMissing = 0xffffffffu;

  uint32_t find(int64_t label) const {
    if (keys_.empty()) return kMissing;
    size_t mask = keys_.size() - 1;
    for (size_t i = hash(label) & mask;; i = (i + 1) & mask) {
      if (slots_[i] == kMissing) return kMissing;
      if (keys_[i] == label) return slots_[i];
    }
  }

  // Inserts or overwrites the slot of `label`.
  void set(int64_t label, uint32_t slot) {
    if ((count_ + 1) * 4 > keys_.size() * 3) grow();
    size_t mask = keys_.size() - 1;
    for (size_t i = hash(label) & mask;; i = (i + 1) & mask) {
      if (slots_[i] == kMissing) {
        keys_[i] = label;
        slots_[i] = slot;
        ++count_;
        return;
      }
      if (keys_[i] == label) {
        slots_[i] = slot;
        return;
      }
    }
  }

  void reserve(size_t n) {
    while (n * 4 > keys_.size() * 3) grow();
  }
  size_t nbytes() const { return keys_.size() * (sizeof(int64_t) + sizeof(uint32_t)); }

 private:
  static size_t hash(int64_t label) {
    uint64_t x = uint64_t(label) * 0x9E3779B97F4A7C15ull;
    return size_t(x ^ (x >> 29));
  }
  void grow() {
    std::vector<int64_t> old_keys;
    std::vector<uint32_t> old_slots;
    old_keys.swap(keys_);
    old_slots.swap(slots_);
    size_t cap = old_keys.empty() ? 64 : old_keys.size() * 2;
    keys_.assign(cap, 0);
    slots_.assign(cap, kMissing);
    count_ = 0;
    for (size_t i = 0; i < old_keys.size(); ++i)
      if (old_slots[i] != kMissing) set(old_keys[i], old_slots[i]);
  }

  std::vector<int64_t> keys_;
  std::vector<uint32_t> slots_;
  size_t count_ = 0;
};

}  // namespace bitgraph
