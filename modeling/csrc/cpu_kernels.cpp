// Weight-only int4 / int8 matrix products for x86 CPUs with AVX2 (llama.cpp's scheme), and int4 for CPUs with
// AVX-512 VNNI / AMX in a layout of its own (q4n_mm, further down): the activations
// are quantized to int8 in blocks of 32 columns, and each block's dot product with the weight codes is an
// integer one (_mm256_maddubs_epi16), scaled once per block. Built by modeling/ext.py on first use. Further down,
// GPTQ's helpers (quant/gptq.py, quant/primitives.py): the clip search, the column loop, Hessians on AMX.
//
// Layouts (made by quant/backends.py from the GPTQ tensors):
//   q4 uint8 (N, K/2): for each output row, K/32 blocks of 16 bytes; byte j of a block holds the codes of
//      columns j (low nibble) and j + 16 (high nibble) of that block.
//   q8 int8 (N, K): code - 128 (symmetric per-channel int8).
//   q4 scales: s fp16 (N, G) as stored in the GPTQ folder and zero points z uint8 (N, G); a weight is
//      s * (q - z). int8: s fp32 (N), the codes already centred.
// x (M, K) fp32 or bf16 -> y (M, N) fp32, or y + bias in fp32 or bf16. Rows of x are processed up to 4 at a
// time against each weight block, so a few rows (speculative verification, short prompts) cost little more
// than one.
//
// int4 takes two blocks per step: the 32 bytes of blocks b and b + 1 give, masked, the codes 0-15 of both
// (one 128-bit lane each) and, shifted, their codes 16-31; the activations are stored in the same order, so
// two maddubs, one add, one madd, one int-to-float conversion and one FMA cover 64 weights.

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace {

constexpr int QK = 32;  // activation block
// Weights are read once per token from memory: the hardware prefetcher alone left the int4 kernel at about 10.5
// GB/s on a host that streams 17 GB/s (Intel AVX-512, 2 threads); the line this far ahead, asked for, gave 14-15.
constexpr int64_t PREFETCH_BYTES = 4096;

inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p) + PREFETCH_BYTES, _MM_HINT_T0); }

struct QuantizedRows {
  std::vector<int8_t> a;    // (M, K); with `pairs`, each 64 columns reordered as the int4 kernel reads them
  std::vector<float> d;     // without `pairs`: (M, K / 32) block scales
  std::vector<float> dv;    // with `pairs`: (M, K / 64, 8) the scales of blocks b, b + 1, each four times
  std::vector<float> gsum;  // (M, G) sum over each weight group of the dequantized activations
};

template <typename T>
QuantizedRows quantize_rows(const T* x, int64_t M, int64_t K, int64_t group, bool pairs) {
  const int64_t nb = K / QK, G = K / group;
  QuantizedRows r{std::vector<int8_t>(M * K), std::vector<float>(pairs ? 0 : M * nb), std::vector<float>(pairs ? M * nb * 4 : 0),
                  std::vector<float>(M * G, 0.f)};
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t b = 0; b < nb; ++b) {
      const T* xb = x + m * K + b * QK;
      float amax = 0.f;
      for (int i = 0; i < QK; ++i) amax = std::max(amax, std::fabs(static_cast<float>(xb[i])));
      const float d = amax / 127.f, id = d > 0.f ? 1.f / d : 0.f;
      int sum = 0;
      // pairs: [b even: 0-15 | b odd: 0-15 | b even: 16-31 | b odd: 16-31] in each 64 columns
      int8_t* ab = r.a.data() + m * K + (pairs ? (b & ~1) * QK + (b & 1) * 16 : b * QK);
      for (int i = 0; i < QK; ++i) {
        const int v = static_cast<int>(std::nearbyint(static_cast<float>(xb[i]) * id));
        ab[pairs && i >= 16 ? i + 16 : i] = static_cast<int8_t>(v);
        sum += v;
      }
      if (pairs)
        for (int i = 0; i < 4; ++i) r.dv[(m * nb + (b & ~1)) * 4 + (b & 1) * 4 + i] = d;
      else
        r.d[m * nb + b] = d;
      r.gsum[m * G + b * QK / group] += d * sum;
    }
  }
  return r;
}

QuantizedRows quantize(const torch::Tensor& x, int64_t group, bool pairs) {
  const int64_t M = x.size(0), K = x.size(1);
  if (x.scalar_type() == torch::kBFloat16)
    return quantize_rows(x.data_ptr<at::BFloat16>(), M, K, group, pairs);
  return quantize_rows(x.data_ptr<float>(), M, K, group, pairs);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// int8 weights: |w| against the activations carrying w's sign (maddubs needs one unsigned operand)
inline __m256 dot_block_signed(__m256i w, const int8_t* a) {
  const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(av, w));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

// MT activation rows against one output row, two blocks (64 columns) per step. Groups of 64 columns or more
// (PPG whole pairs per group; PPG 0: known only at run time): the pairs' products (scaled by each block's
// activation scale) are added, then scaled by the group's s once. Groups of 32 (G32): each block's s is applied
// per pair instead. The group size is a template parameter for the usual 64 / 128 / 256: with a run-time pair
// count the compiler kept a division and stack traffic in the loop, and the kernel ran at 0.7x the speed.
// Every row of x takes the same operations in the same order whatever MT is, so a row's result does not
// depend on how many rows come with it (speculative verification gives exactly the logits of one-token decoding).
template <int MT, bool G32, int PPG>
void q4_row(const uint8_t* wr, const uint16_t* s, const uint8_t* z, const QuantizedRows& q, int64_t m0, int64_t n,
            int64_t K, int64_t N, int64_t group, float* y) {
  const int64_t np = K / 64, G = K / group, ppg = G32 ? 1 : PPG ? PPG : group / 64, steps = np / ppg;
  const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const int8_t* a = q.a.data() + m0 * K;
  const float* dv = q.dv.data() + m0 * np * 8;
  __m256 acc[MT], gsum[MT];
  for (int i = 0; i < MT; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t g = 0; g < steps; ++g) {  // one group (or, with G32, one pair: two groups)
    const int64_t g0 = g * ppg;
    for (int64_t o = 0; o < ppg * 32; o += 64) prefetch(wr + g0 * 32 + o);  // once per 64-byte line
    for (int64_t j = 0; j < ppg; ++j) {
      const int64_t p = g0 + j;
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + p * 32));
      const __m256i lo = _mm256_and_si256(raw, low), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
      for (int i = 0; i < MT; ++i) {
        const __m256i* ap = reinterpret_cast<const __m256i*>(a + i * K + p * 64);
        const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256(ap)),
                                             _mm256_maddubs_epi16(hi, _mm256_loadu_si256(ap + 1)));
        const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s16, ones)),
                                       _mm256_loadu_ps(dv + (i * np + p) * 8));
        gsum[i] = j == 0 ? f : _mm256_add_ps(gsum[i], f);  // independent products, one add each
      }
    }
    const __m256 sg = G32 ? _mm256_set_m128(_mm_set1_ps(_cvtsh_ss(s[2 * g + 1])), _mm_set1_ps(_cvtsh_ss(s[2 * g])))
                          : _mm256_set1_ps(_cvtsh_ss(s[g]));
    for (int i = 0; i < MT; ++i) acc[i] = _mm256_fmadd_ps(gsum[i], sg, acc[i]);
  }
  for (int i = 0; i < MT; ++i) {
    const float* gs = q.gsum.data() + (m0 + i) * G;
    __m256 zs = _mm256_setzero_ps();  // the zero points' share: sum over groups of s * z * sum(x)
    int64_t g = 0;
    for (; g + 8 <= G; g += 8) {
      const __m256 sz = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + g))),
                                      _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(z + g)))));
      zs = _mm256_fmadd_ps(sz, _mm256_loadu_ps(gs + g), zs);
    }
    float zero = hsum(zs);
    for (; g < G; ++g) zero += _cvtsh_ss(s[g]) * static_cast<float>(z[g]) * gs[g];
    y[(m0 + i) * N + n] = hsum(acc[i]) - zero;
  }
}

