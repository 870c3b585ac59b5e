// The float32 Box-Muller transform of philox.cuh on four lanes at once, for the compiled CPU
// engine (cpu_engine.cpp defines GI_HOST_SIMD and includes this after philox.cuh).
//
// GCC/Clang vector extensions: each line is the operation of log_unit<float> or
// sincos_turns<float> in philox.cuh (which mirror gpuinit/streams/transforms.py), on four values.
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

}  // namespace gpuinit
