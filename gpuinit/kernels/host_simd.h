// The float32 Box-Muller transform and the truncated normal's ndtri of philox.cuh on four lanes at
// once, for the compiled CPU engine (cpu_engine.cpp defines GI_HOST_SIMD and includes this after
// philox.cuh).
//
// GCC/Clang vector extensions: each line is the operation of log_unit, sincos_turns<float> or
// ndtri in philox.cuh (which mirror gpuinit/streams/transforms.py), on four values.
// Vector additions, multiplications, divisions and square roots round exactly as the scalar ones
// (IEEE, to nearest even), and the engine is built without contraction, so each lane's bits are
// the scalar code's; the tests compare the engine with the NumPy reference bit for bit.
#pragma once

#include <math.h>

namespace gpuinit {

typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));
typedef unsigned int v4u __attribute__((vector_size(16)));

template <int N> inline v4f horner4(const float (&k)[N], v4f x) {
    v4f acc = v4f{} + k[0];
    for (int n = 1; n < N; ++n) { acc = acc * x; acc = acc + k[n]; }
    return acc;
}

// log_unit<float> on four values.
inline v4f log_unit4(v4f u) {
    typedef Prec<float> P;
    const u32 half = to_bits(P::sqrt_half());
    const v4u b = (v4u)u + (u32)(((u32)P::BIAS << P::MANT) - half);
    const v4f fe = __builtin_convertvector((v4i)(b >> P::MANT) - P::BIAS, v4f);
    const v4f m = (v4f)((b & (((u32)1 << P::MANT) - 1)) + half);
    v4f s = m - 1.0f;
    s = s / (m + 1.0f);
    const float k[5] = {0x1.c71c72p-3f, 0x1.24924ap-2f, 0x1.99999ap-2f, 0x1.555556p-1f, 0x1p+1f};
    v4f p = horner4(k, s * s);
    p = p * s;
    v4f lo = fe * P::ln2_lo();
    lo = lo + p;
    return fe * P::ln2_hi() + lo;
}

// sincos_turns<float> on four angles.
inline void sincos_turns4(v4i k, v4f* cos_t, v4f* sin_t) {
    typedef Prec<float> P;
    const int B = P::ANGLE_BITS;
    const v4i j = (k + (1 << (B - 3))) >> (B - 2);
    const v4i d = k - (j << (B - 2));
    v4f x = __builtin_convertvector(d, v4f);
    x = x * P::pi_scale();
    const v4f x2 = x * x;
    const float ks[5] = {0x1.71de3ap-19f, -0x1.a01a02p-13f, 0x1.111112p-7f, -0x1.555556p-3f, 0x1p+0f};
    const float kc[6] = {-0x1.27e4fcp-22f, 0x1.a01a02p-16f, -0x1.6c16c2p-10f, 0x1.555556p-5f, -0x1p-1f,
                         0x1p+0f};
    v4f s = horner4(ks, x2);
    s = s * x;
    const v4f c = horner4(kc, x2);
    const v4i q = j & 3;
    const v4i odd = (q & 1) != 0;
    v4f ct = odd ? s : c;
    v4f st = odd ? c : s;
    ct = ((q + 1) & 2) != 0 ? -ct : ct;
    st = (q & 2) != 0 ? -st : st;
    *cos_t = ct;
    *sin_t = st;
}

inline void host_box_muller_pairs(const Words4& w, float* r, float* c, float* s) {
    v4f u1;
    v4i k;
    for (int m = 0; m < 4; ++m) {
        u1[m] = (float)((double)(u32)w.v[m] + 1.0);
        k[m] = (int)(w.v[m] >> 40);
    }
    u1 = u1 * 0x1p-32f;
    v4f x = log_unit4(u1);
    x = x * -2.0f;
    v4f cs, sn;
    sincos_turns4(k, &cs, &sn);
    for (int m = 0; m < 4; ++m) {
        r[m] = sqrtf(x[m]);
        c[m] = cs[m];
        s[m] = sn[m];
    }
}

// --- float16 from float64 ----------------------------------------------------------------------

// half_from_double's bits through float32: d rounded to 24 bits by round-to-odd (truncated, and
// the last bit set where that dropped anything), then once to nearest-even by half_from_float.
// Rounding to odd at two or more bits above the target precision, then to nearest, rounds as once
// to nearest (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms
// using rounding to odd", IEEE Trans. Computers 2008); float32 keeps 24 bits wherever float16 has
// a value (2**-25 and up), and what it flushes or overflows float16 rounds to zero or infinity too.
// Infinities and NaNs keep their kind and sign. A hardware conversion and a few integer moves
// instead of half_from_double's 53-bit shifts and unpredictable rounding branch.
inline unsigned short host_half_from_double(double d) {
    const float f = (float)d;  // to nearest-even
    const double back = (double)f;
    u32 b = to_bits(f);
    b -= fabs(back) > fabs(d) ? 1u : 0u;  // rounded away from zero: truncate instead
    b |= back != d ? 1u : 0u;             // inexact: the sticky last bit
    return half_from_float(from_bits(b));
}