template <int MT, bool G32, int PPG>
void q4_rows_of(const uint8_t* w, const uint16_t* s, const uint8_t* z, const QuantizedRows& q, int64_t m0, int64_t n0,
                int64_t n1, int64_t K, int64_t N, int64_t group, float* y) {
  const int64_t G = K / group;
  for (int64_t n = n0; n < n1; ++n)
    q4_row<MT, G32, PPG>(w + n * (K / 2), s + n * G, z + n * G, q, m0, n, K, N, group, y);
}

template <int MT>
void q4_rows(const uint8_t* w, const uint16_t* s, const uint8_t* z, const QuantizedRows& q, int64_t m0, int64_t n0,
             int64_t n1, int64_t K, int64_t N, int64_t group, float* y) {
  switch (group) {
    case QK: return q4_rows_of<MT, true, 1>(w, s, z, q, m0, n0, n1, K, N, group, y);
    case 64: return q4_rows_of<MT, false, 1>(w, s, z, q, m0, n0, n1, K, N, group, y);
    case 128: return q4_rows_of<MT, false, 2>(w, s, z, q, m0, n0, n1, K, N, group, y);
    case 256: return q4_rows_of<MT, false, 4>(w, s, z, q, m0, n0, n1, K, N, group, y);
    default: return q4_rows_of<MT, false, 0>(w, s, z, q, m0, n0, n1, K, N, group, y);
  }
}

template <int MT>
void q8_rows(const int8_t* w, const float* s, const QuantizedRows& q, int64_t m0, int64_t n0, int64_t n1, int64_t K,
             int64_t N, float* y) {
  const int64_t nb = K / QK;
  const int8_t* a = q.a.data() + m0 * K;
  const float* d = q.d.data() + m0 * nb;
  for (int64_t n = n0; n < n1; ++n) {
    const int8_t* wr = w + n * K;
    __m256 acc[MT];
    for (int i = 0; i < MT; ++i) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      if (b % 2 == 0) prefetch(wr + b * QK);
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + b * QK));
      for (int i = 0; i < MT; ++i)
        acc[i] = _mm256_fmadd_ps(dot_block_signed(wq, a + i * K + b * QK), _mm256_set1_ps(d[i * nb + b]), acc[i]);
    }
    for (int i = 0; i < MT; ++i) y[(m0 + i) * N + n] = hsum(acc[i]) * s[n];
  }
}

// bf16 weights (a bf16 is the top half of an fp32): 16 columns per step, x converted to fp32 once
template <int MT>
void bf16_rows(const uint16_t* w, const float* x, int64_t m0, int64_t n0, int64_t n1, int64_t K, int64_t N, float* y) {
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* wr = w + n * K;
    __m256 acc[MT][2];
    for (int i = 0; i < MT; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k += 16) {
      if (k % 32 == 0) prefetch(wr + k);
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + k));
      const __m256 w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(raw)), 16));
      const __m256 w1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(raw, 1)), 16));
      for (int i = 0; i < MT; ++i) {
        const float* xi = x + (m0 + i) * K + k;
        acc[i][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xi), acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xi + 8), acc[i][1]);
      }
    }
    for (int i = 0; i < MT; ++i) y[(m0 + i) * N + n] = hsum(_mm256_add_ps(acc[i][0], acc[i][1]));
  }
}

void check(const torch::Tensor& x, const torch::Tensor& w, int64_t K) {
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous() && x.device().is_cpu(), "x: a contiguous CPU matrix");
  TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16, "x: fp32 or bf16");
  TORCH_CHECK(x.size(1) == K && K % QK == 0, "x: K = ", K, ", a multiple of 32");
  TORCH_CHECK(w.is_contiguous(), "a contiguous weight");
}

constexpr int64_t ROWS_PER_TASK = 16;  // output rows a thread takes at a time
constexpr int64_t ROWS_PER_PASS = 8;   // output rows multiplied with a chunk of rows of x before the next ones
constexpr int64_t X_CHUNK_BYTES = 256 * 1024;  // that chunk: at most this many bytes of quantized x (and 4 rows)

// Output rows split across threads; each thread takes a chunk of x's rows (x_row_bytes each) that stays in
// cache, then ROWS_PER_PASS weight rows at a time against all of it, 4 rows of x per call to rows(MT, m, n0, n1)
template <typename F>
void for_tiles(int64_t M, int64_t N, int64_t x_row_bytes, F rows) {
  const int64_t mchunk = std::max<int64_t>(4, X_CHUNK_BYTES / x_row_bytes);
  at::parallel_for(0, N, ROWS_PER_TASK, [&](int64_t n0, int64_t n1) {
    for (int64_t m0 = 0; m0 < M; m0 += mchunk) {
      const int64_t m1 = std::min(m0 + mchunk, M);
      for (int64_t a = n0; a < n1; a += ROWS_PER_PASS) {
        const int64_t b = std::min(a + ROWS_PER_PASS, n1);
        int64_t m = m0;
        for (; m + 4 <= m1; m += 4) rows(std::integral_constant<int, 4>{}, m, a, b);
        switch (m1 - m) {
          case 3: rows(std::integral_constant<int, 3>{}, m, a, b); break;
          case 2: rows(std::integral_constant<int, 2>{}, m, a, b); break;
          case 1: rows(std::integral_constant<int, 1>{}, m, a, b); break;
        }
      }
    }
  });
}

// ---- int4 for CPUs with AVX-512 VNNI (Intel since Ice Lake, AMD since Zen 4), and AMX tiles where they exist ----
// Layout (quant/backends.py Avx512Int4), per n-block of 16 output rows and block b of 32 columns, 256 bytes: byte
// r * 64 + n * 4 + j holds the code of row n, column 32 b + 4 r + j (low nibble) and of column 32 b + 16 + 4 r + j
// (high nibble). Masked, the low and the high nibbles are the 8 x 64-byte B tile of AMX's TDPBSUD (rows of 4
// consecutive columns for each of the 16 output rows), and each 64 bytes is what VPDPBUSD multiplies with 4 of the
// activations broadcast: the block's exact int32 products for 16 output rows, in one vector either way. Scales (fp16)
// and zero points (uint8) as (N / 16, G, 16): a group's 16 rows side by side. Activations: int8 per block of 32 (PLAIN).
// The float work is the same in both kernels, per output row in its own lane and in the same order for every
// activation row (nblock_scale, nblock_store): one row's result is bit for bit the same alone or with others, through
// either kernel, so the kernel can be chosen by the number of rows.
#define AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))
#define AMX_INT8 __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))

// Block b's int32 products (16 output rows) times the activation's block scale d, summed over the group in gsum;
// at the group's last block, times the group's 16 scales into acc
AVX512_VNNI inline void nblock_scale(__m512i dot, float d, int64_t b, int64_t bpg, const uint16_t* sb, __m512& gsum,
                                     __m512& acc) {
  const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(d));
  gsum = b % bpg == 0 ? f : _mm512_add_ps(gsum, f);
  if ((b + 1) % bpg == 0)
    acc = _mm512_fmadd_ps(gsum, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + b / bpg * 16))), acc);
}

// y's 16 outputs: acc minus the zero points' share, sum over groups of s * z * sum(x) (gs: x's sums per group)
AVX512_VNNI inline void nblock_store(__m512 acc, const uint16_t* sb, const uint8_t* zb, const float* gs, int64_t G, float* y) {
  __m512 zero = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    const __m512 sz = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + g * 16))),
                                    _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(zb + g * 16)))));
    zero = _mm512_fmadd_ps(sz, _mm512_set1_ps(gs[g]), zero);
  }
  _mm512_storeu_ps(y, _mm512_sub_ps(acc, zero));
}

// The 4 x 64 bytes of block b's codes (src), masked: lo[r] its columns 4 r .. 4 r + 3 for the 16 rows, hi[r] the
// columns 16 + 4 r ..; in this order they are also the rows of AMX's B tile
AVX512_VNNI inline void nblock_nibbles(const uint8_t* src, __m512i* lo, __m512i* hi) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int r = 0; r < 4; ++r) {
    prefetch(src + r * 64);
    const __m512i v = _mm512_loadu_si512(src + r * 64);
    lo[r] = _mm512_and_si512(v, low), hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
  }
}

