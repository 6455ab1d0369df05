// What every index keeps beside its rows: the user label of each slot, tombstones, the label
// -> slot map, and the locks that guard them. HnswIndex and FlatIndex derive from it, so
// labels, removal, look-up and filter evaluation exist once.
//
// Locking: add / remove / reserve are serialised by write_mu_; buffers move only under an
// exclusive buffers_mu_, which searches hold shared.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "core/buffer.hpp"
#include "core/label_map.hpp"

namespace bitgraph {

class SlotIndex {
 public:
  size_t size() const { return n_slots_ - n_deleted_; }
  size_t n_slots() const { return n_slots_; }
  size_t n_deleted() const { return n_deleted_; }

  // Tombstones the given labels; throws KeyError (and changes nothing) if one is unknown.
  void remove(const int64_t* labels, size_t n);
  // slot of each label, -1 when unknown or removed.
  void slots_of(const int64_t* labels, size_t n, int64_t* out) const;
  // Evaluates a compiled filter program over the live slots below `limit` (the slots whose
  // attributes are recorded: an add still in progress has slots without them, which even a
  // NOT must not admit) into bitset_words(min(limit, n_slots())) words; returns the matches.
  size_t evaluate_filter(const int64_t* ops, size_t n_ops, const int32_t* entries,
                         size_t n_entries, const uint64_t* loads, size_t n_loads, size_t limit,
                         uint64_t* out) const;

  const Buffer<int64_t>& labels() const { return labels_; }
  const Buffer<uint8_t>& deleted() const { return deleted_; }

  // Makes room for `n_slots` slots in total without slack (an ingest of known size).
  void reserve(size_t n_slots);
  // Gives unused capacity back (free where buffers are mappings).
  void shrink_to_fit();

 protected:
  SlotIndex() = default;
  virtual ~SlotIndex() = default;
  // What an index keeps per slot beside the ids (rows, graph...): reserve / shrink hooks,
  // called with the locks held.
  virtual void reserve_rows(size_t n_slots) = 0;
  virtual void shrink_rows() = 0;

  // The rest run with write_mu_ and an exclusive buffers_mu_ held.
  // Appends slots n_slots() .. + n for `labels` (a label already present tombstones its old
  // slot, written to replaced[i], else -1). The caller sets n_slots_ once rows are in place.
  void append_labels(const int64_t* labels, size_t n, int64_t* replaced);
  // Undoes the append of item i (first + i) that was never inserted (an interrupted add).
  void undo_append(size_t first, size_t i, const int64_t* labels, const int64_t* replaced);
  void reserve_slots(size_t n_slots);
  void shrink_slots();
  void make_slots_owned();
  // Adopts saved arrays; throws ValueError if a live label appears twice.
  void borrow_slots(const int64_t* labels, const uint8_t* deleted, size_t n_slots);
  size_t slots_nbytes() const {
    return labels_.owned_bytes() + deleted_.owned_bytes() + label_map_.nbytes();
  }
  size_t slots_borrowed_nbytes() const {
    return labels_.borrowed_bytes() + deleted_.borrowed_bytes();
  }
  static void check_capacity(size_t n_slots);

  Buffer<int64_t> labels_;
  Buffer<uint8_t> deleted_;
  LabelMap label_map_;
  size_t n_slots_ = 0;
  size_t n_deleted_ = 0;
  mutable std::shared_mutex buffers_mu_;  // exclusive only while buffers move
  std::mutex write_mu_;                   // serialises add / remove / reserve
};

}  // namespace bitgraph
