#include "filter/bitset_program.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/cpu_features.hpp"
#include "core/types.hpp"

namespace bitgraph {

namespace {

size_t popcount_portable(const uint64_t* words, size_t n_words) {
  size_t count = 0;
  for (size_t i = 0; i < n_words; ++i) count += size_t(__builtin_popcountll(words[i]));
  return count;
}

#if defined(__x86_64__) && defined(__GNUC__)
// This file is built for the baseline ISA, where __builtin_popcountll is a ~12-instruction
// bit trick; POPCNT (every x86-64 CPU since ~2008, checked at run time) is one.
__attribute__((target("popcnt"))) size_t popcount_hw(const uint64_t* words, size_t n_words) {
  size_t count = 0;
  for (size_t i = 0; i < n_words; ++i) count += size_t(__builtin_popcountll(words[i]));
  return count;
}
#endif

}  // namespace

size_t popcount_words(const uint64_t* words, size_t n_words) {
#if defined(__x86_64__) && defined(__GNUC__)
  // The hardware popcount belongs to the avx2 level (core/cpu_features.hpp's one rule).
  static const bool has_popcnt = choose_level(kPopcnt, kPopcnt) != SimdLevel::kGeneric;
  if (has_popcnt) return popcount_hw(words, n_words);
#endif
  return popcount_portable(words, n_words);
}

size_t evaluate_filter(const int64_t* ops, size_t n_ops, const int32_t* entries,
                       size_t n_entries, const uint64_t* loads, size_t n_loads,
                       const uint8_t* deleted, size_t n_slots, uint64_t* out) {
  const size_t words = bitset_words(n_slots);
  const uint64_t tail_mask = (n_slots % 64) ? ((uint64_t(1) << (n_slots % 64)) - 1) : ~uint64_t(0);
  // The stack's bottom is `out` itself, so the common single-leaf program copies nothing.
  std::vector<std::vector<uint64_t>> spare;
  std::vector<uint64_t*> stack;
  auto push = [&]() -> uint64_t* {
    if (stack.empty()) {
      stack.push_back(out);
    } else {
      if (spare.size() < stack.size()) spare.emplace_back(words);
      stack.push_back(spare[stack.size() - 1].data());
    }
    return stack.back();
  };
  for (size_t i = 0; i < n_ops; ++i) {
    const int64_t code = ops[3 * i], begin = ops[3 * i + 1], end = ops[3 * i + 2];
    if (code == kOpScatter) {
      if (begin < 0 || end < begin || size_t(end) > n_entries)
        throw ValueError("filter program: entry range out of bounds");
      uint64_t* bits = push();
      std::memset(bits, 0, words * sizeof(uint64_t));
      for (int64_t j = begin; j < end; ++j) {
        const int64_t slot = entries[j];
        if (slot >= 0 && size_t(slot) < n_slots) bits[slot >> 6] |= uint64_t(1) << (slot & 63);
      }
    } else if (code == kOpPrefixDiff) {
      if (begin < 0 || size_t(begin) >= n_loads || end < 0 || size_t(end) >= n_loads)
        throw ValueError("filter program: bitset index out of bounds");
      uint64_t* bits = push();
      const uint64_t* hi = loads + size_t(begin) * words;
      const uint64_t* lo = loads + size_t(end) * words;
      for (size_t w = 0; w < words; ++w) bits[w] = hi[w] & ~lo[w];
      if (words) bits[words - 1] &= tail_mask;
    } else if (code == kOpNot) {
      if (stack.empty()) throw ValueError("filter program: NOT on an empty stack");
      uint64_t* bits = stack.back();
      for (size_t w = 0; w < words; ++w) bits[w] = ~bits[w];
      if (words) bits[words - 1] &= tail_mask;
    } else if (code == kOpAnd || code == kOpOr) {
      if (stack.size() < 2) throw ValueError("filter program: AND/OR needs two operands");
      const uint64_t* b = stack.back();
      stack.pop_back();
      uint64_t* a = stack.back();
      if (code == kOpAnd)
        for (size_t w = 0; w < words; ++w) a[w] &= b[w];
      else
        for (size_t w = 0; w < words; ++w) a[w] |= b[w];
    } else {
      throw ValueError("filter program: unknown op code");
    }
  }
  if (stack.size() != 1) throw ValueError("filter program must leave exactly one bitset");
  if (deleted) {
    for (size_t s = 0; s < n_slots; ++s)
      if (deleted[s]) out[s >> 6] &= ~(uint64_t(1) << (s & 63));
  }
  return popcount_words(out, words);
}

}  // namespace bitgraph
