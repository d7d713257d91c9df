// gather.cuh — the [outer, dim, inner] layout of per-vector data, and the one gather over it.
//
// A tensor [outer, dim, inner] holds outer·inner vectors of dim components: vector m = o·inner + p
// has component d at (o·dim + d)·inner + p. NCHW activations are this with inner = H·W (z_e, the
// prior's embedding); row-major [M, D] matrices are this with inner = 1. Every per-vector kernel
// (nearest_code.cu, segment_sum.cu, embedding.cu) reads and writes through these functions.
#pragma once
#include "common.cuh"

// Offset of component 0 of vector m; component d is at + d·inner.
__device__ __forceinline__ int strided_vector_offset(int m, int dim, int inner) { return (m / inner) * dim * inner + m % inner; }

// Element e of the layout: the vector m it belongs to and its component d.
__device__ __forceinline__ void strided_element(int e, int dim, int inner, int& m, int& d) {
    const int p = e % inner;
    const int od = e / inner;
    d = od % dim;
    m = (od / dim) * inner + p;
}

// The gather: element e of out = table[indices[m], d] with (m, d) = strided_element(e). table is
// [rows, dim] row-major. An index outside [0, rows) yields NaN (no out-of-bounds read; the NaN
// reaches the loss, where it is seen).
__device__ __forceinline__ float gather_element(const float* __restrict__ table, const int* __restrict__ indices, int rows, int dim,
                                                int inner, int e) {
    int m, d;
    strided_element(e, dim, inner, m, d);
    const int v = indices[m];
    return (unsigned)v < (unsigned)rows ? table[v * dim + d] : __int_as_float(0x7fc00000);
}
