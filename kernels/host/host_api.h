// host_api.h — the C ABI of libvqvae_host, called from C# (HostRuntime.cs) through LibraryImport.
// Every function that can fail returns 0 on success and writes a message into err[0..err_cap).
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

// Bumped whenever a signature below changes; C# refuses a library with another version.
int vqh_abi_version();

// The kernel registry: every kernel compiled into the library, in registration order.
int vqh_kernel_count();
int vqh_kernel_describe(int index, const char** name, int* sync_kind, int* argc, const unsigned short** arg_sizes,
                        const char** arg_kinds);

// Thread order inside a block: 0 ascending, 1 descending, 2 shuffled (seeded, per block).
int vqh_launch(int kernel_index, const uint32_t* grid3, const uint32_t* block3, uint32_t dynamic_shared_bytes,
               void** args, int thread_order, uint64_t seed, char* err, int err_cap);

// Fiber resumes since load, all threads together: a block that never synchronises adds at most 1.
unsigned long long vqh_fiber_resume_count();

// Worker OS threads that run blocks (including the calling thread). 0 = one per core.
void vqh_set_worker_count(int count);
int vqh_worker_count();

// Device memory of the CPU target. Checked allocations carry canary bytes before and after and
// start out as NaN (all bytes 0xFF); vqh_check_allocations reports the first damaged canary.
void* vqh_alloc(size_t bytes, int checked, char* err, int err_cap);
int vqh_free(void* ptr, char* err, int err_cap);
int vqh_check_allocations(char* err, int err_cap);
long long vqh_live_allocation_count();

// GEMM (gemm.cpp): CBLAS sgemm, column-major, split over the worker threads. vqh_set_sgemm registers
// cblas_sgemm's address (OpenBLAS set to one thread per call); transA/transB: 0 as stored, 1 transposed.
void vqh_set_sgemm(void* cblas_sgemm);
int vqh_sgemm_strided_batched(int transA, int transB, int m, int n, int k, float alpha, const float* a, int lda, long long strideA,
                              const float* b, int ldb, long long strideB, float beta, float* c, int ldc, long long strideC, int batch,
                              char* err, int err_cap);
}
