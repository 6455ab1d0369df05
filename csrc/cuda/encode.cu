// RecurrentBinarizer encode on the device (project, binarize, residual loops, pack), step by
// step as csrc/binary/encode.cpp does it, so device codes match the CPU's bit for bit
// wherever a pre-sign value z is not within float rounding of 0:
//   - the norm is a sequential double sum and 1 / sqrt in double, like the CPU;
//   - x * scale - mean, the residual updates and the identity phi are single roundings
//     (__fmul_rn / __fadd_rn: the CPU compiles them without FMA contraction);
//   - the products (x - mu) @ proj, r @ phi_t, sgn @ psi_t sum k = 0 .. inner-1 in order with
//     one FMA per step, as the CPU's AVX2 / AVX-512 gemm_add clones do (GCC contracts
//     `acc += a * b` there; the portable clone rounds twice and can differ in the last bit).
// One thread per output value: this is for batches of queries and moderate adds, not a tuned
// GEMM (the host may use cuBLAS for large batches and accept last-bit differences).
#include "bg_common.cuh"

// f[i, j] = x[i, j] * scale_i - mean[j], scale_i = 1 / |x_i| (0 for a zero row) or 1.
extern "C" __global__ void bg_encode_center(const float* __restrict__ x, int n, int d,
                                            int normalize, const float* __restrict__ mean,
                                            float* __restrict__ f) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float* xi = x + (long long)i * d;
  float scale = 1.0f;
  if (normalize) {
    double s = 0.0;
    for (int j = 0; j < d; ++j) s += (double)xi[j] * (double)xi[j];
    scale = s > 0.0 ? (float)(1.0 / sqrt(s)) : 0.0f;
  }
  float* fi = f + (long long)i * d;
  for (int j = 0; j < d; ++j) fi[j] = __fsub_rn(__fmul_rn(xi[j], scale), mean[j]);
}

// C (rows x cols) += A (rows x inner, row stride lda) @ B (inner x cols), k in order, FMA.
extern "C" __global__ void bg_encode_gemm_add(const float* __restrict__ A, int rows,
                                              long long lda, int inner,
                                              const float* __restrict__ B, int cols,
                                              float* __restrict__ C) {
  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (long long)rows * cols) return;
  const int r = (int)(t / cols), c = (int)(t % cols);
  const float* a = A + (long long)r * lda;
  float acc = C[t];
  for (int k = 0; k < inner; ++k) acc = fmaf(a[k], B[(long long)k * cols + c], acc);
  C[t] = acc;
}

// z[i, j] = res[i, j] + bias[j] (identity phi: one rounding).
extern "C" __global__ void bg_encode_add_bias(const float* __restrict__ res, int rows, int m,
                                              const float* __restrict__ bias,
                                              float* __restrict__ z) {
  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (long long)rows * m) return;
  z[t] = __fadd_rn(res[t], bias[t % m]);
}

// Plane t of the codes from z (bit j set where z > 0, little-endian words) and the signs.
// codes: rows x (planes * words) uint64 (the CPU's byte layout on a little-endian device).
extern "C" __global__ void bg_encode_pack(const float* __restrict__ z, int rows, int m,
                                          int planes, int words, int t,
                                          bg_u64* __restrict__ codes, float* __restrict__ sgn) {
  const long long id = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (id >= (long long)rows * words) return;
  const int i = (int)(id / words), w = (int)(id % words);
  bg_u64 word = 0;
  for (int b = 0; b < 64; ++b) {
    const int j = w * 64 + b;
    if (j >= m) break;
    const bool bit = z[(long long)i * m + j] > 0.0f;
    sgn[(long long)i * m + j] = bit ? 1.0f : -1.0f;
    if (bit) word |= 1ull << b;
  }
  codes[(long long)i * planes * words + (long long)t * words + w] = word;
}

// res -= a * sgn + bias (identity psi with scale a) or res -= z + bias (learned psi: z =
// sgn @ psi_t), one rounding per operation like the CPU.
extern "C" __global__ void bg_encode_residual(float* __restrict__ res, int rows, int r,
                                              const float* __restrict__ sgn_or_z, float a,
                                              int identity, const float* __restrict__ bias) {
  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (long long)rows * r) return;
  const float v = identity ? __fmul_rn(a, sgn_or_z[t]) : sgn_or_z[t];
  res[t] = __fsub_rn(res[t], __fadd_rn(v, bias[t % r]));
}