// VPDPBUSD: MT activation rows (from m0) against n-block nb, one block of 32 columns per step
template <int MT>
AVX512_VNNI void vnni_q4_nblock(const uint8_t* w, const uint16_t* s, const uint8_t* z, const QuantizedRows& q, int64_t m0,
                                int64_t nb, int64_t K, int64_t N, int64_t group, float* y) {
  const int64_t nblk = K / QK, G = K / group, bpg = group / QK;
  const uint8_t* wb = w + nb * nblk * 256;
  const uint16_t* sb = s + nb * G * 16;
  const int8_t* a = q.a.data() + m0 * K;
  const float* d = q.d.data() + m0 * nblk;
  __m512 acc[MT], gsum[MT];
  for (int i = 0; i < MT; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nblk; ++b) {
    __m512i lo[4], hi[4];
    nblock_nibbles(wb + b * 256, lo, hi);
    for (int i = 0; i < MT; ++i) {
      const int32_t* ai = reinterpret_cast<const int32_t*>(a + i * K + b * QK);  // 4 activations per int32
      __m512i dl = _mm512_setzero_si512(), dh = _mm512_setzero_si512();
      for (int r = 0; r < 4; ++r) {
        dl = _mm512_dpbusd_epi32(dl, lo[r], _mm512_set1_epi32(ai[r]));
        dh = _mm512_dpbusd_epi32(dh, hi[r], _mm512_set1_epi32(ai[4 + r]));
      }
      nblock_scale(_mm512_add_epi32(dl, dh), d[i * nblk + b], b, bpg, sb, gsum[i], acc[i]);
    }
  }
  for (int i = 0; i < MT; ++i)
    nblock_store(acc[i], sb, z + nb * G * 16, q.gsum.data() + (m0 + i) * G, G, y + (m0 + i) * N + nb * 16);
}

struct TileConfig {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

AMX_INT8 void amx_configure(int mrows) {
  alignas(64) TileConfig c{};
  c.palette = 1;
  for (int t = 0; t < 2; ++t) {  // two sets of tiles, for two blocks in flight
    c.rows[t] = mrows, c.colsb[t] = 64;          // C: mrows x 16 int32
    c.rows[2 + t] = mrows, c.colsb[2 + t] = 32;  // A: mrows x 32 int8
    c.rows[4 + t] = 8, c.colsb[4 + t] = 64;      // B: 8 x (16 rows x 4 columns) uint8
  }
  asm volatile("" : : "r"(&c) : "memory");  // GCC 12 does not see ldtilecfg read c and drops the stores above
  _tile_loadconfig(&c);
}

AMX_INT8 void amx_release() { _tile_release(); }

// The B tile of block b: the low nibbles of its 256 bytes, then the high ones
AMX_INT8 inline void amx_unpack(const uint8_t* src, uint8_t* btile) {
  __m512i lo[4], hi[4];
  nblock_nibbles(src, lo, hi);
  for (int r = 0; r < 4; ++r) {
    _mm512_store_si512(btile + r * 64, lo[r]);
    _mm512_store_si512(btile + 256 + r * 64, hi[r]);
  }
}

// TDPBSUD: rows m0 .. m0 + mr (up to 16; tiles configured for mr rows) against n-block nb, two blocks at a time on
// tiles 0 / 2 / 4 and 1 / 3 / 5 (C, A, B)
AMX_INT8 void amx_q4_nblock(const uint8_t* w, const uint16_t* s, const uint8_t* z, const QuantizedRows& q, int64_t m0,
                            int64_t mr, int64_t nb, int64_t K, int64_t N, int64_t group, float* y) {
  const int64_t nblk = K / QK, G = K / group, bpg = group / QK;
  const uint8_t* wb = w + nb * nblk * 256;
  const uint16_t* sb = s + nb * G * 16;
  const int8_t* a = q.a.data() + m0 * K;
  const float* d = q.d.data() + m0 * nblk;
  alignas(64) uint8_t btile[2][512];
  alignas(64) int32_t ctile[2][16 * 16];
  __m512 acc[16], gsum[16];
  for (int64_t i = 0; i < mr; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nblk; b += 2) {
    const bool two = b + 1 < nblk;
    amx_unpack(wb + b * 256, btile[0]);
    _tile_loadd(4, btile[0], 64);
    _tile_loadd(2, a + b * QK, K);
    _tile_zero(0);
    _tile_dpbsud(0, 2, 4);
    if (two) {
      amx_unpack(wb + (b + 1) * 256, btile[1]);
      _tile_loadd(5, btile[1], 64);
      _tile_loadd(3, a + (b + 1) * QK, K);
      _tile_zero(1);
      _tile_dpbsud(1, 3, 5);
    }
    _tile_stored(0, ctile[0], 64);
    for (int64_t i = 0; i < mr; ++i) nblock_scale(_mm512_load_si512(ctile[0] + i * 16), d[i * nblk + b], b, bpg, sb, gsum[i], acc[i]);
    if (two) {
      _tile_stored(1, ctile[1], 64);
      for (int64_t i = 0; i < mr; ++i)
        nblock_scale(_mm512_load_si512(ctile[1] + i * 16), d[i * nblk + b + 1], b + 1, bpg, sb, gsum[i], acc[i]);
    }
  }
  for (int64_t i = 0; i < mr; ++i)
    nblock_store(acc[i], sb, z + nb * G * 16, q.gsum.data() + (m0 + i) * G, G, y + (m0 + i) * N + nb * 16);
}

// Rows n0 .. n0 + out.size(0) (whole n-blocks) of an n-block int4 weight, dequantized into out (bf16 or fp32) as
// q4_dequant does: s * q - s * z in fp32, rounded once. Per block, the 4 x 16 int32 (4 codes each) of the low
// nibbles and those of the high ones are transposed in each 128-bit lane: lane L of vector t then holds row
// 4 L + t's 16 codes.
AVX512_VNNI inline void transpose_4x4_dwords(__m512i& a, __m512i& b, __m512i& c, __m512i& d) {
  const __m512i ab0 = _mm512_unpacklo_epi32(a, b), ab1 = _mm512_unpackhi_epi32(a, b);
  const __m512i cd0 = _mm512_unpacklo_epi32(c, d), cd1 = _mm512_unpackhi_epi32(c, d);
  a = _mm512_unpacklo_epi64(ab0, cd0), b = _mm512_unpackhi_epi64(ab0, cd0);
  c = _mm512_unpacklo_epi64(ab1, cd1), d = _mm512_unpackhi_epi64(ab1, cd1);
}

template <typename T>
AVX512_VNNI void q4n_dequant_nblock(const uint8_t* w, const uint16_t* s, const uint8_t* z, int64_t K, int64_t group,
                                    int64_t nb, T* out) {  // out: the n-block's first row
  const int64_t nblk = K / QK, G = K / group, bpg = group / QK;
  const uint8_t* wb = w + nb * nblk * 256;
  const uint16_t* sb = s + nb * G * 16;
  const uint8_t* zb = z + nb * G * 16;
  alignas(64) float sg[16], zs[16];
  for (int64_t b = 0; b < nblk; ++b) {
    if (b % bpg == 0) {
      const int64_t g = b / bpg;
      const __m512 sv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sb + g * 16)));
      const __m512 zv = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(zb + g * 16))));
      _mm512_store_ps(sg, sv);
      _mm512_store_ps(zs, _mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(sv, zv)));  // -s * z, exact
    }
    __m512i v[8];
    nblock_nibbles(wb + b * 256, v, v + 4);
    transpose_4x4_dwords(v[0], v[1], v[2], v[3]);
    transpose_4x4_dwords(v[4], v[5], v[6], v[7]);
    for (int n = 0; n < 16; ++n) {
      const int L = n / 4, t = n % 4;  // row n: lane L of v[t] (columns 0-15) and of v[4 + t] (16-31)
      const __m512 sv = _mm512_set1_ps(sg[n]), zv = _mm512_set1_ps(zs[n]);
      T* o = out + n * K + b * QK;
      for (int h = 0; h < 2; ++h) {
        const __m512i lanes = v[h * 4 + t];
        const __m128i codes = L == 0 ? _mm512_extracti32x4_epi32(lanes, 0) : L == 1 ? _mm512_extracti32x4_epi32(lanes, 1)
                            : L == 2 ? _mm512_extracti32x4_epi32(lanes, 2) : _mm512_extracti32x4_epi32(lanes, 3);
        const __m512 x = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(codes)), sv), zv);
        if constexpr (std::is_same_v<T, float>) {
          _mm512_storeu_ps(o + h * 16, x);
        } else {  // fp32 -> bf16, round to nearest even (no NaN here)
          const __m512i u = _mm512_castps_si512(x);
          const __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF),
                                                                 _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + h * 16), _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
        }
      }
    }
  }
}