// --- the truncated normal, in float64 -----------------------------------------------------------
// A group's four doubles as two SSE2 registers (the x86-64 baseline), each operation issued on both
// at once: four independent chains hide the latency of the polynomials. (GCC's own 32-byte
// vectors compile badly without AVX: their compares go lane by lane through integer registers.)

typedef double v2d __attribute__((vector_size(16)));
typedef long long v2l __attribute__((vector_size(16)));
typedef unsigned long long v2ul __attribute__((vector_size(16)));

struct d4 { v2d a, b; };    // lanes 0-1, lanes 2-3
struct m4 { v2l a, b; };    // a compare's lanes: all ones or zero
struct ul4 { v2ul a, b; };

inline d4 operator+(d4 x, d4 y) { return {x.a + y.a, x.b + y.b}; }
inline d4 operator-(d4 x, d4 y) { return {x.a - y.a, x.b - y.b}; }
inline d4 operator*(d4 x, d4 y) { return {x.a * y.a, x.b * y.b}; }
inline d4 operator/(d4 x, d4 y) { return {x.a / y.a, x.b / y.b}; }
inline d4 operator+(d4 x, double y) { return {x.a + y, x.b + y}; }
inline d4 operator-(d4 x, double y) { return {x.a - y, x.b - y}; }
inline d4 operator*(d4 x, double y) { return {x.a * y, x.b * y}; }
inline d4 operator-(double x, d4 y) { return {x - y.a, x - y.b}; }
inline d4 operator-(d4 x) { return {-x.a, -x.b}; }
inline m4 operator<(d4 x, double y) { return {x.a < y, x.b < y}; }
inline m4 operator>(d4 x, double y) { return {x.a > y, x.b > y}; }
inline m4 operator<=(d4 x, double y) { return {x.a <= y, x.b <= y}; }
inline m4 operator|(m4 x, m4 y) { return {x.a | y.a, x.b | y.b}; }
inline m4 operator&(m4 x, m4 y) { return {x.a & y.a, x.b & y.b}; }
inline m4 operator~(m4 x) { return {~x.a, ~x.b}; }
inline d4 blend(m4 m, d4 x, d4 y) { return {m.a ? x.a : y.a, m.b ? x.b : y.b}; }
inline d4 splat(double x) { return {v2d{x, x}, v2d{x, x}}; }
inline bool any(m4 m) {
    const v2l x = m.a | m.b;
    return (x[0] | x[1]) != 0;
}
inline d4 sqrt4(d4 x) {
#if defined(__SSE2__)
    return {__builtin_ia32_sqrtpd(x.a), __builtin_ia32_sqrtpd(x.b)};
#else
    return {v2d{sqrt(x.a[0]), sqrt(x.a[1])}, v2d{sqrt(x.b[0]), sqrt(x.b[1])}};
#endif
}
inline d4 as_d4(ul4 x) { return {(v2d)x.a, (v2d)x.b}; }
inline ul4 as_ul4(d4 x) { return {(v2ul)x.a, (v2ul)x.b}; }

template <int N> inline d4 horner4(const double (&k)[N], d4 x) {
    d4 acc = splat(k[0]);
    for (int n = 1; n < N; ++n) { acc = acc * x; acc = acc + k[n]; }
    return acc;
}

// log_unit<double> on four values.
inline d4 log_unit4(d4 u) {
    typedef Prec<double> P;
    const u64 half = to_bits(P::sqrt_half());
    const u64 mant = ((u64)1 << P::MANT) - 1;
    ul4 b = as_ul4(u);
    b = {b.a + (((u64)P::BIAS << P::MANT) - half), b.b + (((u64)P::BIAS << P::MANT) - half)};
    // The exponent, an integer in [-1023, 1024], as a double: in the mantissa of 1.5 * 2**52 it is
    // exact, and subtracting 1.5 * 2**52 leaves it exactly (SSE2 has no int64 conversion).
    const u64 e_bias = to_bits(0x1.8p52) - P::BIAS;
    const d4 fe = as_d4(ul4{(b.a >> P::MANT) + e_bias, (b.b >> P::MANT) + e_bias}) - 0x1.8p52;
    const d4 m = as_d4(ul4{(b.a & mant) + half, (b.b & mant) + half});
    d4 s = m - 1.0;
    s = s / (m + 1.0);
    const double k[11] = {0x1.8618618618618p-4, 0x1.af286bca1af28p-4, 0x1.e1e1e1e1e1e1ep-4,
                          0x1.1111111111111p-3, 0x1.3b13b13b13b14p-3, 0x1.745d1745d1746p-3,
                          0x1.c71c71c71c71cp-3, 0x1.2492492492492p-2, 0x1.999999999999ap-2,
                          0x1.5555555555555p-1, 0x1p+1};
    d4 p = horner4(k, s * s);
    p = p * s;
    d4 lo = fe * P::ln2_lo();
    lo = lo + p;
    return fe * P::ln2_hi() + lo;
}

