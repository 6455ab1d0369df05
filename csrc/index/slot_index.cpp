#include "index/slot_index.hpp"

#include <algorithm>
#include <string>

#include "core/types.hpp"
#include "filter/bitset_program.hpp"

namespace bitgraph {

void SlotIndex::remove(const int64_t* labels, size_t n) {
  std::lock_guard<std::mutex> writer(write_mu_);
  std::vector<uint32_t> slots(n);
  for (size_t i = 0; i < n; ++i) {  // check all first: an unknown id changes nothing
    const uint32_t slot = label_map_.find(labels[i]);
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

void SlotIndex::slots_of(const int64_t* labels, size_t n, int64_t* out) const {
  std::shared_lock<std::shared_mutex> shared(buffers_mu_);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t slot = label_map_.find(labels[i]);
    out[i] = (slot == LabelMap::kMissing || deleted_[slot]) ? -1 : int64_t(slot);
  }
}

size_t SlotIndex::evaluate_filter(const int64_t* ops, size_t n_ops, const int32_t* entries,
                                  size_t n_entries, const uint64_t* loads, size_t n_loads,
                                  size_t limit, uint64_t* out) const {
  std::shared_lock<std::shared_mutex> shared(buffers_mu_);
  return bitgraph::evaluate_filter(ops, n_ops, entries, n_entries, loads, n_loads,
                                   n_deleted_ ? deleted_.data() : nullptr,
                                   std::min(limit, n_slots_), out);
}

void SlotIndex::check_capacity(size_t n_slots) {
  if (n_slots >= size_t(INT32_MAX)) throw ValueError("an index holds at most 2^31-1 slots");
}

void SlotIndex::append_labels(const int64_t* labels, size_t n, int64_t* replaced) {
  const size_t first = n_slots_;
  make_slots_owned();
  labels_.resize(first + n);
  deleted_.resize(first + n);
  label_map_.reserve(first + n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t old = label_map_.find(labels[i]);
    replaced[i] = -1;
    if (old != LabelMap::kMissing && !deleted_[old]) {
      deleted_[old] = 1;  // a re-added label: the old slot becomes a tombstone
      ++n_deleted_;
      replaced[i] = old;
    }
    label_map_.set(labels[i], uint32_t(first + i));
    labels_[first + i] = labels[i];
    deleted_[first + i] = 0;
  }
}

void SlotIndex::undo_append(size_t first, size_t i, const int64_t* labels,
                            const int64_t* replaced) {
  deleted_[first + i] = 1;
  ++n_deleted_;
  if (replaced[i] >= 0) {
    deleted_[replaced[i]] = 0;
    --n_deleted_;
    label_map_.set(labels[i], uint32_t(replaced[i]));
  }
}

void SlotIndex::reserve(size_t n_slots) {
  std::lock_guard<std::mutex> writer(write_mu_);
  check_capacity(n_slots);
  std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
  reserve_rows(n_slots);
  reserve_slots(n_slots);
}

void SlotIndex::shrink_to_fit() {
  std::lock_guard<std::mutex> writer(write_mu_);
  std::unique_lock<std::shared_mutex> exclusive(buffers_mu_);
  shrink_rows();
  shrink_slots();
}

void SlotIndex::reserve_slots(size_t n_slots) {
  make_slots_owned();
  labels_.reserve_exact(n_slots);
  deleted_.reserve_exact(n_slots);
  label_map_.reserve(n_slots);
}

void SlotIndex::shrink_slots() {
  labels_.shrink_to_fit();
  deleted_.shrink_to_fit();
}

void SlotIndex::make_slots_owned() {
  labels_.make_owned();
  deleted_.make_owned();
}

void SlotIndex::borrow_slots(const int64_t* labels, const uint8_t* deleted, size_t n_slots) {
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