bool avx512_vnni_supported() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx512vnni");
  return ok;
}

// AMX tiles need the OS's permission once per process (Linux 5.16+); false where the CPU or the OS has none
bool amx_supported() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    if (!avx512_vnni_supported() || !__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25)))
      return false;  // AMX-TILE, AMX-INT8
    constexpr long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
  }();
  return ok;
}

// From this many rows on, AMX (where there is AMX); below, VPDPBUSD (set_amx_min_rows: tests and benchmarks)
int64_t amx_min_rows = 8;

// ---- clip search (quant/primitives.py: clip_quant_params) ----
// For each row of w (R, n): the scale and zero point, among the ranges of w * p for p in shrinks, with the smallest
// sum_j imp_j (w_j - s (q_j - z))^2, the same arithmetic as the torch version op for op (fp32, scales rounded to fp16,
// round half to even) except the error's sum, taken in 8 fp32 lanes, not in BLAS's order.
void clip_rows(const float* w, const float* imp, int64_t n, int64_t maxq, bool sym, const std::vector<float>& shrinks,
               float* best_s, int32_t* best_z) {
  float amax = 0.f, wmin = INFINITY, wmax = -INFINITY;
  for (int64_t j = 0; j < n; ++j) {
    amax = std::max(amax, std::fabs(w[j]));
    wmin = std::min(wmin, w[j]);
    wmax = std::max(wmax, w[j]);
  }
  float best = INFINITY;
  for (size_t i = 0; i < shrinks.size(); ++i) {
    const float p = shrinks[i];  // max / min of w * p: those of w times p (rounding is monotonic), p > 0
    float scale, zero;
    if (sym) {
      scale = 2.f * (amax * p) / static_cast<float>(maxq);
      zero = static_cast<float>((maxq + 1) / 2);
    } else {
      const float lo = std::min(wmin * p, 0.f), hi = std::max(wmax * p, 0.f);
      scale = (hi - lo) / static_cast<float>(maxq);
      zero = std::min(std::max(std::nearbyint(-lo / std::max(scale, 1e-12f)), 1.f), static_cast<float>(maxq));
    }
    if (!(scale > 0.f)) scale = 1.f;
    scale = static_cast<float>(c10::Half(scale));
    const __m256 vs = _mm256_set1_ps(scale), vz = _mm256_set1_ps(zero), vmax = _mm256_set1_ps(static_cast<float>(maxq));
    __m256 acc = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256 x = _mm256_loadu_ps(w + j);
      __m256 q = _mm256_add_ps(_mm256_round_ps(_mm256_div_ps(x, vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), vz);
      q = _mm256_min_ps(_mm256_max_ps(q, _mm256_setzero_ps()), vmax);
      const __m256 e = _mm256_sub_ps(x, _mm256_mul_ps(vs, _mm256_sub_ps(q, vz)));
      acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(e, e), _mm256_loadu_ps(imp + j)));
    }
    float err = hsum(acc);
    for (; j < n; ++j) {
      const float q = std::min(std::max(std::nearbyint(w[j] / scale) + zero, 0.f), static_cast<float>(maxq));
      const float e = w[j] - scale * (q - zero);
      err += e * e * imp[j];
    }
    if (i == 0 || err < best) {  // ties keep the larger range
      best = err;
      *best_s = scale;
      *best_z = static_cast<int32_t>(zero);
    }
  }
}

}  // namespace

// The kernels' fp32 products y (M, N) + bias (fp32, N; optional), kept in fp32 or rounded to bf16 (to nearest
// even, as torch's .to(torch.bfloat16)): what the layer returns, without two more tensor ops per Linear.
torch::Tensor finish(torch::Tensor y, const c10::optional<torch::Tensor>& bias, bool bf16_out) {
  const int64_t M = y.size(0), N = y.size(1);
  const float* b = nullptr;
  if (bias.has_value()) {
    TORCH_CHECK(bias->scalar_type() == torch::kFloat && bias->numel() == N && bias->is_contiguous(), "bias: fp32 (N)");
    b = bias->data_ptr<float>();
  }
  float* yp = y.data_ptr<float>();
  if (!bf16_out) {
    if (b)
      for (int64_t i = 0; i < M * N; ++i) yp[i] += b[i % N];
    return y;
  }
  auto out = torch::empty({M, N}, y.options().dtype(torch::kBFloat16));
  at::BFloat16* op = out.data_ptr<at::BFloat16>();
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) op[m * N + n] = at::BFloat16(yp[m * N + n] + (b ? b[n] : 0.f));
  return out;
}

// clip_rows for every row of w (R, n) fp32 with column weights imp (n): (scales fp32 (R), zero points int32 (R))
std::vector<torch::Tensor> clip_search(torch::Tensor w, torch::Tensor imp, int64_t bits, bool sym,
                                       std::vector<double> shrinks) {
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == torch::kFloat && w.device().is_cpu(), "clip_search: w (R, n) fp32 CPU");
  TORCH_CHECK(imp.dim() == 1 && imp.numel() == w.size(1) && imp.scalar_type() == torch::kFloat && imp.device().is_cpu(),
              "clip_search: imp (n) fp32 CPU");
  TORCH_CHECK(bits >= 2 && bits <= 8 && !shrinks.empty(), "clip_search: 2 <= bits <= 8, a shrink or more");
  for (double p : shrinks) TORCH_CHECK(p > 0, "clip_search: shrinks > 0");
  w = w.contiguous();
  imp = imp.contiguous();
  const int64_t R = w.size(0), n = w.size(1);
  auto scale = torch::empty({R}, w.options());
  auto zero = torch::empty({R}, w.options().dtype(torch::kInt));
  const std::vector<float> p(shrinks.begin(), shrinks.end());
  const float* wp = w.data_ptr<float>();
  const float* ip = imp.data_ptr<float>();
  float* sp = scale.data_ptr<float>();
  int32_t* zp = zero.data_ptr<int32_t>();
  at::parallel_for(0, R, 64, [&](int64_t a, int64_t b) {
    for (int64_t r = a; r < b; ++r) clip_rows(wp + r * n, ip, n, (int64_t(1) << bits) - 1, sym, p, sp + r, zp + r);
  });
  return {scale, zero};
}

torch::Tensor q4_mm(torch::Tensor x, torch::Tensor w, torch::Tensor s, torch::Tensor z, int64_t group,
                    c10::optional<torch::Tensor> bias, bool bf16_out) {
  const int64_t N = w.size(0), K = w.size(1) * 2, M = x.size(0);
  check(x, w, K);
  TORCH_CHECK(s.scalar_type() == torch::kHalf && z.scalar_type() == torch::kByte && s.is_contiguous() && z.is_contiguous(),
              "q4: fp16 scales and uint8 zero points");
  TORCH_CHECK(w.scalar_type() == torch::kByte && K % 64 == 0 && (group == QK || group % 64 == 0) && K % group == 0,
              "q4: K a multiple of 64, group 32 or a multiple of 64");
  TORCH_CHECK(s.size(0) == N && s.size(1) == K / group && z.sizes() == s.sizes(), "q4: scales (N, K / group)");
  const QuantizedRows q = quantize(x, group, true);
  auto y = torch::empty({M, N}, x.options().dtype(torch::kFloat));
  const uint8_t* wp = w.data_ptr<uint8_t>();
  const uint16_t* sp = reinterpret_cast<const uint16_t*>(s.data_ptr<at::Half>());
  const uint8_t* zp = z.data_ptr<uint8_t>();
  float* yp = y.data_ptr<float>();
  for_tiles(M, N, K, [&](auto mt, int64_t m, int64_t a, int64_t b) {
    q4_rows<decltype(mt)::value>(wp, sp, zp, q, m, a, b, K, N, group, yp);
  });
  return finish(y, bias, bf16_out);
}

