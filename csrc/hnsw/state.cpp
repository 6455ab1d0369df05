// HNSW bookkeeping outside the hot paths: capacity, memory, adopting state.
#include <string>

#include "hnsw/hnsw_index.hpp"
#include "hnsw/scratch.hpp"

namespace bitgraph {

template <class Store>
void HnswIndexT<Store>::reserve_rows(size_t n_slots) {
  make_owned();
  store_.reserve(n_slots);
  graph_.reserve(n_slots);
}

template <class Store>
void HnswIndexT<Store>::shrink_rows() {
  store_.shrink_to_fit();
  graph_.shrink_to_fit();
  visited_pool_.clear();
  std::lock_guard<std::mutex> g(scratch_mu_);
  free_scratch_.clear();  // their visited sets are sized by the index
}

template <class Store>
size_t HnswIndexT<Store>::nbytes() const {
  return store_.nbytes() + graph_.nbytes() + slots_nbytes();
}

template <class Store>
void HnswIndexT<Store>::borrow_state(const uint8_t* rows, const int32_t* links0, const int32_t* levels,
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
  borrow_slots(labels, deleted, n_slots);
  entry_point_ = entry_point;
  max_level_ = max_level;
}

template class HnswIndexT<RowStore>;
template class HnswIndexT<CodeStore>;

}  // namespace bitgraph
