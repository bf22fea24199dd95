// Weight-only int4 / int8 matrix products for x86 CPUs with AVX2 (llama.cpp's scheme): the activations
// are quantized to int8 in blocks of 32 columns, and each block's dot product with the weight codes is an
// integer one (_mm256_maddubs_epi16), scaled once per block. Built by quant/ext.py on first use.
//
// Layouts (made by quant/backends.py from the GPTQ tensors):
//   q4 uint8 (N, K/2): for each output row, K/32 blocks of 16 bytes; byte j of a block holds the codes of
//      columns j (low nibble) and j + 16 (high nibble) of that block.
//   q8 int8 (N, K): code - 128 (symmetric per-channel int8).
//   s, sz fp32 (N, G): the group's scale and scale * zero; a weight is s * q - sz (G = 1 for int8).
// x (M, K) fp32 or bf16 -> y (M, N) fp32. Rows of x are processed 4 at a time against each weight block,
// so a few rows (speculative verification, short prompts) cost little more than one.

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

constexpr int QK = 32;  // activation block

struct QuantizedRows {
  std::vector<int8_t> a;   // (M, K)
  std::vector<float> d;    // (M, K / 32) block scales
  std::vector<float> gsum; // (M, G) sum over each weight group of the dequantized activations
};

template <typename T>
QuantizedRows quantize_rows(const T* x, int64_t M, int64_t K, int64_t group) {
  const int64_t nb = K / QK, G = K / group;
  QuantizedRows r{std::vector<int8_t>(M * K), std::vector<float>(M * nb), std::vector<float>(M * G, 0.f)};
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t b = 0; b < nb; ++b) {
      const T* xb = x + m * K + b * QK;
      float amax = 0.f;
      for (int i = 0; i < QK; ++i) amax = std::max(amax, std::fabs(static_cast<float>(xb[i])));
      const float d = amax / 127.f, id = d > 0.f ? 1.f / d : 0.f;
      int sum = 0;
      int8_t* ab = r.a.data() + m * K + b * QK;
      for (int i = 0; i < QK; ++i) {
        const int v = static_cast<int>(std::nearbyint(static_cast<float>(xb[i]) * id));
        ab[i] = static_cast<int8_t>(v);
        sum += v;
      }
      r.d[m * nb + b] = d;
      r.gsum[m * G + b * QK / group] += d * sum;
    }
  }
  return r;
}

QuantizedRows quantize(const torch::Tensor& x, int64_t group) {
  const int64_t M = x.size(0), K = x.size(1);
  if (x.scalar_type() == torch::kBFloat16)
    return quantize_rows(x.data_ptr<at::BFloat16>(), M, K, group);
  return quantize_rows(x.data_ptr<float>(), M, K, group);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 32 unsigned codes of one block x 32 int8 activations -> 8 int32 partial sums, as floats
inline __m256 dot_block(__m256i w, __m256i a) {
  const __m256i p = _mm256_maddubs_epi16(w, a);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

// int8 weights: |w| against the activations carrying w's sign (maddubs needs one unsigned operand)
inline __m256 dot_block_signed(__m256i w, const int8_t* a) {
  const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(av, w));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

// MT activation rows against one output row; per block, the scale d * s goes into one of 4 accumulators
// per activation row in turn, so that consecutive FMAs do not wait on each other
template <int MT>
void q4_row(const uint8_t* wr, const float* s, const float* sz, const QuantizedRows& q, int64_t m0, int64_t n,
            int64_t K, int64_t N, int64_t group, float* y) {
  const int64_t nb = K / QK, G = K / group, bpg = group / QK;
  const __m256i low = _mm256_set1_epi8(0x0F);
  const int8_t* a = q.a.data() + m0 * K;
  const float* d = q.d.data() + m0 * nb;
  constexpr int C = MT == 1 ? 4 : MT == 2 ? 2 : 1;  // chains per activation row
  __m256 acc[MT][C];
  for (int i = 0; i < MT; ++i)
    for (int c = 0; c < C; ++c) acc[i][c] = _mm256_setzero_ps();
  auto block = [&](int64_t b, int c) {  // block b of the row into chain c
    const float sg = s[b / bpg];
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wr + b * 16));
    const __m256i wq = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low);
    for (int i = 0; i < MT; ++i) {
      const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i * K + b * QK));
      acc[i][c] = _mm256_fmadd_ps(dot_block(wq, av), _mm256_set1_ps(d[i * nb + b] * sg), acc[i][c]);
    }
  };
  int64_t b = 0;
  for (; b + C <= nb; b += C)
    for (int c = 0; c < C; ++c) block(b + c, c);
  for (; b < nb; ++b) block(b, 0);
  for (int i = 0; i < MT; ++i) {
    __m256 t = acc[i][0];
    for (int c = 1; c < C; ++c) t = _mm256_add_ps(t, acc[i][c]);
    const float* gs = q.gsum.data() + (m0 + i) * G;
    float zero = 0.f;
    for (int64_t g = 0; g < G; ++g) zero += sz[g] * gs[g];
    y[(m0 + i) * N + n] = hsum(t) - zero;
  }
}