// int4 weights in the n-block layout (Avx512Int4): AMX from amx_min_rows rows on where this CPU has it, VPDPBUSD below
torch::Tensor q4n_mm(torch::Tensor x, torch::Tensor w, torch::Tensor s, torch::Tensor z, int64_t group,
                     c10::optional<torch::Tensor> bias, bool bf16_out) {
  const int64_t N = w.size(0), K = w.size(1) * 2, M = x.size(0);
  check(x, w, K);
  TORCH_CHECK(avx512_vnni_supported(), "q4n_mm: this CPU has no AVX-512 VNNI");
  TORCH_CHECK(s.scalar_type() == torch::kHalf && z.scalar_type() == torch::kByte && s.is_contiguous() && z.is_contiguous(),
              "q4n: fp16 scales and uint8 zero points");
  TORCH_CHECK(w.scalar_type() == torch::kByte && N % 16 == 0 && group % QK == 0 && K % group == 0,
              "q4n: rows a multiple of 16, groups a multiple of 32");
  TORCH_CHECK(s.numel() == N * (K / group) && z.numel() == s.numel(), "q4n: scales (N / 16, K / group, 16)");
  const QuantizedRows q = quantize(x, group, false);
  auto y = torch::empty({M, N}, x.options().dtype(torch::kFloat));
  const uint8_t* wp = w.data_ptr<uint8_t>();
  const uint16_t* sp = reinterpret_cast<const uint16_t*>(s.data_ptr<at::Half>());
  const uint8_t* zp = z.data_ptr<uint8_t>();
  float* yp = y.data_ptr<float>();
  const bool amx = amx_min_rows > 0 && M >= amx_min_rows && amx_supported();
  at::parallel_for(0, N / 16, 1, [&](int64_t nb0, int64_t nb1) {  // each n-block's weights read once, for every row
    int64_t configured = 0;
    for (int64_t nb = nb0; nb < nb1; ++nb) {
      if (amx) {
        for (int64_t m0 = 0; m0 < M; m0 += 16) {
          const int64_t mr = std::min<int64_t>(16, M - m0);
          if (mr != configured) amx_configure(static_cast<int>(configured = mr));
          amx_q4_nblock(wp, sp, zp, q, m0, mr, nb, K, N, group, yp);
        }
        continue;
      }
      int64_t m = 0;
      for (; m + 4 <= M; m += 4) vnni_q4_nblock<4>(wp, sp, zp, q, m, nb, K, N, group, yp);
      switch (M - m) {
        case 3: vnni_q4_nblock<3>(wp, sp, zp, q, m, nb, K, N, group, yp); break;
        case 2: vnni_q4_nblock<2>(wp, sp, zp, q, m, nb, K, N, group, yp); break;
        case 1: vnni_q4_nblock<1>(wp, sp, zp, q, m, nb, K, N, group, yp); break;
      }
    }
    if (configured) amx_release();
  });
  return finish(y, bias, bf16_out);
}

torch::Tensor q8_mm(torch::Tensor x, torch::Tensor w, torch::Tensor s, c10::optional<torch::Tensor> bias, bool bf16_out) {
  const int64_t N = w.size(0), K = w.size(1), M = x.size(0);
  check(x, w, K);
  TORCH_CHECK(w.scalar_type() == torch::kChar && s.numel() == N && s.scalar_type() == torch::kFloat && s.is_contiguous(),
              "q8: int8 weight (N, K), fp32 scales (N)");
  const QuantizedRows q = quantize(x, K, false);
  auto y = torch::empty({M, N}, x.options().dtype(torch::kFloat));
  const int8_t* wp = w.data_ptr<int8_t>();
  const float* sp = s.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  for_tiles(M, N, K, [&](auto mt, int64_t m, int64_t a, int64_t b) {
    q8_rows<decltype(mt)::value>(wp, sp, q, m, a, b, K, N, yp);
  });
  return finish(y, bias, bf16_out);
}

torch::Tensor bf16_mm(torch::Tensor x, torch::Tensor w) {
  const int64_t N = w.size(0), K = w.size(1), M = x.size(0);
  TORCH_CHECK(x.dim() == 2 && x.size(1) == K && K % 16 == 0 && x.device().is_cpu(), "bf16_mm: x (M, K), K % 16 == 0");
  TORCH_CHECK(w.scalar_type() == torch::kBFloat16 && w.is_contiguous(), "bf16_mm: a contiguous bf16 weight (N, K)");
  const auto xf = x.to(torch::kFloat).contiguous();
  auto y = torch::empty({M, N}, x.options().dtype(torch::kFloat));
  const uint16_t* wp = reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>());
  const float* xp = xf.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  for_tiles(M, N, K * 4, [&](auto mt, int64_t m, int64_t a, int64_t b) {
    bf16_rows<decltype(mt)::value>(wp, xp, m, a, b, K, N, yp);
  });
  return y;
}

// Rows n0 .. n0 + out.size(0) of the int4 weight, dequantized into out (bf16 or fp32): s * (q - z) in fp32, rounded
// once (bf16: to nearest even). For long prompts, which then take one GEMM: 2.6-6 ms for 8192 x 2048 into bf16,
// where the torch ops it replaces took 21-30 ms (2 threads, Intel AVX-512 host).
template <typename T>
void q4_dequant_rows(const uint8_t* w, const uint16_t* s, const uint8_t* z, int64_t K, int64_t group, int64_t n0,
                     int64_t n1, T* out) {  // out: row n0
  const int64_t G = K / group, bpg = group / QK;  // blocks of 32 columns per group
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* wr = w + n * (K / 2);
    T* o = out + (n - n0) * K;
    for (int64_t g = 0; g < G; ++g) {
      // s * q - s * z: q * s is exact in fp32 (q < 16, s an fp16), so this is s * (q - z) rounded once
      const __m256 sg = _mm256_set1_ps(_cvtsh_ss(s[n * G + g]));
      const __m256 zs = _mm256_set1_ps(-_cvtsh_ss(s[n * G + g]) * static_cast<float>(z[n * G + g]));
      for (int64_t b = g * bpg; b < (g + 1) * bpg; ++b) {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wr + b * 16));
        const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0F)), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F));
        const __m128i q[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};  // columns 0-7, 8-15, 16-23, 24-31
        for (int i = 0; i < 4; ++i) {
          const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q[i])), sg), zs);
          if constexpr (std::is_same_v<T, float>) {
            _mm256_storeu_ps(o + b * QK + i * 8, v);
          } else {  // fp32 -> bf16, round to nearest even (no NaN here)
            const __m256i u = _mm256_castps_si256(v);
            const __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF),
                                                                   _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1))));
            const __m256i h = _mm256_srli_epi32(r, 16);  // 8 x 16 bits in the low halves of 32-bit lanes
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + b * QK + i * 8),
                             _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
          }
        }
      }
    }
  }
}

void q4_dequant(torch::Tensor w, torch::Tensor s, torch::Tensor z, int64_t group, int64_t n0, torch::Tensor out) {
  const int64_t K = w.size(1) * 2, n = out.size(0);
  TORCH_CHECK(w.scalar_type() == torch::kByte && w.is_contiguous() && s.scalar_type() == torch::kHalf && s.is_contiguous() &&
              z.scalar_type() == torch::kByte && z.is_contiguous() && K % group == 0 && group % QK == 0,
              "q4_dequant: the q4 layout, fp16 scales, uint8 zero points");
  TORCH_CHECK(s.size(0) == w.size(0) && s.size(1) == K / group && z.sizes() == s.sizes(), "q4_dequant: scales (N, K / group)");
  TORCH_CHECK(out.dim() == 2 && out.size(1) == K && out.is_contiguous() && n0 >= 0 && n0 + n <= w.size(0) &&
              (out.scalar_type() == torch::kFloat || out.scalar_type() == torch::kBFloat16),
              "q4_dequant: out (rows, K) fp32 or bf16 within the weight");
  const uint8_t* wp = w.data_ptr<uint8_t>();
  const uint16_t* sp = reinterpret_cast<const uint16_t*>(s.data_ptr<at::Half>());
  const uint8_t* zp = z.data_ptr<uint8_t>();
  at::parallel_for(n0, n0 + n, ROWS_PER_TASK, [&](int64_t a, int64_t b) {
    if (out.scalar_type() == torch::kFloat)
      q4_dequant_rows(wp, sp, zp, K, group, a, b, out.data_ptr<float>() + (a - n0) * K);
    else
      q4_dequant_rows(wp, sp, zp, K, group, a, b, out.data_ptr<at::BFloat16>() + (a - n0) * K);
  });
}

