// Adjacency of the HNSW graph, kept apart from the vectors so it works over any storage.
// Level 0: one fixed row of (1 + M0) int32 per slot (count, then neighbours). Upper levels: one
// arena, in slot order, holding `level` blocks of (1 + M) int32 for each slot that has them.
#pragma once
#include <cstdint>
#include <vector>

#include "core/buffer.hpp"

namespace bitgraph {

class Graph {
 public:
  explicit Graph(size_t M) : M_(M), M0_(2 * M) {}

  size_t M() const { return M_; }
  size_t M0() const { return M0_; }
  size_t max_links(int level) const { return level == 0 ? M0_ : M_; }
  // How many links a new node selects for itself. hnswlib keeps M on every level and lets
  // level-0 lists fill up to 2M through back-links only (mean out-degree 22-23 of 32 at M = 16).
  // Selecting up to 3M/2 at level 0 (same 2M slots, same memory) raised recall@10 at equal ef
  // by 0.01-0.03 over hnswlib's on GloVe-50, clustered-128 and MiniLM embeddings (3 builds
  // each) and QPS at recall 0.95 by 4-13% (GloVe, clustered; MiniLM within noise). 2M gave
  // the same recall with more distances per query.
  size_t own_links(int level) const { return level == 0 ? M_ + M_ / 2 : M_; }
  size_t size() const { return levels_.size(); }

  // Links of `slot` at `level`: element 0 is the count, then the neighbour slots.
  int32_t* links(uint32_t slot, int level) {
    if (level == 0) return links0_.data() + size_t(slot) * (1 + M0_);
    return upper_.data() + upper_offset_[slot] + size_t(level - 1) * (1 + M_);
  }
  const int32_t* links(uint32_t slot, int level) const {
    return const_cast<Graph*>(this)->links(slot, level);
  }
  int level(uint32_t slot) const { return levels_[slot]; }

  // Appends `count` slots with the given top levels (links empty). Moves memory: callers hold
  // the exclusive lock.
  void append(const int32_t* levels, size_t count) {
    size_t first = size();
    size_t extra = 0;
    for (size_t i = 0; i < count; ++i) extra += size_t(levels[i]) * (1 + M_);
    levels_.resize(first + count);
    upper_offset_.resize(first + count);
    links0_.resize((first + count) * (1 + M0_));
    size_t at = upper_.size();
    upper_.resize(at + extra);
    for (size_t i = 0; i < count; ++i) {
      levels_[first + i] = levels[i];
      upper_offset_[first + i] = uint32_t(at);
      at += size_t(levels[i]) * (1 + M_);
    }
  }

  // Adopts arrays from a file (possibly memory-mapped, never written).
  void borrow(const int32_t* links0, const int32_t* levels, const int32_t* upper,
              size_t n_slots, size_t upper_len) {
    links0_.borrow(links0, n_slots * (1 + M0_));
    levels_.borrow(levels, n_slots);
    upper_.borrow(upper, upper_len);
    upper_offset_.resize(0);
    upper_offset_.resize(n_slots);
    size_t at = 0;
    for (size_t i = 0; i < n_slots; ++i) {
      upper_offset_[i] = uint32_t(at);
      at += size_t(levels[i]) * (1 + M_);
    }
  }
  // Room for `n_slots` slots without slack; upper levels get 1.5x their expected share
  // (a node has level >= l with probability M^-l: 1/(M-1) upper blocks per node; the margin
  // covers the random spread, the arena being small).
  void reserve(size_t n_slots) {
    links0_.reserve_exact(n_slots * (1 + M0_));
    levels_.reserve_exact(n_slots);
    upper_offset_.reserve_exact(n_slots);
    const size_t extra = n_slots > size() ? n_slots - size() : 0;
    upper_.reserve_exact(upper_.size() + (3 * extra / (2 * (M_ - 1)) + 16) * (1 + M_));
  }
  void shrink_to_fit() {
    links0_.shrink_to_fit();
    levels_.shrink_to_fit();
    upper_.shrink_to_fit();
    upper_offset_.shrink_to_fit();
  }
  void make_owned() {
    links0_.make_owned();
    levels_.make_owned();
    upper_.make_owned();
  }

  const Buffer<int32_t>& links0() const { return links0_; }
  const Buffer<int32_t>& levels() const { return levels_; }
  const Buffer<int32_t>& upper() const { return upper_; }
  size_t nbytes() const {
    return links0_.owned_bytes() + levels_.owned_bytes() + upper_.owned_bytes() +
           upper_offset_.owned_bytes();
  }
  size_t borrowed_nbytes() const {
    return links0_.borrowed_bytes() + levels_.borrowed_bytes() + upper_.borrowed_bytes();
  }

 private:
  size_t M_, M0_;
  Buffer<int32_t> links0_;
  Buffer<int32_t> levels_;
  Buffer<int32_t> upper_;
  Buffer<uint32_t> upper_offset_;
};

}  // namespace bitgraph
