// What every bitgraph CUDA kernel shares: result keys and the admissibility bitset.
//
// A result is one 64-bit key: the distance mapped to an order-preserving uint32 in the high
// half and the slot in the low half. Comparing keys as integers is then exactly the CPU's
// `closer` (csrc/core/topk.hpp): distance ascending, ties by slot ascending. Slots are unique,
// so keys are unique, which lets a radix select find "the k-th smallest key" with no tie rule
// of its own. kEmptyKey (all ones) pads rows with fewer than k results; no real key equals it
// because slots stay below 2^31.
//
// Compiled by NVRTC through CuPy at run time (python/bitgraph/_cuda/kernels.py) and by nvcc
// to PTX in the test suite: plain CUDA C++, no CUDA headers, no host code.
#pragma once

typedef unsigned long long bg_u64;
typedef unsigned int bg_u32;

#define BG_EMPTY_KEY 0xFFFFFFFFFFFFFFFFull

// float -> uint32 with the same order (negative floats reversed below positive ones).
// -0.0 is folded onto +0.0 first: the CPU compares them equal and breaks the tie by slot.
__device__ __forceinline__ bg_u32 bg_order_float(float f) {
  if (f == 0.0f) f = 0.0f;
  const bg_u32 b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float bg_unorder_float(bg_u32 u) {
  const bg_u32 b = (u & 0x80000000u) ? (u & 0x7FFFFFFFu) : ~u;
  return __uint_as_float(b);
}

__device__ __forceinline__ bg_u64 bg_key(float dist, bg_u32 slot) {
  return ((bg_u64)bg_order_float(dist) << 32) | (bg_u64)slot;
}

// Slots whose bit is set in `bits` (one bit per slot, little-endian words) may be returned:
// the live slots, or the live slots matching a filter (evaluated on the host).
__device__ __forceinline__ bool bg_allowed(const bg_u64* bits, bg_u32 slot) {
  return bits == 0 || ((bits[slot >> 6] >> (slot & 63u)) & 1ull) != 0;
}

// fp16 storage: a stored half widened exactly to float (PTX cvt; no cuda_fp16.h needed).
__device__ __forceinline__ float bg_half_to_float(unsigned short h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}
