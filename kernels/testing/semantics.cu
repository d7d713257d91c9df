// semantics.cu — kernels that exist to test the execution model itself, on both targets.
// They are compiled into the CPU library and checked by NVRTC like every other kernel, so a
// test that passes on the CPU would run unchanged on a GPU.
//
//   test_shared_per_block   each block writes its id into shared memory, synchronises, and every
//                           thread reads a neighbour's slot: equals blockIdx only if shared memory
//                           is shared within a block and separate between blocks.
//                           Launch: block (B,1,1), grid (G,1,1); out has G*B ints.
//   test_dynamic_shared     reverses each block's slice through dynamic shared memory
//                           (blockDim.x floats of it). Launch: block (B,1,1), grid (G,1,1), n = G*B.
//   test_neighbour_read     out[g] = in[neighbour in block]; with use_barrier = 0 the
//                           __syncthreads between the write and the read is missing — a race
//                           that thread order exposes. Launch: block (B,1,1), grid (G,1,1), n = G*B.
//   test_warp_ops           every shuffle, ballot and vote, in full, partial (blockDim not a
//                           multiple of 32) and divergent warps (odd warps skip when
//                           divergent != 0). out has 8 ints per thread. Launch: block (B,1,1), grid (G,1,1).
//   test_atomics            every thread adds, maxes, mins, CAS-increments and float-adds into
//                           single counters. Launch: any; n = total threads that count.
//   test_write_past_end     writes out[0..n] — one element past an n-element buffer.
//   test_barrier_in_no_sync registered VQ_KERNEL_NO_SYNC yet calls __syncthreads: the CPU target
//                           must refuse it loudly.
//   test_barrier_loop       `iterations` barriers in a row, to measure what one costs.
// FLOP and byte counts are immaterial for these.
#include "common.cuh"

extern "C" __global__ void test_shared_per_block(int* out) {
    __shared__ int slots[1024];
    slots[threadIdx.x] = blockIdx.x * 100000 + threadIdx.x;
    __syncthreads();
    const int neighbour = (threadIdx.x + 1) % blockDim.x;
    out[blockIdx.x * blockDim.x + threadIdx.x] = slots[neighbour];
}
VQ_KERNEL_SYNC(test_shared_per_block)

extern "C" __global__ void test_dynamic_shared(const float* in, float* out) {
    VQ_DYNAMIC_SHARED(float, slots);
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    slots[threadIdx.x] = in[g];
    __syncthreads();
    out[g] = slots[blockDim.x - 1 - threadIdx.x];
}
VQ_KERNEL_SYNC(test_dynamic_shared)

extern "C" __global__ void test_neighbour_read(const float* in, float* out, int use_barrier) {
    __shared__ float slots[1024];
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    slots[threadIdx.x] = in[g];
    if (use_barrier) __syncthreads();
    out[g] = slots[(threadIdx.x + 1) % blockDim.x];
}
VQ_KERNEL_SYNC(test_neighbour_read)

extern "C" __global__ void test_warp_ops(const int* in, int* out, int src_lane, int delta, int width, int threshold,
                                         int divergent) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    const int warp = threadIdx.x / 32;
    int* o = out + 8 * g;
    if (divergent && (warp & 1)) {
        for (int k = 0; k < 8; ++k) o[k] = -7;
        return;
    }
    // The lanes that exist in this warp: all 32, or fewer in the last warp of a block whose size
    // is not a multiple of 32. Naming absent lanes in a mask is undefined on the GPU.
    const int lanes = min(32, (int)blockDim.x - warp * 32);
    const unsigned mask = lanes == 32 ? VQ_FULL_WARP_MASK : ((1u << lanes) - 1u);
    const int v = in[g];
    o[0] = __shfl_sync(mask, v, src_lane, width);
    o[1] = __shfl_up_sync(mask, v, delta, width);
    o[2] = __shfl_down_sync(mask, v, delta, width);
    o[3] = __shfl_xor_sync(mask, v, delta, width);
    o[4] = (int)__ballot_sync(mask, v > threshold);
    o[5] = __any_sync(mask, v > threshold);
    o[6] = __all_sync(mask, v > threshold);
    __syncwarp(mask);
    o[7] = 1;
}
VQ_KERNEL_SYNC_DIVERGENT(test_warp_ops)

extern "C" __global__ void test_atomics(int* counter, int* max_index, int* min_index, unsigned* cas_counter, float* float_sum,
                                        int n) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= n) return;
    atomicAdd(counter, 1);
    atomicMax(max_index, g);
    atomicMin(min_index, g);
    unsigned seen = *cas_counter;
    for (;;) {
        const unsigned previous = atomicCAS(cas_counter, seen, seen + 1u);
        if (previous == seen) break;
        seen = previous;
    }
    atomicAdd(float_sum, 1.0f);
}
VQ_KERNEL_NO_SYNC(test_atomics)

extern "C" __global__ void test_write_past_end(float* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) out[i] = 1.0f;  // deliberate off-by-one: i == n is past the end
}
VQ_KERNEL_NO_SYNC(test_write_past_end)

extern "C" __global__ void test_barrier_in_no_sync(float* out) {
    out[threadIdx.x] = 1.0f;
    __syncthreads();
}
VQ_KERNEL_NO_SYNC(test_barrier_in_no_sync)

extern "C" __global__ void test_barrier_loop(float* out, int iterations) {
    float acc = 0.0f;
    for (int k = 0; k < iterations; ++k) {
        acc += (float)k;
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = acc;
}
VQ_KERNEL_SYNC(test_barrier_loop)
