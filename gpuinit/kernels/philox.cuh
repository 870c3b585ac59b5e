// Philox4x64-10 and the fill transforms of gpuinit's stream contract (gpuinit/streams.py).
//
// One header for both sides: NVRTC/nvcc compile it into the CUDA kernels, g++ compiles it into a
// host library so that its arithmetic is tested against the NumPy reference on machines with no
// GPU. Build both without fused multiply-add (nvcc/NVRTC: --fmad=false; g++: -ffp-contract=off):
// the contract rounds every operation separately, as NumPy does.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GI_HD __host__ __device__ __forceinline__
#else
#define GI_HD inline
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

// Random123's philox4x64 round and key schedule, ten rounds, as numpy.random.Philox uses them.
GI_HD Words4 philox4x64_10(Words4 ctr, u64 k0, u64 k1) {
    const u64 M0 = 0xD2E7470EE14C6C93ULL, M1 = 0xCA5A826395121157ULL;
    const u64 W0 = 0x9E3779B97F4A7C15ULL, W1 = 0xBB67AE8584CAA73BULL;
    for (int round = 0; round < 10; ++round) {
        if (round) { k0 += W0; k1 += W1; }
        u64 hi0, hi1;
        u64 lo0 = mulhilo(M0, ctr.v[0], &hi0);
        u64 lo1 = mulhilo(M1, ctr.v[2], &hi1);
        Words4 out = {{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
        ctr = out;
    }
    return ctr;
}

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

// --- output conversion ----------------------------------------------------------------------

GI_HD u64 double_bits(double d) {
#if defined(__CUDA_ARCH__)
    return (u64)__double_as_longlong(d);
#else
    u64 b;
    __builtin_memcpy(&b, &d, sizeof b);
    return b;
#endif
}

// IEEE binary16 bits of d, rounded once to nearest-even (float16 storage is unsigned short, so
// no cuda_fp16.h is needed and the host build tests the same code). A float converts exactly to
// double first, so this also rounds float32 values as NumPy's astype(float16) does.
GI_HD unsigned short half_from_double(double d) {
    u64 b = double_bits(d);
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

GI_HD void put32(float* p, float v) { *p = v; }
GI_HD void put32(double* p, float v) { *p = (double)v; }
GI_HD void put32(unsigned short* p, float v) { *p = half_from_double((double)v); }
GI_HD void put64(float* p, double v) { *p = (float)v; }
GI_HD void put64(double* p, double v) { *p = v; }
GI_HD void put64(unsigned short* p, double v) { *p = half_from_double(v); }

// --- fills: one Philox block at a time -------------------------------------------------------

enum Family { UNIFORM = 1, NORMAL = 2, TRUNCATED_NORMAL = 3 };

struct FillParams {
    u64 k0, k1;       // the stream's key
    u64 word_offset;  // where the fill starts in the stream; a multiple of 4
    double a, b, lo, hi, pa, pb;  // the Fill's numbers; pa, pb: Phi(lo), Phi(hi)
};

// Elements that one Philox block (4 words) yields: 8 for 32-bit-or-smaller uniform, else 4.
template <typename T> GI_HD int group_size(int family) {
    return (family == UNIFORM && sizeof(T) <= 4) ? 8 : 4;
}

GI_HD double horner8(const double* k, double x) {
    double acc = k[0];
    for (int n = 1; n < 8; ++n) { acc = acc * x; acc = acc + k[n]; }
    return acc;
}

// Inverse standard normal CDF, Wichura's AS241 (PPND16), in the same operation order as
// gpuinit.streams.ndtri.
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
    double q = p - 0.5;
    if (fabs(q) <= 0.425) {
        double r = 0.180625 - q * q;
        return q * horner8(A, r) / horner8(B, r);
    }
    double r = q <= 0.0 ? p : 1.0 - p;
    r = sqrt(-log(r));
    double z;
    if (r <= 5.0) { r = r - 1.6; z = horner8(C, r) / horner8(D, r); }
    else { r = r - 5.0; z = horner8(E, r) / horner8(F, r); }
    return q < 0.0 ? -z : z;
}

// Fill the elements of group k (absolute elements [G k, G k + G), G = group_size<T>(family)) that
// fall in [begin, end), writing element i to out[i - begin]. They share one Philox block, and
// element i depends only on (key, word offset, i): a range of a parameter generated alone equals
// that slice of the whole.
template <typename T>
GI_HD void fill_group(int family, const FillParams& p, u64 k, T* out_at_begin, u64 begin, u64 end) {
    const Words4 zero = {{0, 0, 0, 0}};
    const int g = group_size<T>(family);
    const u64 base = (u64)g * k;
    const int e0 = (int)(begin > base ? begin - base : 0);
    const int n = (int)(end - base < (u64)g ? end - base : (u64)g);
    T* out = out_at_begin + base - begin;  // out[e] is absolute element base + e (e0 <= e < n)
    Words4 w = philox4x64_10(block_counter(zero, p.word_offset / 4 + k), p.k0, p.k1);
    if (family == UNIFORM) {
        if (sizeof(T) <= 4) {
            const float low = (float)p.a, span = (float)(p.b - p.a);
            for (int e = e0; e < n; ++e) {
                u32 u = (e & 1) ? (u32)(w.v[e >> 1] >> 32) : (u32)w.v[e >> 1];
                float x = (float)(u >> 8) * 5.9604644775390625e-08f;  // 2^-24
                x = x * span;
                put32(out + e, x + low);
            }
        } else {
            const double span = p.b - p.a;
            for (int e = e0; e < n; ++e) {
                double x = (double)(w.v[e] >> 11) * 1.1102230246251565e-16;  // 2^-53
                x = x * span;
                put64(out + e, x + p.a);
            }
        }
    } else if (family == NORMAL) {
        for (int m = e0 / 2; 2 * m < n; ++m) {
            double u1 = ((double)(w.v[2 * m] >> 11) + 1.0) * 1.1102230246251565e-16;
            double t = (double)(w.v[2 * m + 1] >> 11) * 1.1102230246251565e-16;
            t = t * 6.283185307179586;
            double r = log(u1);
            r = r * -2.0;
            r = sqrt(r);
            if (2 * m >= e0) {
                double z0 = r * cos(t);
                z0 = z0 * p.b;
                put64(out + 2 * m, z0 + p.a);
            }
            if (2 * m + 1 < n) {
                double z1 = r * sin(t);
                z1 = z1 * p.b;
                put64(out + 2 * m + 1, z1 + p.a);
            }
        }
    } else {
        for (int e = e0; e < n; ++e) {
            double u = ((double)(w.v[e] >> 12) + 0.5) * 2.220446049250313e-16;  // 2^-52
            u = u * (p.pb - p.pa);
            u = u + p.pa;
            double z = ndtri(u);
            z = z < p.lo ? p.lo : (z > p.hi ? p.hi : z);
            z = z * p.b;
            put64(out + e, z + p.a);
        }
    }
}

}  // namespace gpuinit