template <int MT>
void q4_rows(const uint8_t* w, const float* s, const float* sz, const QuantizedRows& q, int64_t m0, int64_t n0,
             int64_t n1, int64_t K, int64_t N, int64_t group, float* y) {
  const int64_t G = K / group;
  for (int64_t n = n0; n < n1; ++n) q4_row<MT>(w + n * (K / 2), s + n * G, sz + n * G, q, m0, n, K, N, group, y);
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
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + b * QK));
      for (int i = 0; i < MT; ++i)
        acc[i] = _mm256_fmadd_ps(dot_block_signed(wq, a + i * K + b * QK), _mm256_set1_ps(d[i * nb + b]), acc[i]);
    }
    for (int i = 0; i < MT; ++i) y[(m0 + i) * N + n] = hsum(acc[i]) * s[n];
  }
}

void check(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& s, int64_t K) {
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous() && x.device().is_cpu(), "x: a contiguous CPU matrix");
  TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16, "x: fp32 or bf16");
  TORCH_CHECK(x.size(1) == K && K % QK == 0, "x: K = ", K, ", a multiple of 32");
  TORCH_CHECK(w.is_contiguous() && s.is_contiguous() && s.scalar_type() == torch::kFloat, "layout tensors");
}

constexpr int64_t ROWS_PER_TASK = 16;  // output rows a thread takes at a time

}  // namespace

torch::Tensor q4_mm(torch::Tensor x, torch::Tensor w, torch::Tensor s, torch::Tensor sz, int64_t group) {
  const int64_t N = w.size(0), K = w.size(1) * 2, M = x.size(0);
  check(x, w, s, K);
  TORCH_CHECK(w.scalar_type() == torch::kByte && group % QK == 0 && K % group == 0, "q4: group a multiple of 32");
  TORCH_CHECK(s.size(0) == N && s.size(1) == K / group && sz.sizes() == s.sizes(), "q4: scales (N, K / group)");
  const QuantizedRows q = quantize(x, group);
  auto y = torch::empty({M, N}, x.options().dtype(torch::kFloat));
  const uint8_t* wp = w.data_ptr<uint8_t>();
  const float *sp = s.data_ptr<float>(), *zp = sz.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, N, ROWS_PER_TASK, [&](int64_t n0, int64_t n1) {
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) q4_rows<4>(wp, sp, zp, q, m, n0, n1, K, N, group, yp);
    switch (M - m) {
      case 3: q4_rows<3>(wp, sp, zp, q, m, n0, n1, K, N, group, yp); break;
      case 2: q4_rows<2>(wp, sp, zp, q, m, n0, n1, K, N, group, yp); break;
      case 1: q4_rows<1>(wp, sp, zp, q, m, n0, n1, K, N, group, yp); break;
    }
  });
  return y;
}

torch::Tensor q8_mm(torch::Tensor x, torch::Tensor w, torch::Tensor s) {
  const int64_t N = w.size(0), K = w.size(1), M = x.size(0);
  check(x, w, s, K);
  TORCH_CHECK(w.scalar_type() == torch::kChar && s.numel() == N, "q8: int8 weight (N, K), scales (N)");
  const QuantizedRows q = quantize(x, K);
  auto y = torch::empty({M, N}, x.options().dtype(torch::kFloat));
  const int8_t* wp = w.data_ptr<int8_t>();
  const float* sp = s.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, N, ROWS_PER_TASK, [&](int64_t n0, int64_t n1) {
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) q8_rows<4>(wp, sp, q, m, n0, n1, K, N, yp);
    switch (M - m) {
      case 3: q8_rows<3>(wp, sp, q, m, n0, n1, K, N, yp); break;
      case 2: q8_rows<2>(wp, sp, q, m, n0, n1, K, N, yp); break;
      case 1: q8_rows<1>(wp, sp, q, m, n0, n1, K, N, yp); break;
    }
  });
  return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("q4_mm", &q4_mm, "int4 weights (block-32 layout) x int8-quantized activations");
  m.def("q8_mm", &q8_mm, "int8 per-channel weights x int8-quantized activations");
}
