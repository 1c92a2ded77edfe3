/* Latency buckets shared by the load generators: 32 linear sub-buckets per power of two (about 3 %
 * resolution) over 64-bit values (ns). A bucket index is cheap to compute on every echo; the middle of a
 * bucket is what a percentile reports. */
#pragma once
#include <stdint.h>

#define SUB_BITS 5
#define SUB (1 << SUB_BITS)
#define BUCKETS (64 * SUB)

static inline int bucket_of(uint64_t v) {
  if (v < SUB) return (int)v;
  int e = 63 - __builtin_clzll(v);
  return (e - SUB_BITS + 1) * SUB + (int)((v >> (e - SUB_BITS)) - SUB);
}

static inline double bucket_middle(int index) {
  if (index < SUB) return index;
  int e = index / SUB + SUB_BITS - 1;
  uint64_t mantissa = (uint64_t)(index % SUB + SUB);
  return ((double)(mantissa << (e - SUB_BITS)) + (double)((mantissa + 1) << (e - SUB_BITS))) / 2;
}