void q4n_dequant(torch::Tensor w, torch::Tensor s, torch::Tensor z, int64_t group, int64_t n0, torch::Tensor out) {
  const int64_t K = w.size(1) * 2, n = out.size(0);
  TORCH_CHECK(avx512_vnni_supported(), "q4n_dequant: this CPU has no AVX-512 VNNI");
  TORCH_CHECK(w.scalar_type() == torch::kByte && w.is_contiguous() && s.scalar_type() == torch::kHalf && s.is_contiguous() &&
              z.scalar_type() == torch::kByte && z.is_contiguous() && K % group == 0 && group % QK == 0 &&
              s.numel() == w.size(0) * (K / group) && z.numel() == s.numel(),
              "q4n_dequant: the n-block layout, fp16 scales, uint8 zero points");
  TORCH_CHECK(out.dim() == 2 && out.size(1) == K && out.is_contiguous() && n0 % 16 == 0 && n % 16 == 0 && n0 + n <= w.size(0) &&
              (out.scalar_type() == torch::kFloat || out.scalar_type() == torch::kBFloat16),
              "q4n_dequant: out (rows, K) fp32 or bf16, whole n-blocks of the weight");
  const uint8_t* wp = w.data_ptr<uint8_t>();
  const uint16_t* sp = reinterpret_cast<const uint16_t*>(s.data_ptr<at::Half>());
  const uint8_t* zp = z.data_ptr<uint8_t>();
  at::parallel_for(n0 / 16, (n0 + n) / 16, 1, [&](int64_t a, int64_t b) {
    for (int64_t nb = a; nb < b; ++nb) {
      if (out.scalar_type() == torch::kFloat)
        q4n_dequant_nblock(wp, sp, zp, K, group, nb, out.data_ptr<float>() + (nb * 16 - n0) * K);
      else
        q4n_dequant_nblock(wp, sp, zp, K, group, nb, out.data_ptr<at::BFloat16>() + (nb * 16 - n0) * K);
    }
  });
}

// ---- GPTQ's column loop (quant/gptq.py gptq_quantize_weight) ----
// Steps a .. b of a block w (B, n) fp32, whose rows are W's columns in the order GPTQ quantizes them (n: W's output
// rows), with one group's scale and zero point (n): each step's codes into q (B, n), its error divided by U's
// diagonal into e (B, n), and that error spread over the block's later steps through u (B, B), the upper Cholesky
// factor of H^-1. The torch loop's operations per element in its order (round half to even; the update fused, as
// torch's addr_ does it: the same codes bit for bit);
// every output row is independent, so each thread takes slices of 256 of them through all the steps.
void gptq_columns(torch::Tensor w, torch::Tensor u, torch::Tensor scale, torch::Tensor zero, int64_t maxq, int64_t a,
                  int64_t b, torch::Tensor q, torch::Tensor e) {
  const int64_t B = w.size(0), n = w.size(1);
  TORCH_CHECK(w.dim() == 2 && w.scalar_type() == torch::kFloat && w.is_contiguous() && e.sizes() == w.sizes() &&
              e.scalar_type() == torch::kFloat && e.is_contiguous() && q.sizes() == w.sizes() &&
              q.scalar_type() == torch::kByte && q.is_contiguous(), "gptq_columns: w, e (B, n) fp32, q (B, n) uint8");
  TORCH_CHECK(u.dim() == 2 && u.size(0) == B && u.size(1) == B && u.scalar_type() == torch::kFloat && u.is_contiguous(),
              "gptq_columns: u (B, B) fp32 contiguous");
  TORCH_CHECK(scale.numel() == n && scale.scalar_type() == torch::kFloat && scale.is_contiguous() && zero.numel() == n &&
              zero.scalar_type() == torch::kInt && zero.is_contiguous() && 0 <= a && a <= b && b <= B && maxq < 256,
              "gptq_columns: scale fp32 (n), zero int32 (n), 0 <= a <= b <= B");
  float* wp = w.data_ptr<float>();
  float* ep = e.data_ptr<float>();
  uint8_t* qp = q.data_ptr<uint8_t>();
  const float* up = u.data_ptr<float>();
  const float* sp = scale.data_ptr<float>();
  const int32_t* zp = zero.data_ptr<int32_t>();
  const float fmax = static_cast<float>(maxq);
  at::parallel_for(0, n, 256, [&](int64_t j0, int64_t j1) {
    std::vector<float> zf(j1 - j0);
    for (int64_t j = j0; j < j1; ++j) zf[j - j0] = static_cast<float>(zp[j]);
    for (int64_t c0 = j0; c0 < j1; c0 += 256) {
      const int64_t c1 = std::min(c0 + 256, j1);
      for (int64_t i = a; i < b; ++i) {
        const float d = up[i * B + i];
        const float* wi = wp + i * n;
        float* ei = ep + i * n;
        const __m256 vd = _mm256_set1_ps(d), vmax = _mm256_set1_ps(fmax);
        int64_t j = c0;
        for (; j + 8 <= c1; j += 8) {
          const __m256 x = _mm256_loadu_ps(wi + j), s = _mm256_loadu_ps(sp + j), z = _mm256_loadu_ps(zf.data() + j - j0);
          __m256 c = _mm256_add_ps(_mm256_round_ps(_mm256_div_ps(x, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), z);
          c = _mm256_min_ps(_mm256_max_ps(c, _mm256_setzero_ps()), vmax);
          const __m128i c32 = _mm_packs_epi32(_mm256_castsi256_si128(_mm256_cvtps_epi32(c)), _mm256_extracti128_si256(_mm256_cvtps_epi32(c), 1));
          _mm_storel_epi64(reinterpret_cast<__m128i*>(qp + i * n + j), _mm_packus_epi16(c32, c32));
          _mm256_storeu_ps(ei + j, _mm256_div_ps(_mm256_sub_ps(x, _mm256_mul_ps(s, _mm256_sub_ps(c, z))), vd));
        }
        for (; j < c1; ++j) {
          const float z = zf[j - j0];
          const float c = std::min(std::max(std::nearbyint(wi[j] / sp[j]) + z, 0.f), fmax);
          qp[i * n + j] = static_cast<uint8_t>(c);
          ei[j] = (wi[j] - sp[j] * (c - z)) / d;
        }
        for (int64_t k = i + 1; k < B; ++k) {  // w_k - u_ik e, fused as torch's addr_ does it
          const __m256 uk = _mm256_set1_ps(up[i * B + k]);
          float* wk = wp + k * n;
          int64_t j = c0;
          for (; j + 8 <= c1; j += 8) _mm256_storeu_ps(wk + j, _mm256_fnmadd_ps(uk, _mm256_loadu_ps(ei + j), _mm256_loadu_ps(wk + j)));
          for (; j < c1; ++j) wk[j] = std::fma(-up[i * B + k], ei[j], wk[j]);
        }
      }
    }
  });
}

// ---- GPTQ's Hessian on AMX: S += X^T X for bf16 X, fp32 sums ----
// The products of bf16 values are exact in fp32, so this is the fp32 GEMM's arithmetic on the same numbers but for the
// order of the sums. X (R, n) is first copied into tiles (zero rows pad R to a multiple of 32): for column tile t (16
// columns) and step k of 32 rows, b[t][k] is TDPBF16PS's B, 16 rows of 16 column pairs (row p holds X's rows 32 k + 2 p
// and + 1 side by side), and a[t][k] its A, the same 16 x 16 pairs transposed; 1 KB each, so every tile load streams.
// S is kept as its 32 x 32 blocks on and above the diagonal, (I, J) at index I * B - I (I - 1) / 2 + J - I, each as
// four 16 x 16 fp32 C tiles (rows 0-15 / 16-31 by columns 0-15 / 16-31), also 1 KB each; gram_unpack writes it out.
#define AMX_BF16 __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

bool amx_bf16_supported() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    return amx_supported() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 22));  // AMX-BF16
  }();
  return ok;
}

