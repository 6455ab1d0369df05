// HNSW bookkeeping outside the hot paths: removal, label look-up, memory, adopting state.
#include <string>

#include "hnsw/hnsw_index.hpp"

namespace bitgraph {

void HnswIndex::remove(const int64_t* labels, size_t n) {
  std::lock_guard<std::mutex> writer(write_mu_);
  std::vector<uint32_t> slots(n);
  for (size_t i = 0; i < n; ++i) {  // check all first: an unknown id changes nothing
    uint32_t slot = label_map_.find(labels[i]);
    if (slot == LabelMap::kMissing || deleted_[slot])
      throw KeyError("id " + std::to_string(labels[i]) + " is not in the index");
    slots[i] = slot;
  }
  {
    std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
    deleted_.make_owned();
    for (uint32_t slot : slots) {
      if (!deleted_[slot]) {
        deleted_[slot] = 1;
        ++n_deleted_;
      }
    }
  }
}

void HnswIndex::slots_of(const int64_t* labels, size_t n, int64_t* out) const {
  std::shared_lock<std::shared_mutex> shared(buffers_mu_);
  for (size_t i = 0; i < n; ++i) {
    uint32_t slot = label_map_.find(labels[i]);
    out[i] = (slot == LabelMap::kMissing || deleted_[slot]) ? -1 : int64_t(slot);
  }
}

void HnswIndex::reserve(size_t n_slots) {
  std::lock_guard<std::mutex> writer(write_mu_);
  if (n_slots >= size_t(INT32_MAX)) throw ValueError("an index holds at most 2^31-1 slots");
  std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
  make_owned();
  store_.reserve(n_slots);
  graph_.reserve(n_slots);
  labels_.reserve_exact(n_slots);
  deleted_.reserve_exact(n_slots);
  label_map_.reserve(n_slots);
}

void HnswIndex::shrink_to_fit() {
  std::lock_guard<std::mutex> writer(write_mu_);
  std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
  store_.shrink_to_fit();
  graph_.shrink_to_fit();
  labels_.shrink_to_fit();
  deleted_.shrink_to_fit();
  visited_pool_.clear();
}

size_t HnswIndex::nbytes() const {
  return store_.nbytes() + graph_.nbytes() + labels_.owned_bytes() + deleted_.owned_bytes() +
         label_map_.nbytes();
}

void HnswIndex::borrow_state(const uint8_t* rows, const int32_t* links0, const int32_t* levels,
                             const int32_t* upper, size_t upper_len, const int64_t* labels,
                             const uint8_t* deleted, size_t n_slots, int64_t entry_point,
                             int max_level) {
  std::lock_guard<std::mutex> writer(write_mu_);
  std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
  // Validate everything a corrupted file could use to read out of bounds.
  size_t need_upper = 0;
  for (size_t i = 0; i < n_slots; ++i) {
    if (levels[i] < 0 || levels[i] > 64) throw ValueError("corrupt graph: bad level");
    need_upper += size_t(levels[i]) * (1 + params_.M);
  }
  if (need_upper != upper_len) throw ValueError("corrupt graph: upper-level size mismatch");
  const size_t M0 = 2 * params_.M;
  auto check_list = [&](const int32_t* ll, size_t cap, int level) {
    if (ll[0] < 0 || size_t(ll[0]) > cap) throw ValueError("corrupt graph: bad link count");
    for (int32_t j = 0; j < ll[0]; ++j) {
      int32_t v = ll[1 + j];
      if (v < 0 || size_t(v) >= n_slots || levels[v] < level)
        throw ValueError("corrupt graph: link out of range");
    }
  };
  for (size_t i = 0; i < n_slots; ++i) check_list(links0 + i * (1 + M0), M0, 0);
  const int32_t* u = upper;
  for (size_t i = 0; i < n_slots; ++i)
    for (int l = 1; l <= levels[i]; ++l, u += 1 + params_.M) check_list(u, params_.M, l);
  if (n_slots == 0 ? entry_point != -1
                   : (entry_point < 0 || size_t(entry_point) >= n_slots ||
                      levels[entry_point] != max_level))
    throw ValueError("corrupt graph: bad entry point");

  store_.borrow(rows, n_slots);
  graph_.borrow(links0, levels, upper, n_slots, upper_len);
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
  entry_point_ = entry_point;
  max_level_ = max_level;
}

}  // namespace bitgraph