// ndtri's coefficients (Wichura's AS241), as philox.cuh's ndtri writes them.
struct As241 {
    static constexpr double A[8] = {2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
                                    4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
                                    1.3314166789178437745e+2, 3.3871328727963666080e+0};
    static constexpr double B[8] = {5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
                                    2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
                                    4.2313330701600911252e+1, 1.0};
    static constexpr double C[8] = {7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
                                    1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
                                    4.63033784615654529590e+0, 1.42343711074968357734e+0};
    static constexpr double D[8] = {1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
                                    1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
                                    2.05319162663775882187e+0, 1.0};
    static constexpr double E[8] = {2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
                                    2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
                                    5.46378491116411436990e+0, 6.65790464350110377720e+0};
    static constexpr double F[8] = {2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
                                    7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
                                    5.99832206555887937690e-1, 1.0};
};

inline d4 load4(const double* x) {
    d4 y;
    __builtin_memcpy(&y, x, sizeof y);
    return y;
}
inline void store4(double* x, d4 y) { __builtin_memcpy(x, &y, sizeof y); }

// ndtri's tails on four values p (all in a tail, |p - 0.5| > 0.425).
inline d4 ndtri_tails4(d4 p) {
    const d4 q = p - 0.5;
    d4 r = blend(q <= 0.0, p, 1.0 - p);
    r = sqrt4(-log_unit4(r));
    const m4 near = r <= 5.0;
    d4 z = splat(0.0);
    if (any(near)) {
        const d4 rn = r - 1.6;
        d4 zn = horner4(As241::C, rn);
        zn = zn / horner4(As241::D, rn);
        z = blend(near, zn, z);
    }
    if (any(~near)) {
        const d4 rf = r - 5.0;
        d4 zf = horner4(As241::E, rf);
        zf = zf / horner4(As241::F, rf);
        z = blend(near, z, zf);
    }
    return blend(q < 0.0, -z, z);
}

// Groups the compiled engine transforms at once (host_truncated_normals): 32 measured 3-4% faster
// than 16 and as fast as 64 (2-core EPYC VM).
constexpr int TRUNCATED_BATCH = 32;

// The truncated normals of groups consecutive groups of one job (at most TRUNCATED_BATCH), from
// their Philox blocks w: z[4 i + e] from word e of w[i], in float64 before the output's rounding.
// Each element takes group_values's operations in its order; the elements go in passes over the
// batch, so that the independent work of many groups overlaps (one group's chain of polynomials
// and divisions, alone, leaves the core waiting on latencies). The central rational function runs
// on every element, as the NumPy reference does; the tails, on the elements in a tail only,
// gathered four at a time.
inline void host_truncated_normals(const FillParams& p, const Words4* w, int groups, double* z) {
    double ps[4 * TRUNCATED_BATCH];
    int tail_at[4 * TRUNCATED_BATCH];
    int tails = 0;
    const u64 one = to_bits(0x1p52);
    for (int i = 0; i < groups; ++i) {
        // x < 2**52: 2**52 + x has x for mantissa, and subtracting 2**52 gives (double)x exactly
        const Words4& x = w[i];
        d4 u = as_d4(ul4{v2ul{(x.v[0] >> 12) | one, (x.v[1] >> 12) | one},
                         v2ul{(x.v[2] >> 12) | one, (x.v[3] >> 12) | one}}) - 0x1p52;
        u = u + 0.5;
        u = u * 0x1p-52;
        u = u * (p.pb - p.pa);
        u = u + p.pa;
        store4(ps + 4 * i, u);
        // ndtri's central branch
        const d4 q = u - 0.5;
        const d4 r = 0.180625 - q * q;
        d4 y = q * horner4(As241::A, r);
        y = y / horner4(As241::B, r);
        store4(z + 4 * i, y);
        const m4 tail = (q < -0.425) | (q > 0.425);  // not fabs(q) <= 0.425
        tail_at[tails] = 4 * i;
        tails += (int)(tail.a[0] & 1);
        tail_at[tails] = 4 * i + 1;
        tails += (int)(tail.a[1] & 1);
        tail_at[tails] = 4 * i + 2;
        tails += (int)(tail.b[0] & 1);
        tail_at[tails] = 4 * i + 3;
        tails += (int)(tail.b[1] & 1);
    }
    for (int t = 0; t < tails; t += 4) {
        const int n = tails - t < 4 ? tails - t : 4;
        double pt[4];
        for (int e = 0; e < 4; ++e) pt[e] = ps[tail_at[t + (e < n ? e : 0)]];  // pad with a real one
        double zt[4];
        store4(zt, ndtri_tails4(load4(pt)));
        for (int e = 0; e < n; ++e) z[tail_at[t + e]] = zt[e];
    }
    for (int i = 0; i < groups; ++i) {
        d4 y = load4(z + 4 * i);
        y = blend(y < p.lo, splat(p.lo), blend(y > p.hi, splat(p.hi), y));
        y = y * p.b;
        y = y + p.a;
        store4(z + 4 * i, y);
    }
}

}  // namespace gpuinit
