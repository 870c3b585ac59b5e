// Philox4x64-10 and the fill transforms of gpuinit's stream contract (gpuinit/streams/spec.py).
//
// One header for both sides: NVRTC/nvcc compile it into the CUDA kernels, g++ compiles it into a
// host library so that its arithmetic is tested against the NumPy reference on machines with no
// GPU. Build both without fused multiply-add (nvcc/NVRTC: --fmad=false; g++: -ffp-contract=off):
// the contract rounds every operation separately, as NumPy does.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GI_HD __host__ __device__ __forceinline__
#define GI_UNROLL _Pragma("unroll")
#else
#define GI_HD inline
#define GI_UNROLL
#include <math.h>
#endif

namespace gpuinit {

typedef unsigned long long u64;
typedef unsigned int u32;

struct Words4 { u64 v[4]; };

GI_HD u64 mulhilo(u64 a, u64 b, u64* hi) {
#if defined(__CUDA_ARCH__)
    *hi = __umul64hi(a, b);
#else
    *hi = (u64)(((unsigned __int128)a * b) >> 64);
#endif
    return a * b;
}

// Philox4x64's key schedule: the key of each of the ten rounds. A kernel computes it once per job
// (JobCursor) rather than once per block.
struct RoundKeys { u64 k0[10], k1[10]; };

GI_HD RoundKeys round_keys(u64 k0, u64 k1) {
    const u64 W0 = 0x9E3779B97F4A7C15ULL, W1 = 0xBB67AE8584CAA73BULL;
    RoundKeys r;
    GI_UNROLL
    for (int round = 0; round < 10; ++round) {
        r.k0[round] = k0;
        r.k1[round] = k1;
        k0 += W0;
        k1 += W1;
    }
    return r;
}

// Random123's philox4x64 round, ten rounds, as numpy.random.Philox uses them.
GI_HD Words4 philox4x64_10(Words4 ctr, const RoundKeys& key) {
    const u64 M0 = 0xD2E7470EE14C6C93ULL, M1 = 0xCA5A826395121157ULL;
    GI_UNROLL
    for (int round = 0; round < 10; ++round) {
        u64 hi0, hi1;
        u64 lo0 = mulhilo(M0, ctr.v[0], &hi0);
        u64 lo1 = mulhilo(M1, ctr.v[2], &hi1);
        Words4 out = {{hi1 ^ ctr.v[1] ^ key.k0[round], lo1, hi0 ^ ctr.v[3] ^ key.k1[round], lo0}};
        ctr = out;
    }
    return ctr;
}

GI_HD Words4 philox4x64_10(Words4 ctr, u64 k0, u64 k1) { return philox4x64_10(ctr, round_keys(k0, k1)); }

// The 256-bit counter of block b of a stream that starts at counter c: c + b + 1 (NumPy
// increments before each block).
GI_HD Words4 block_counter(const Words4& c, u64 b) {
    Words4 r = c;
    u64 add = b + 1;
    u64 carry = (b == ~0ULL) ? 1 : 0;  // b + 1 overflowed
    r.v[0] = c.v[0] + add;
    carry += (r.v[0] < c.v[0]) ? 1 : 0;
    for (int i = 1; i < 4; ++i) {
        u64 before = r.v[i];
        r.v[i] = before + carry;
        carry = (r.v[i] < before) ? 1 : 0;
    }
    return r;
}

// 64-bit word j of the stream (key, c).
GI_HD u64 stream_word(u64 k0, u64 k1, const Words4& c, u64 j) {
    Words4 out = philox4x64_10(block_counter(c, j >> 2), k0, k1);
    return out.v[j & 3];
}

// --- bit moves ------------------------------------------------------------------------------

// The bits of a value read as another type of the same size; both forms compile to a move.
// (NVRTC has no memcpy builtin; CUDA defines reading a union's other member.)
template <typename To, typename From> GI_HD To bit_cast(From x) {
    static_assert(sizeof(To) == sizeof(From), "bit_cast between types of different sizes");
#if defined(__CUDA_ARCH__)
    union { From from; To to; } u;
    u.from = x;
    return u.to;
#else
    To y;
    __builtin_memcpy(&y, &x, sizeof y);
    return y;
#endif
}

GI_HD u64 to_bits(double d) { return bit_cast<u64>(d); }
GI_HD u32 to_bits(float f) { return bit_cast<u32>(f); }
GI_HD double from_bits(u64 b) { return bit_cast<double>(b); }
GI_HD float from_bits(u32 b) { return bit_cast<float>(b); }

// --- output conversion ----------------------------------------------------------------------

// IEEE binary16 bits of d, rounded once to nearest-even (float16 storage is unsigned short, so
// no cuda_fp16.h is needed and the host build tests the same code). A float converts exactly to
// double first, so this also rounds float32 values as NumPy's astype(float16) does.
GI_HD unsigned short half_from_double(double d) {
#if defined(__CUDA_ARCH__)
    unsigned short h;  // the hardware conversion: the same single rounding to nearest-even
    asm("cvt.rn.f16.f64 %0, %1;" : "=h"(h) : "d"(d));
    return h;
#endif
    u64 b = to_bits(d);
    unsigned short sign = (unsigned short)((b >> 48) & 0x8000);
    u64 mag = b & 0x7FFFFFFFFFFFFFFFULL;
    if (mag >= 0x7FF0000000000000ULL)  // inf or nan
        return sign | (mag > 0x7FF0000000000000ULL ? 0x7E00 : 0x7C00);
    int e = (int)(mag >> 52) - 1023;
    if (e > 15) return sign | 0x7C00;
    u64 m = (mag & 0xFFFFFFFFFFFFFULL) | (1ULL << 52);  // 53 significant bits
    int shift = e >= -14 ? 42 : 42 + (-14 - e);         // bits to drop
    if (shift > 53) return sign;                        // below half the smallest subnormal
    u64 kept = m >> shift;
    u64 rest = m & ((1ULL << shift) - 1);
    u64 halfway = 1ULL << (shift - 1);
    if (rest > halfway || (rest == halfway && (kept & 1))) kept += 1;
    // Normal: exponent field e + 15 above the 10 mantissa bits; a carry out of the mantissa
    // bumps the exponent (possibly to infinity), which the addition does by itself.
    u64 bits = e >= -14 ? (((u64)(e + 15) << 10) + (kept - (1ULL << 10))) : kept;
    return sign | (unsigned short)(bits > 0x7C00 ? 0x7C00 : bits);
}

// IEEE binary16 bits of a float32 value, rounded once to nearest-even: the same bits as
// half_from_double((double)f), with integer moves only.
GI_HD unsigned short half_from_float(float f) {
#if defined(__CUDA_ARCH__)
    unsigned short h;  // the hardware conversion: the same single rounding to nearest-even
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
#endif
    const u32 b = to_bits(f);
    const u32 sign = (b >> 16) & 0x8000u;
    const u32 mag = b & 0x7FFFFFFFu;
    if (mag >= 0x7F800000u) return (unsigned short)(sign | (mag > 0x7F800000u ? 0x7E00u : 0x7C00u));
    if (mag >= 0x477FF000u) return (unsigned short)(sign | 0x7C00u);  // 65520 and up round to infinity
    if (mag >= 0x38800000u) {  // a normal half: rebias the exponent, round off 13 mantissa bits
        const u32 v = mag - 0x38000000u;
        return (unsigned short)(sign | ((v + 0x0FFFu + ((v >> 13) & 1u)) >> 13));
    }
    if (mag <= 0x33000000u) return (unsigned short)sign;  // 2**-25 and below round to zero
    const u32 m = (mag & 0x7FFFFFu) | 0x800000u;          // a subnormal half: 24 significant bits
    const int shift = 126 - (int)(mag >> 23);               // 14 to 24 bits to drop
    const u32 kept = m >> shift, rest = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
    return (unsigned short)(sign | (kept + ((rest > halfway || (rest == halfway && (kept & 1u))) ? 1u : 0u)));
}

// bfloat16 storage: its bits, in a type of its own so that the kernels' templates tell it from
// float16's unsigned short.
struct bf16 { unsigned short bits; };

// bfloat16 bits of f, rounded to nearest-even (as ml_dtypes rounds); NaN stays a quiet NaN.
GI_HD unsigned short bf16_from_float(float f) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    unsigned short h;  // the hardware conversion (sm_80 and later): the same rounding
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
#endif
    const u32 b = to_bits(f);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return (unsigned short)((b >> 16) | 0x0040u);
    return (unsigned short)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

GI_HD void put32(float* p, float v) { *p = v; }
GI_HD void put32(double* p, float v) { *p = (double)v; }
GI_HD void put32(unsigned short* p, float v) { *p = half_from_float(v); }
GI_HD void put64(float* p, double v) { *p = (float)v; }
GI_HD void put64(double* p, double v) { *p = v; }
#if defined(GI_HOST_SIMD) && !defined(__CUDA_ARCH__)
// The host's faster form of half_from_double, the same bits (host_simd.h, in the compiled CPU engine).
unsigned short host_half_from_double(double d);
GI_HD void put64(unsigned short* p, double v) { *p = host_half_from_double(v); }
#else
GI_HD void put64(unsigned short* p, double v) { *p = half_from_double(v); }
#endif
GI_HD void put32(bf16* p, float v) { p->bits = bf16_from_float(v); }
GI_HD void put64(bf16* p, double v) { p->bits = bf16_from_float((float)v); }  // via float32, as ml_dtypes

// --- transforms: gpuinit/streams/transforms.py, operation for operation ------------------------

// The compute types' constants: the same hex literals as gpuinit/streams/transforms.py's F32 and F64.
template <typename C> struct Prec;

template <> struct Prec<float> {
    typedef u32 U;
    typedef int S;
    static constexpr int MANT = 23, BIAS = 127, ANGLE_BITS = 24;
    static GI_HD float ln2_hi() { return 0x1.62e4p-1f; }
    static GI_HD float ln2_lo() { return 0x1.7f7d1cp-20f; }
    static GI_HD float sqrt_half() { return 0x1.6a09e6p-1f; }
    static GI_HD float pi_scale() { return 0x1.921fb6p-22f; }  // pi / 2**(ANGLE_BITS - 1)
    static GI_HD float log_poly(float x) {
        const float k[5] = {0x1.c71c72p-3f, 0x1.24924ap-2f, 0x1.99999ap-2f, 0x1.555556p-1f, 0x1p+1f};
        return horner(k, x);
    }
    static GI_HD float sin_poly(float x) {
        const float k[5] = {0x1.71de3ap-19f, -0x1.a01a02p-13f, 0x1.111112p-7f, -0x1.555556p-3f, 0x1p+0f};
        return horner(k, x);
    }
    static GI_HD float cos_poly(float x) {
        const float k[6] = {-0x1.27e4fcp-22f, 0x1.a01a02p-16f, -0x1.6c16c2p-10f, 0x1.555556p-5f, -0x1p-1f,
                            0x1p+0f};
        return horner(k, x);
    }
    template <int N> static GI_HD float horner(const float (&k)[N], float x) {
        float acc = k[0];
        for (int n = 1; n < N; ++n) { acc = acc * x; acc = acc + k[n]; }
        return acc;
    }
};

template <> struct Prec<double> {
    typedef u64 U;
    typedef long long S;
    static constexpr int MANT = 52, BIAS = 1023, ANGLE_BITS = 53;
    static GI_HD double ln2_hi() { return 0x1.62e42feep-1; }
    static GI_HD double ln2_lo() { return 0x1.a39ef35793c76p-33; }
    static GI_HD double sqrt_half() { return 0x1.6a09e667f3bcdp-1; }
    static GI_HD double pi_scale() { return 0x1.921fb54442d18p-51; }
    static GI_HD double log_poly(double x) {
        const double k[11] = {0x1.8618618618618p-4, 0x1.af286bca1af28p-4, 0x1.e1e1e1e1e1e1ep-4,
                              0x1.1111111111111p-3, 0x1.3b13b13b13b14p-3, 0x1.745d1745d1746p-3,
                              0x1.c71c71c71c71cp-3, 0x1.2492492492492p-2, 0x1.999999999999ap-2,
                              0x1.5555555555555p-1, 0x1p+1};
        return horner(k, x);
    }
    static GI_HD double sin_poly(double x) {
        const double k[9] = {0x1.952c77030ad4ap-49, -0x1.ae7f3e733b81fp-41, 0x1.6124613a86d09p-33,
                             -0x1.ae64567f544e4p-26, 0x1.71de3a556c734p-19, -0x1.a01a01a01a01ap-13,
                             0x1.1111111111111p-7, -0x1.5555555555555p-3, 0x1p+0};
        return horner(k, x);
    }
    static GI_HD double cos_poly(double x) {
        const double k[9] = {0x1.ae7f3e733b81fp-45, -0x1.93974a8c07c9dp-37, 0x1.1eed8eff8d898p-29,
                             -0x1.27e4fb7789f5cp-22, 0x1.a01a01a01a01ap-16, -0x1.6c16c16c16c17p-10,
                             0x1.5555555555555p-5, -0x1p-1, 0x1p+0};
        return horner(k, x);
    }
    template <int N> static GI_HD double horner(const double (&k)[N], double x) {
        double acc = k[0];
        for (int n = 1; n < N; ++n) { acc = acc * x; acc = acc + k[n]; }
        return acc;
    }
};

// log of u, a normal number in (0, 1]: u = 2**e m, m in [sqrt(1/2), sqrt(2)) by integer moves.
template <typename C> GI_HD C log_unit(C u) {
    typedef Prec<C> P;
    typedef typename P::U U;
    const U half = to_bits(P::sqrt_half());
    U b = to_bits(u) + (((U)P::BIAS << P::MANT) - half);
    const C fe = (C)((typename P::S)(b >> P::MANT) - P::BIAS);
    const C m = from_bits((U)((b & (((U)1 << P::MANT) - 1)) + half));
    C s = m - (C)1;
    s = s / (m + (C)1);
    C p = P::log_poly(s * s);
    p = p * s;
    C lo = fe * P::ln2_lo();
    lo = lo + p;
    return fe * P::ln2_hi() + lo;
}

// cos and sin of 2 pi k / 2**ANGLE_BITS: exact quadrant reduction, polynomials on [-pi/4, pi/4).
template <typename C> GI_HD void sincos_turns(typename Prec<C>::S k, C* cos_t, C* sin_t) {
    typedef Prec<C> P;
    typedef typename P::S S;
    const int B = P::ANGLE_BITS;
    const S j = (k + ((S)1 << (B - 3))) >> (B - 2);
    const S d = k - (j << (B - 2));
    C x = (C)d;
    x = x * P::pi_scale();
    const C x2 = x * x;
    C s = P::sin_poly(x2);
    s = s * x;
    const C c = P::cos_poly(x2);
    const int q = (int)(j & 3);
    C ct = (q & 1) ? s : c;
    C st = (q & 1) ? c : s;
    if ((q + 1) & 2) ct = -ct;
    if (q & 2) st = -st;
    *cos_t = ct;
    *sin_t = st;
}

// One Box-Muller pair in float32 from one word: u1 from the low half, a 24-bit angle from the high.
GI_HD void box_muller(u64 w, float* z0, float* z1) {
    float u1 = (float)((double)(u32)w + 1.0);
    u1 = u1 * 0x1p-32f;
    float r = log_unit(u1);
    r = r * -2.0f;
    r = sqrtf(r);
    float c, s;
    sincos_turns<float>((int)(w >> 40), &c, &s);
    *z0 = r * c;
    *z1 = r * s;
}

#if defined(GI_HOST_SIMD) && !defined(__CUDA_ARCH__)
// The host's vector version of box_muller_pairs (host_simd.h, in the compiled CPU engine).
void host_box_muller_pairs(const Words4& w, float* r, float* c, float* s);
#endif

// The radius and the angle's cosine and sine of a group's four float32 pairs, word m giving pair
// m: z0 = r c, z1 = r s. Exactly box_muller's operations; the compiled CPU engine runs the four
// pairs as the lanes of vector instructions (host_simd.h), the same operations in the same order.
GI_HD void box_muller_pairs(const Words4& w, float* r, float* c, float* s) {
#if defined(GI_HOST_SIMD) && !defined(__CUDA_ARCH__)
    host_box_muller_pairs(w, r, c, s);
#else
    GI_UNROLL
    for (int m = 0; m < 4; ++m) {
        float u1 = (float)(long long)((u64)(u32)w.v[m] + 1);  // an exact integer, rounded once
        u1 = u1 * 0x1p-32f;
        float x = log_unit(u1);
        x = x * -2.0f;
        r[m] = sqrtf(x);
        sincos_turns<float>((int)(w.v[m] >> 40), c + m, s + m);
    }
#endif
}

// One Box-Muller pair in float64 from two words: u1 from a, a 53-bit angle from b.
GI_HD void box_muller(u64 a, u64 b, double* z0, double* z1) {
    double u1 = (double)(a >> 11) + 1.0;
    u1 = u1 * 0x1p-53;
    double r = log_unit(u1);
    r = r * -2.0;
    r = sqrt(r);
    double c, s;
    sincos_turns<double>((long long)(b >> 11), &c, &s);
    *z0 = r * c;
    *z1 = r * s;
}

// Inverse standard normal CDF, Wichura's AS241 (PPND16), in the same operation order as
// gpuinit.transforms.ndtri.
GI_HD double ndtri(double p) {
    const double A[8] = {2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
                         4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
                         1.3314166789178437745e+2, 3.3871328727963666080e+0};
    const double B[8] = {5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
                         2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
                         4.2313330701600911252e+1, 1.0};
    const double C[8] = {7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
                         1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
                         4.63033784615654529590e+0, 1.42343711074968357734e+0};
    const double D[8] = {1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
                         1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
                         2.05319162663775882187e+0, 1.0};
    const double E[8] = {2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
                         2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
                         5.46378491116411436990e+0, 6.65790464350110377720e+0};
    const double F[8] = {2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
                         7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
                         5.99832206555887937690e-1, 1.0};
    typedef Prec<double> P;
    double q = p - 0.5;
    if (fabs(q) <= 0.425) {
        double r = 0.180625 - q * q;
        return q * P::horner(A, r) / P::horner(B, r);
    }
    double r = q <= 0.0 ? p : 1.0 - p;
    r = sqrt(-log_unit(r));
    double z;
    if (r <= 5.0) { r = r - 1.6; z = P::horner(C, r) / P::horner(D, r); }
    else { r = r - 5.0; z = P::horner(E, r) / P::horner(F, r); }
    return q < 0.0 ? -z : z;
}

// --- fills: one Philox block at a time -------------------------------------------------------

enum Family { CONSTANT = 0, UNIFORM = 1, NORMAL = 2, TRUNCATED_NORMAL = 3 };

struct FillParams {
    u64 k0, k1;       // the stream's key
    u64 word_offset;  // where the fill starts in the stream; a multiple of 4
    double a, b, lo, hi, pa, pb;  // the Fill's numbers; pa, pb: Phi(lo), Phi(hi)
};

// A job's numbers as a thread uses them, worked out once per job rather than once per group: the
// fill's parameters, the key schedule, and the float32 forms the float32 transforms take.
struct JobNumbers {
    FillParams p;
    RoundKeys key;
    float low, span, scale;  // uniform, float32 outputs: f32(a), f32(b - a), span * 2**-24
    bool one_multiply;       // scale is exact, so u * scale rounds as (u * 2**-24) * span does
    float mean, sd;          // normal, float32 compute: f32(a), f32(b)
};

GI_HD JobNumbers job_numbers(const FillParams& p) {
    JobNumbers j;
    j.p = p;
    j.key = round_keys(p.k0, p.k1);
    j.low = (float)p.a;
    j.span = (float)(p.b - p.a);
    j.scale = j.span * 0x1p-24f;
    // u * 2**-24 is exact (u < 2**24), so (u * 2**-24) * span is u * span * 2**-24 rounded once;
    // so is u * scale when scale holds span * 2**-24 exactly: when span is 0 or that product is a
    // normal float (span >= 2**-102). Otherwise the two multiplies run as the contract writes them.
    const float magnitude = j.span < 0.0f ? -j.span : j.span;
    j.one_multiply = j.span == 0.0f || magnitude >= 0x1p-102f;
    j.mean = (float)p.a;
    j.sd = (float)p.b;
    return j;
}

// Elements that one Philox block (4 words) yields: 8 for uniform and normal outputs of 32 bits or
// fewer (a 32-bit draw per element; a word per normal pair), else 4. Constants draw no words; they
// use the same group shape.
template <typename T, int FAMILY> GI_HD constexpr int group_size() {
    return (FAMILY != TRUNCATED_NORMAL && sizeof(T) <= 4) ? 8 : 4;
}

// The values of a group's elements, from its Philox block w.
template <typename T, int FAMILY> GI_HD void group_values(const JobNumbers& j, const Words4& w, T* v) {
    const FillParams& p = j.p;
    if constexpr (FAMILY == CONSTANT) {
        GI_UNROLL
        for (int e = 0; e < group_size<T, FAMILY>(); ++e) put64(v + e, p.a);
    } else if constexpr (FAMILY == UNIFORM && sizeof(T) <= 4) {
        if (j.one_multiply) {
            GI_UNROLL
            for (int e = 0; e < 8; ++e) {
                u32 u = (e & 1) ? (u32)(w.v[e >> 1] >> 32) : (u32)w.v[e >> 1];
                put32(v + e, (float)(u >> 8) * j.scale + j.low);
            }
        } else {
            GI_UNROLL
            for (int e = 0; e < 8; ++e) {
                u32 u = (e & 1) ? (u32)(w.v[e >> 1] >> 32) : (u32)w.v[e >> 1];
                float x = (float)(u >> 8) * 0x1p-24f;
                x = x * j.span;
                put32(v + e, x + j.low);
            }
        }
    } else if constexpr (FAMILY == UNIFORM) {
        const double span = p.b - p.a;
        GI_UNROLL
        for (int e = 0; e < 4; ++e) {
            double x = (double)(w.v[e] >> 11) * 0x1p-53;
            x = x * span;
            put64(v + e, x + p.a);
        }
    } else if constexpr (FAMILY == NORMAL && sizeof(T) <= 4) {
        const float mean = j.mean, sd = j.sd;
        float r[4], c[4], s[4];
        box_muller_pairs(w, r, c, s);
        GI_UNROLL
        for (int m = 0; m < 4; ++m) {
            float z0 = r[m] * c[m], z1 = r[m] * s[m];
            z0 = z0 * sd;
            z1 = z1 * sd;
            put32(v + 2 * m, z0 + mean);
            put32(v + 2 * m + 1, z1 + mean);
        }
    } else if constexpr (FAMILY == NORMAL) {
        GI_UNROLL
        for (int m = 0; m < 2; ++m) {
            double z0, z1;
            box_muller(w.v[2 * m], w.v[2 * m + 1], &z0, &z1);
            z0 = z0 * p.b;
            z1 = z1 * p.b;
            put64(v + 2 * m, z0 + p.a);
            put64(v + 2 * m + 1, z1 + p.a);
        }
    } else {
        GI_UNROLL
        for (int e = 0; e < 4; ++e) {
            double u = ((double)(w.v[e] >> 12) + 0.5) * 0x1p-52;
            u = u * (p.pb - p.pa);
            u = u + p.pa;
            double z = ndtri(u);
            z = z < p.lo ? p.lo : (z > p.hi ? p.hi : z);
            z = z * p.b;
            put64(v + e, z + p.a);
        }
    }
}

// 32-bit word i of a group's bytes, read from its values (no local-memory round trip).
GI_HD u32 word32(const float* v, int i) { return to_bits(v[i]); }
GI_HD u32 word32(const double* v, int i) { return (u32)(to_bits(v[i >> 1]) >> (32 * (i & 1))); }
GI_HD u32 word32(const unsigned short* v, int i) { return (u32)v[2 * i] | ((u32)v[2 * i + 1] << 16); }
GI_HD u32 word32(const bf16* v, int i) { return (u32)v[2 * i].bits | ((u32)v[2 * i + 1].bits << 16); }

#if defined(__CUDA_ARCH__)
// One 16-byte (8-byte) store. Inline PTX: left to itself the compiler splits some of these vector
// stores into scalar ones, and the issue asks for wide stores.
__device__ __forceinline__ void store16(void* p, u32 a, u32 b, u32 c, u32 d) {
    asm volatile("st.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(a), "r"(b), "r"(c), "r"(d) : "memory");
}
__device__ __forceinline__ void store8(void* p, u32 a, u32 b) {
    asm volatile("st.v2.b32 [%0], {%1, %2};" ::"l"(p), "r"(a), "r"(b) : "memory");
}
#endif

// Store a whole group: 16-byte stores (8-byte for a group that small) where the address allows.
template <typename T, int G> GI_HD void store_group(T* out, const T* v) {
#if defined(__CUDA_ARCH__)
    constexpr int BYTES = G * (int)sizeof(T);
    const u64 addr = (u64)out;
    if constexpr (BYTES % 16 == 0) {
        if (addr % 16 == 0) {
            GI_UNROLL
            for (int i = 0; i < BYTES / 16; ++i)
                store16(reinterpret_cast<char*>(out) + 16 * i, word32(v, 4 * i), word32(v, 4 * i + 1),
                        word32(v, 4 * i + 2), word32(v, 4 * i + 3));
            return;
        }
    } else if constexpr (BYTES == 8) {
        if (addr % 8 == 0) {
            store8(out, word32(v, 0), word32(v, 1));
            return;
        }
    }
#endif
    GI_UNROLL
    for (int e = 0; e < G; ++e) out[e] = v[e];
}

// The Philox block of group k of a job. The block index word_offset / 4 + k stays below 2**63 (k
// counts groups of an array that fits in memory), so its counter is just that plus one.
GI_HD Words4 group_words(const JobNumbers& j, u64 k) {
    const Words4 ctr = {{j.p.word_offset / 4 + k + 1, 0, 0, 0}};
    return philox4x64_10(ctr, j.key);
}

// Store the values v of group k (absolute elements [G k, G k + G)) that fall in [begin, end),
// element i to out_at_begin[i - begin].
//
// whole_lo, whole_n: the groups k with k - whole_lo < whole_n (unsigned) lie wholly in [begin, end);
// a caller that keeps a job works them out once (JobCursor), so a whole group costs no range test
// beyond that one comparison.
template <typename T, int G>
GI_HD void store_values(const T* v, u64 k, T* out_at_begin, u64 begin, u64 end, u64 whole_lo, u64 whole_n) {
    const u64 base = (u64)G * k;
    if (k - whole_lo < whole_n) {
        store_group<T, G>(out_at_begin + (base - begin), v);
    } else {
        const int e0 = (int)(begin > base ? begin - base : 0);
        const int n = (int)(end - base < (u64)G ? end - base : (u64)G);
        GI_UNROLL  // constant indices keep v in registers
        for (int e = 0; e < G; ++e)
            if (e >= e0 && e < n) out_at_begin[base + e - begin] = v[e];
    }
}

// Fill the elements of group k (G = group_size<T, FAMILY>) that fall in [begin, end), writing
// element i to out_at_begin[i - begin] (whole_lo, whole_n: see store_values). They share one
// Philox block, and element i depends only on (key, word offset, i): a range of a parameter
// generated alone equals that slice of the whole.
template <typename T, int FAMILY>
GI_HD void fill_group(const JobNumbers& j, u64 k, T* out_at_begin, u64 begin, u64 end, u64 whole_lo, u64 whole_n) {
    constexpr int G = group_size<T, FAMILY>();
    Words4 w = {{0, 0, 0, 0}};
    if constexpr (FAMILY != CONSTANT) w = group_words(j, k);
    T v[G];
    group_values<T, FAMILY>(j, w, v);
    store_values<T, G>(v, k, out_at_begin, begin, end, whole_lo, whole_n);
}

// The groups wholly inside elements [begin, end): (first, count), as fill_group takes them.
template <typename T, int FAMILY> GI_HD void whole_groups(u64 begin, u64 end, u64* first, u64* count) {
    constexpr u64 G = group_size<T, FAMILY>();
    const u64 lo = (begin + G - 1) / G, hi = end / G;
    *first = lo;
    *count = hi > lo ? hi - lo : 0;
}

template <typename T, int FAMILY>
GI_HD void fill_group(const FillParams& p, u64 k, T* out_at_begin, u64 begin, u64 end) {
    u64 whole_lo, whole_n;
    whole_groups<T, FAMILY>(begin, end, &whole_lo, &whole_n);
    fill_group<T, FAMILY>(job_numbers(p), k, out_at_begin, begin, end, whole_lo, whole_n);
}

// --- the job table of a fused launch -----------------------------------------------------------

struct FillJob {
    u64 out_ptr;      // address where element `begin` goes
    u64 first_group;  // index of the job's first thread group in the launch (prefix sum)
    u64 begin;        // first element of the parameter's stream to produce
    u64 count;        // elements
    FillParams p;
};

// Thread groups per entry of a launch's chunk map: the map holds the job of every
// 2**CHUNK_SHIFT-th group (gpuinit.kernels.launch_tables builds it with the table).
constexpr int CHUNK_SHIFT = 8;

// The job a thread's groups fall in, kept while they stay in it. Entering a job costs a look in
// the chunk map and a short scan forward (at most the jobs that start inside one chunk); the
// groups after that cost one comparison each. Without a map (a table of one job) the scan starts
// at the first job.
template <typename T, int FAMILY> struct JobCursor {
    u64 lo = 0, hi = 0;  // the launch's groups [lo, hi) are the job's; none until the first seek
    u64 k0 = 0;          // group g of the launch is group k0 + g of the job's stream (mod 2**64)
    T* out = nullptr;    // where the job's element `begin` goes
    u64 begin = 0, end = 0;
    u64 whole_lo = 0, whole_n = 0;  // the job's whole groups (see fill_group)
    JobNumbers numbers = {};

    GI_HD void seek(const FillJob* jobs, int njobs, u64 total, const u32* chunk_job, u64 g) {
        int j = chunk_job ? (int)chunk_job[g >> CHUNK_SHIFT] : 0;
        while (j + 1 < njobs && jobs[j + 1].first_group <= g) ++j;
        const FillJob& job = jobs[j];
        lo = job.first_group;
        hi = j + 1 < njobs ? jobs[j + 1].first_group : total;
        k0 = job.begin / group_size<T, FAMILY>() - job.first_group;
        out = reinterpret_cast<T*>(job.out_ptr);
        begin = job.begin;
        end = job.begin + job.count;
        whole_groups<T, FAMILY>(begin, end, &whole_lo, &whole_n);
        numbers = job_numbers(job.p);
    }

    // What one thread does for thread group g of a launch.
    GI_HD void fill(const FillJob* jobs, int njobs, u64 total, const u32* chunk_job, u64 g) {
        if (g - lo >= hi - lo) seek(jobs, njobs, total, chunk_job, g);  // g outside [lo, hi)
        fill_group<T, FAMILY>(numbers, k0 + g, out, begin, end, whole_lo, whole_n);
    }
};

}  // namespace gpuinit
