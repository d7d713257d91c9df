// gemm.cpp — the cpu device's GEMM: CBLAS sgemm (OpenBLAS) run single-threaded on each OS thread of
// the pool that runs kernel blocks, the product split between them.
//
// Why not OpenBLAS's own threads: they spin (sched_yield) for a while after every call, so while our
// pool ran the kernels between two GEMMs a third busy thread competed for the 2 cores — perf showed
// ~20 % of a training step's CPU time in the scheduler on that thread. With one pool, every core runs
// either GEMM or kernels, never both. C# hands over cblas_sgemm's address (vqh_set_sgemm) and sets
// OpenBLAS to one thread per call.
//
// The split: a strided batch with at least one product per worker hands out whole products; otherwise
// each product is cut into column panels of C (or row panels when C has more rows than columns), in
// multiples of 16 so the BLAS kernels' unrolled edges stay whole. Small products (under ~4 MFLOP)
// run on the calling thread: waking the pool costs more than they do.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>

#include "host_api.h"
#include "parallel.h"

namespace {

using Sgemm = void (*)(int order, int transA, int transB, int m, int n, int k, float alpha, const float* a, int lda,
                       const float* b, int ldb, float beta, float* c, int ldc);
std::atomic<Sgemm> g_sgemm{nullptr};

constexpr int kColMajor = 102, kNoTrans = 111, kTrans = 112;
constexpr double kSerialFlops = 4e6;
constexpr int kPanelMultiple = 16;

void write_error(char* err, int cap, const std::string& message) {
    if (err == nullptr || cap <= 0) return;
    const size_t n = std::min(message.size(), static_cast<size_t>(cap - 1));
    std::memcpy(err, message.data(), n);
    err[n] = '\0';
}

struct Product {
    int transA, transB, m, n, k;
    float alpha;
    const float* a;
    int lda;
    const float* b;
    int ldb;
    float beta;
    float* c;
    int ldc;

    void run(Sgemm sgemm) const {
        sgemm(kColMajor, transA ? kTrans : kNoTrans, transB ? kTrans : kNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }

    // Columns [j0, j1) of C: op(B)'s columns j0.. (B's columns, or B's rows when transposed).
    Product columns(int j0, int j1) const {
        Product p = *this;
        p.n = j1 - j0;
        p.b = b + (transB ? static_cast<long long>(j0) : static_cast<long long>(j0) * ldb);
        p.c = c + static_cast<long long>(j0) * ldc;
        return p;
    }

    // Rows [i0, i1) of C: op(A)'s rows i0.. (A's rows, or A's columns when transposed).
    Product rows(int i0, int i1) const {
        Product p = *this;
        p.m = i1 - i0;
        p.a = a + (transA ? static_cast<long long>(i0) * lda : static_cast<long long>(i0));
        p.c = c + i0;
        return p;
    }
};

}  // namespace

extern "C" {

void vqh_set_sgemm(void* sgemm) { g_sgemm.store(reinterpret_cast<Sgemm>(sgemm)); }

int vqh_sgemm_strided_batched(int transA, int transB, int m, int n, int k, float alpha, const float* a, int lda, long long strideA,
                              const float* b, int ldb, long long strideB, float beta, float* c, int ldc, long long strideC, int batch,
                              char* err, int err_cap) {
    const Sgemm sgemm = g_sgemm.load();
    if (sgemm == nullptr) {
        write_error(err, err_cap, "no CBLAS sgemm was registered (vqh_set_sgemm)");
        return 1;
    }
    if (m <= 0 || n <= 0 || batch <= 0) return 0;
    auto product = [&](int i) {
        return Product{transA, transB, m, n, k, alpha, a + i * strideA, lda, b + i * strideB, ldb, beta, c + i * strideC, ldc};
    };
    const int workers = vqh::worker_count();
    const double flops = 2.0 * m * n * static_cast<double>(k) * batch;
    if (workers <= 1 || flops < kSerialFlops) {
        for (int i = 0; i < batch; ++i) product(i).run(sgemm);
        return 0;
    }
    std::string error;
    bool ok;
    if (batch >= workers) {
        ok = vqh::parallel_for(static_cast<uint64_t>(batch), [&](uint64_t i) { product(static_cast<int>(i)).run(sgemm); }, error);
    } else {
        const bool byColumns = n >= m;
        const int extent = byColumns ? n : m;
        int panel = (extent + workers - 1) / workers;
        panel = (panel + kPanelMultiple - 1) / kPanelMultiple * kPanelMultiple;
        const int panels = (extent + panel - 1) / panel;
        ok = vqh::parallel_for(static_cast<uint64_t>(batch) * panels, [&](uint64_t t) {
            const Product p = product(static_cast<int>(t / panels));
            const int lo = static_cast<int>(t % panels) * panel, hi = std::min(extent, lo + panel);
            (byColumns ? p.columns(lo, hi) : p.rows(lo, hi)).run(sgemm);
        }, error);
    }
    if (!ok) {
        write_error(err, err_cap, "GEMM failed: " + error);
        return 1;
    }
    return 0;
}

}  // extern "C"
