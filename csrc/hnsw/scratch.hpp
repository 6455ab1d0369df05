// Per-thread working memory of graph walks (private to hnsw/).
#pragma once
#include <algorithm>
#include <memory>
#include <vector>

#include "core/topk.hpp"
#include "core/visited.hpp"
#include "hnsw/hnsw_index.hpp"

namespace bitgraph {

template <class Store>
struct HnswIndexT<Store>::Scratch {
  std::unique_ptr<VisitedSet> visited;
  LinearPool pool;
  std::vector<uint32_t> ids;        // neighbours gathered for one batched distance call
  std::vector<float> dists;
  std::vector<uint32_t> relink_ids;  // non-matching neighbours to look through (filtered walk)
  TopK results;                     // a restricted walk's admitted nodes (kept: no allocation)
  std::vector<Scored> candidates;   // walk output / pruning input
  std::vector<Scored> selected;     // heuristic output
  std::vector<Scored> relink;       // candidates when a neighbour list overflows
  std::vector<std::vector<Scored>> chosen;  // per level: the new node's links, to link back
  std::vector<Query> query_buf;     // decoded vector of the node being inserted
  std::vector<Query> cand_buf;      // decoded vector of a pruning candidate
  std::vector<Query> owner_buf;     // decoded vector of a neighbour being re-pruned
};

template <class Store>
std::unique_ptr<typename HnswIndexT<Store>::Scratch> HnswIndexT<Store>::acquire_scratch() const {
  std::unique_ptr<Scratch> s;
  {
    std::lock_guard<std::mutex> g(scratch_mu_);
    if (!free_scratch_.empty()) {
      s = std::move(free_scratch_.back());
      free_scratch_.pop_back();
    }
  }
  if (!s) {
    s.reset(new Scratch());
    s->visited.reset(new VisitedSet());
  }
  return s;
}

template <class Store>
void HnswIndexT<Store>::release_scratch(std::unique_ptr<Scratch> s) const {
  std::lock_guard<std::mutex> g(scratch_mu_);
  free_scratch_.push_back(std::move(s));
}

template <class Store>
template <class Fn>
void HnswIndexT<Store>::for_each_query(size_t nq, size_t threads, const Fn& fn) const {
  if (nq == 0) return;
  const size_t t = std::max<size_t>(1, std::min(threads, nq));
  if (t == 1) {  // the common one-query call: one scratch from the pool, no allocation
    std::unique_ptr<Scratch> s = acquire_scratch();
    try {
      for (size_t i = 0; i < nq; ++i) fn(i, *s);
    } catch (...) {
      release_scratch(std::move(s));
      throw;
    }
    release_scratch(std::move(s));
    return;
  }
  std::vector<std::unique_ptr<Scratch>> scratch(t);
  for (auto& s : scratch) s = acquire_scratch();
  auto give_back = [&] {
    for (auto& s : scratch) release_scratch(std::move(s));
  };
  try {
    parallel_for(nq, t, 1, [&](size_t i, size_t tid) { fn(i, *scratch[tid]); });
  } catch (...) {
    give_back();
    throw;
  }
  give_back();
}

}  // namespace bitgraph
