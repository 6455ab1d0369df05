#include "flat/flat_index.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "core/topk.hpp"

namespace bitgraph {

size_t FlatIndex::add(const float* vectors, const int64_t* labels, size_t n) {
  std::lock_guard<std::mutex> writer(write_mu_);
  std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
  const size_t first = n_slots_;
  store_.make_owned();
  labels_.make_owned();
  deleted_.make_owned();
  store_.resize(first + n);
  labels_.resize(first + n);
  deleted_.resize(first + n);
  label_map_.reserve(first + n);
  for (size_t i = 0; i < n; ++i) {
    uint32_t old = label_map_.find(labels[i]);
    if (old != LabelMap::kMissing && !deleted_[old]) {
      deleted_[old] = 1;
      ++n_deleted_;
    }
    label_map_.set(labels[i], uint32_t(first + i));
    labels_[first + i] = labels[i];
    deleted_[first + i] = 0;
    store_.set(first + i, vectors + i * store_.dim());
  }
  n_slots_ = first + n;
  return n;
}

void FlatIndex::search(const float* queries, size_t nq, size_t k, size_t threads,
                       const SlotFilter* filter, int64_t* out_labels, float* out_dists) const {
  std::shared_lock<std::shared_mutex> shared(buffers_mu_);
  if (nq == 0) return;
  // Tiling: a block of rows small enough to stay in L2 is scored against a block of queries
  // before moving on, so each row is read from memory once per query block instead of once per
  // query. Single queries scan the whole store at memory bandwidth; batches become compute-bound.
  const size_t row_bytes = store_.row_bytes();
  const size_t rows_per_block = std::clamp<size_t>((128u << 10) / row_bytes, 64, 4096);
  if (threads < 1) threads = 1;
  const size_t queries_per_block = std::clamp<size_t>((nq + threads - 1) / threads, 1, 16);
  const size_t n_query_blocks = (nq + queries_per_block - 1) / queries_per_block;
  const size_t dim = store_.dim();
  parallel_for(n_query_blocks, threads, 1, [&](size_t block, size_t) {
    const size_t q0 = block * queries_per_block;
    const size_t q1 = std::min(nq, q0 + queries_per_block);
    std::vector<float> dists(rows_per_block);
    std::vector<TopK> tops(q1 - q0);
    for (TopK& top : tops) top.reset(k);
    for (size_t begin = 0; begin < n_slots_; begin += rows_per_block) {
      const size_t n = std::min(rows_per_block, n_slots_ - begin);
      for (size_t qi = q0; qi < q1; ++qi) {
        TopK& top = tops[qi - q0];
        store_.distances_range(queries + qi * dim, begin, n, dists.data());
        for (size_t j = 0; j < n; ++j) {
          if (top.full() && !(dists[j] < top.worst())) continue;
          const uint32_t slot = uint32_t(begin + j);
          if (deleted_[slot] || (filter && !filter->allows(slot))) continue;
          top.push(dists[j], slot);
        }
      }
    }
    for (size_t qi = q0; qi < q1; ++qi) {
      const auto& sorted = tops[qi - q0].sorted();
      int64_t* ol = out_labels + qi * k;
      float* od = out_dists + qi * k;
      for (size_t j = 0; j < k; ++j) {
        ol[j] = j < sorted.size() ? labels_[sorted[j].id] : -1;
        od[j] = j < sorted.size() ? sorted[j].dist : std::numeric_limits<float>::infinity();
      }
    }
  });
}

void FlatIndex::remove(const int64_t* labels, size_t n) {
  std::lock_guard<std::mutex> writer(write_mu_);
  std::vector<uint32_t> slots(n);
  for (size_t i = 0; i < n; ++i) {
    uint32_t slot = label_map_.find(labels[i]);
    if (slot == LabelMap::kMissing || deleted_[slot])
      throw KeyError("id " + std::to_string(labels[i]) + " is not in the index");
    slots[i] = slot;
  }
  std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
  deleted_.make_owned();
  for (uint32_t slot : slots) {
    if (!deleted_[slot]) {
      deleted_[slot] = 1;
      ++n_deleted_;
    }
  }
}

void FlatIndex::slots_of(const int64_t* labels, size_t n, int64_t* out) const {
  std::shared_lock<std::shared_mutex> shared(buffers_mu_);
  for (size_t i = 0; i < n; ++i) {
    uint32_t slot = label_map_.find(labels[i]);
    out[i] = (slot == LabelMap::kMissing || deleted_[slot]) ? -1 : int64_t(slot);
  }
}

void FlatIndex::borrow_state(const uint8_t* rows, const int64_t* labels, const uint8_t* deleted,
                             size_t n_slots) {
  std::lock_guard<std::mutex> writer(write_mu_);
  std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
  store_.borrow(rows, n_slots);
  labels_.borrow(labels, n_slots);
  deleted_.borrow(deleted, n_slots);
  label_map_ = LabelMap();
  label_map_.reserve(n_slots);
  n_deleted_ = 0;
  for (size_t i = 0; i < n_slots; ++i) {
    if (deleted[i]) {
      ++n_deleted_;
      continue;
    }
    if (label_map_.find(labels[i]) != LabelMap::kMissing)
      throw ValueError("corrupt index: id " + std::to_string(labels[i]) + " appears twice");
    label_map_.set(labels[i], uint32_t(i));
  }
  n_slots_ = n_slots;
}

}  // namespace bitgraph