inline int64_t gram_block(int64_t I, int64_t J, int64_t blocks) { return I * blocks - I * (I - 1) / 2 + J - I; }

AMX_BF16 void gram_configure() {
  alignas(64) TileConfig c{};
  c.palette = 1;
  for (int t = 0; t < 8; ++t) c.rows[t] = 16, c.colsb[t] = 64;  // C 0-3: 16 x 16 fp32; A 4-5, B 6-7: 16 x 32 bf16
  asm volatile("" : : "r"(&c) : "memory");  // see amx_configure
  _tile_loadconfig(&c);
}

// Column tile t of x (R, n), steps k0 .. k1, into its B and A tiles; A's is B's 16 x 16 dwords transposed in
// registers: pairs of 32-bit then 64-bit elements within 128-bit lanes (4 x 4 blocks), then the lanes themselves
AMX_BF16 void gram_pack(const uint16_t* x, int64_t R, int64_t n, int64_t t, int64_t k0, int64_t k1, uint32_t* b, uint32_t* a) {
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t k = k0; k < k1; ++k) {
    uint32_t* bt = b + k * 256;
    uint32_t* at_ = a + k * 256;
    __m512i r[16], c[16];
    for (int64_t p = 0; p < 16; ++p) {
      const int64_t row = k * 32 + 2 * p;
      const __m256i lo = row < R ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + row * n + t * 16)) : zero;
      const __m256i hi = row + 1 < R ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + (row + 1) * n + t * 16)) : zero;
      r[p] = _mm512_or_si512(_mm512_cvtepu16_epi32(lo), _mm512_slli_epi32(_mm512_cvtepu16_epi32(hi), 16));
      _mm512_store_si512(bt + p * 16, r[p]);
    }
    for (int g = 0; g < 4; ++g) {  // rows 4g .. 4g + 3: c[4 g + j] lane l holds their column 4 l + j
      const __m512i a0 = _mm512_unpacklo_epi32(r[4 * g], r[4 * g + 1]), a1 = _mm512_unpackhi_epi32(r[4 * g], r[4 * g + 1]);
      const __m512i a2 = _mm512_unpacklo_epi32(r[4 * g + 2], r[4 * g + 3]), a3 = _mm512_unpackhi_epi32(r[4 * g + 2], r[4 * g + 3]);
      c[4 * g] = _mm512_unpacklo_epi64(a0, a2);
      c[4 * g + 1] = _mm512_unpackhi_epi64(a0, a2);
      c[4 * g + 2] = _mm512_unpacklo_epi64(a1, a3);
      c[4 * g + 3] = _mm512_unpackhi_epi64(a1, a3);
    }
    for (int j = 0; j < 4; ++j) {  // column 4 l + j: lane g of c[4 g + j] for g = 0 .. 3
      const __m512i d0 = _mm512_shuffle_i32x4(c[j], c[4 + j], 0x44);
      const __m512i d1 = _mm512_shuffle_i32x4(c[j], c[4 + j], 0xEE);
      const __m512i d2 = _mm512_shuffle_i32x4(c[8 + j], c[12 + j], 0x44);
      const __m512i d3 = _mm512_shuffle_i32x4(c[8 + j], c[12 + j], 0xEE);
      _mm512_store_si512(at_ + j * 16, _mm512_shuffle_i32x4(d0, d2, 0x88));
      _mm512_store_si512(at_ + (4 + j) * 16, _mm512_shuffle_i32x4(d0, d2, 0xDD));
      _mm512_store_si512(at_ + (8 + j) * 16, _mm512_shuffle_i32x4(d1, d3, 0x88));
      _mm512_store_si512(at_ + (12 + j) * 16, _mm512_shuffle_i32x4(d1, d3, 0xDD));
    }
  }
}

// Blocks (I, J), I in [i0, i1), J in [j0, j1), J >= I, over every step: the C tiles of this panel of blocks stay in
// L2 (1 MB for 16 x 16), and for each chunk of KC steps, J's B tiles (32 KB) in L1 while A's stream from L2. Each
// block sums its steps in order, as any split of the steps does: the same S bit for bit.
AMX_BF16 void amx_gram_panel(float* S, const uint16_t* a, const uint16_t* b, int64_t blocks, int64_t steps, int64_t i0,
                             int64_t i1, int64_t j0, int64_t j1) {
  constexpr int64_t KC = 16;
  for (int64_t k0 = 0; k0 < steps; k0 += KC) {
    const int64_t k1 = std::min(k0 + KC, steps);
    for (int64_t J = j0; J < j1; ++J) {
      const uint16_t *b0 = b + 2 * J * steps * 512, *b1 = b0 + steps * 512;
      for (int64_t I = i0; I < std::min(i1, J + 1); ++I) {
        float* c = S + gram_block(I, J, blocks) * 1024;
        _tile_loadd(0, c, 64);
        _tile_loadd(1, c + 256, 64);
        _tile_loadd(2, c + 512, 64);
        _tile_loadd(3, c + 768, 64);
        const uint16_t *a0 = a + 2 * I * steps * 512, *a1 = a0 + steps * 512;
        for (int64_t k = k0; k < k1; ++k) {
          _tile_loadd(4, a0 + k * 512, 64);
          _tile_loadd(5, a1 + k * 512, 64);
          _tile_loadd(6, b0 + k * 512, 64);
          _tile_loadd(7, b1 + k * 512, 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, c, 64);
        _tile_stored(1, c + 256, 64);
        _tile_stored(2, c + 512, 64);
        _tile_stored(3, c + 768, 64);
      }
    }
  }
}

// Panels of 16 x 16 blocks on and above the diagonal, handed out one at a time (those on the diagonal are half the
// work). Against panels of 512 columns of A over 2048 rows for all J at once, which streamed from L3: 0.60-0.96x the
// time for 4096 x 8192 and 0.69-1.0x for 4096 x 2048 (interleaved with the old kernel, several runs, 2 threads, AMX).
AMX_BF16 void amx_gram(float* S, const uint16_t* a, const uint16_t* b, int64_t blocks, int64_t steps) {
  constexpr int64_t P = 16;
  const int64_t panels = (blocks + P - 1) / P;
  std::vector<std::pair<int64_t, int64_t>> items;
  for (int64_t jp = 0; jp < panels; ++jp)
    for (int64_t ip = 0; ip <= jp; ++ip) items.emplace_back(ip, jp);
  const int64_t count = static_cast<int64_t>(items.size());
#pragma omp parallel num_threads(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), count)))
  {
    gram_configure();
#pragma omp for schedule(dynamic, 1)
    for (int64_t q = 0; q < count; ++q) {
      const int64_t ip = items[q].first, jp = items[q].second;
      amx_gram_panel(S, a, b, blocks, steps, ip * P, std::min(ip * P + P, blocks), jp * P,
                     std::min(jp * P + P, blocks));
    }
    _tile_release();
  }
}

// S (blocks of the upper triangle, fp32) += x^T x for x (R, n) bf16, through `work` (bf16, at least 2 R' n elements
// for R rounded up to 32): kept by the caller from batch to batch, where a fresh 128 MB for 4096 x 8192 cost its
// page faults every time (80 against 50 ms to pack)
void gram_bf16(torch::Tensor S, torch::Tensor x, torch::Tensor work) {
  TORCH_CHECK(amx_bf16_supported(), "gram_bf16: this CPU has no AMX-BF16");
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kBFloat16 && x.device().is_cpu() && x.size(1) % 32 == 0,
              "gram_bf16: x (R, n) bf16 CPU, n a multiple of 32");
  const int64_t R = x.size(0), n = x.size(1), steps = (R + 31) / 32, T = n / 16, blocks = n / 32;
  TORCH_CHECK(S.scalar_type() == torch::kFloat && S.is_contiguous() && S.numel() == blocks * (blocks + 1) / 2 * 1024,
              "gram_bf16: S fp32, the (n / 32) (n / 32 + 1) / 2 blocks of 32 x 32");
  TORCH_CHECK(work.scalar_type() == torch::kBFloat16 && work.device().is_cpu() && work.is_contiguous() &&
                  work.numel() >= 2 * T * steps * 512 && reinterpret_cast<uintptr_t>(work.data_ptr()) % 64 == 0,
              "gram_bf16: work bf16 on the CPU, 64-byte aligned, at least 2 x 32 ceil(R / 32) x n elements");
  x = x.contiguous();
  uint16_t* bp = reinterpret_cast<uint16_t*>(work.data_ptr<at::BFloat16>());
  uint16_t* ap = bp + T * steps * 512;
  const uint16_t* xp = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
  at::parallel_for(0, T, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      gram_pack(xp, R, n, t, 0, steps, reinterpret_cast<uint32_t*>(bp + t * steps * 512),
                reinterpret_cast<uint32_t*>(ap + t * steps * 512));
  });
  amx_gram(S.data_ptr<float>(), ap, bp, blocks, steps);
}

