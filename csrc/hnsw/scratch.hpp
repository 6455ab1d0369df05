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

// The calling thread's scratch for queries: kept between calls (a one-query search then
// allocates nothing), sized on demand by the walks (the visited set to the largest index the
// thread searched).
template <class Store>
typename HnswIndexT<Store>::Scratch& HnswIndexT<Store>::thread_scratch() {
  static thread_local Scratch scratch;
  if (!scratch.visited) scratch.visited.reset(new VisitedSet());
  return scratch;
}

template <class Store>
template <class Fn>
void HnswIndexT<Store>::for_each_query(size_t nq, size_t threads, const Fn& fn) const {
  if (nq == 0) return;
  parallel_for(nq, std::max<size_t>(1, std::min(threads, nq)), 1,
               [&](size_t i, size_t) { fn(i, thread_scratch()); });
}

}  // namespace bitgraph