// H (n, n) = scale * S, both triangles, from gram_bf16's blocks
void gram_unpack(torch::Tensor S, torch::Tensor H, double scale) {
  const int64_t n = H.size(0), blocks = n / 32;
  TORCH_CHECK(H.dim() == 2 && H.size(1) == n && n % 32 == 0 && H.scalar_type() == torch::kFloat && H.is_contiguous(),
              "gram_unpack: H (n, n) fp32 contiguous, n a multiple of 32");
  TORCH_CHECK(S.scalar_type() == torch::kFloat && S.is_contiguous() && S.numel() == blocks * (blocks + 1) / 2 * 1024,
              "gram_unpack: S the blocks of an (n, n) gram_bf16");
  const float* sp = S.data_ptr<float>();
  float* hp = H.data_ptr<float>();
  const float f = static_cast<float>(scale);
  at::parallel_for(0, blocks, 1, [&](int64_t I0, int64_t I1) {
    for (int64_t I = I0; I < I1; ++I)
      for (int64_t J = I; J < blocks; ++J) {
        const float* c = sp + gram_block(I, J, blocks) * 1024;
        for (int64_t r = 0; r < 32; ++r)
          for (int64_t q = 0; q < 32; ++q) {
            const float v = c[(r / 16 * 2 + q / 16) * 256 + r % 16 * 16 + q % 16] * f;
            hp[(I * 32 + r) * n + J * 32 + q] = v;
            hp[(J * 32 + q) * n + I * 32 + r] = v;
          }
      }
  });
}

// ---- tanh-approximated GELU, in place on bf16 ----
// 0.5 x (1 + tanh(u)) = x sigmoid(2u) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3): no cancellation where
// tanh(u) is near -1. exp in fp32 as Cephes' expf (2^k from k = round(t log2 e), a degree-6 polynomial in the rest,
// within 2 ulp), the result rounded once to bf16 (to nearest even). torch's bf16 gelu runs at about a third of this
// speed on 2 cores: its tanh is a longer polynomial, and the output is a new tensor.
static inline __m256 exp_ps(__m256 t) {
  const __m256 big = _mm256_cmp_ps(t, _mm256_set1_ps(88.3f), _CMP_GT_OQ);  // exp overflows: inf (then x / inf = 0)
  t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), t);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_blendv_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), _mm256_set1_ps(INFINITY), big);
}

void gelu_tanh_(torch::Tensor x) {
  TORCH_CHECK(x.scalar_type() == torch::kBFloat16 && x.is_contiguous() && x.device().is_cpu(),
              "gelu_tanh_: a contiguous bf16 CPU tensor");
  uint16_t* p = reinterpret_cast<uint16_t*>(x.data_ptr<at::BFloat16>());
  const int64_t n = x.numel(), vec = n / 8;
  at::parallel_for(0, vec, 4096, [&](int64_t a, int64_t b) {
    const __m256 c = _mm256_set1_ps(-2.f * 0.7978845608028654f), c3 = _mm256_set1_ps(0.044715f), one = _mm256_set1_ps(1.f);
    for (int64_t i = a; i < b; ++i) {
      __m128i* q = reinterpret_cast<__m128i*>(p + i * 8);
      const __m256 v = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(q)), 16));
      const __m256 inner = _mm256_mul_ps(v, _mm256_fmadd_ps(_mm256_mul_ps(c3, v), v, one));  // x + 0.044715 x^3
      const __m256 y = _mm256_div_ps(v, _mm256_add_ps(one, exp_ps(_mm256_mul_ps(c, inner))));
      const __m256i u = _mm256_castps_si256(y);
      const __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF),
                                                             _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1))));
      const __m256i h = _mm256_srli_epi32(r, 16);
      _mm_storeu_si128(q, _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
    }
  });
  for (int64_t i = vec * 8; i < n; ++i) {  // the tail, in scalar fp32
    const float v = static_cast<float>(reinterpret_cast<at::BFloat16*>(p)[i]);
    const float inner = v * (1.f + 0.044715f * v * v);
    reinterpret_cast<at::BFloat16*>(p)[i] = at::BFloat16(v / (1.f + std::exp(-2.f * 0.7978845608028654f * inner)));
  }
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("q4_mm", &q4_mm, "int4 weights (block-32 layout) x int8-quantized activations (+ bias; fp32 or bf16 out)",
        py::arg("x"), py::arg("w"), py::arg("s"), py::arg("z"), py::arg("group"), py::arg("bias") = py::none(),
        py::arg("bf16_out") = false);
  m.def("q4n_mm", &q4n_mm, "int4 weights in the n-block layout x int8-quantized activations (+ bias; fp32 or bf16 out)",
        py::arg("x"), py::arg("w"), py::arg("s"), py::arg("z"), py::arg("group"), py::arg("bias") = py::none(),
        py::arg("bf16_out") = false);
  m.def("q4n_dequant", &q4n_dequant, "n-blocks n0 / 16 .. of an n-block int4 weight into out (fp32 or bf16)");
  m.def("avx512_vnni", &avx512_vnni_supported, "whether this CPU runs AVX-512 VNNI (q4n_mm)");
  m.def("amx", &amx_supported, "whether this CPU and OS run AMX tiles (q4n_mm from amx_min_rows rows on)");
  m.def("amx_min_rows", [] { return amx_min_rows; }, "q4n_mm uses AMX from this many rows on (0: never)");
  m.def("set_amx_min_rows", [](int64_t rows) { const int64_t was = amx_min_rows; amx_min_rows = rows; return was; },
        "set amx_min_rows; returns the old value");
  m.def("q8_mm", &q8_mm, "int8 per-channel weights x int8-quantized activations (+ bias; fp32 or bf16 out)",
        py::arg("x"), py::arg("w"), py::arg("s"), py::arg("bias") = py::none(), py::arg("bf16_out") = false);
  m.def("bf16_mm", &bf16_mm, "bf16 weights x fp32 activations, for a few rows");
  m.def("gptq_columns", &gptq_columns, "GPTQ's column loop over steps a .. b of a block, one group's scale and zero");
  m.def("gram_bf16", &gram_bf16, "S += x^T x for bf16 x (R, n) on AMX (S: the 32 x 32 blocks on and above the diagonal)");
  m.def("gram_unpack", &gram_unpack, "H (n, n) = scale * S for gram_bf16's S");
  m.def("amx_bf16", &amx_bf16_supported, "whether this CPU and OS run AMX-BF16 tiles (gram_bf16)");
  m.def("clip_search", &clip_search, "per row, the clipped range with the smallest weighted quantization error");
  m.def("gelu_tanh_", &gelu_tanh_, "tanh-approximated GELU of a bf16 tensor, in place");
  m.def("q4_dequant", &q4_dequant, "rows n0 .. n0 + len(out) of an int4 weight into out (fp32 or bf16)");
}
