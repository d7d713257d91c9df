// transpose.cu — out = in^T for a row-major rows x cols float32 matrix (out is cols x rows), or for a
// batch of them: grid.z = batch, matrix b at in + b·rows·cols and out + b·rows·cols. The quantizer's
// unfused path uses the batched tiled form to turn NCHW z ([N] matrices [D, H·W]) into rows [N·H·W, D].
//
//   transpose_f32_naive  each thread moves one element: reads are coalesced along a row of `in`,
//                        writes stride by `rows` floats — on a GPU every write is its own
//                        memory transaction. Launch: block (32,8,1), grid (ceil(cols/32), ceil(rows/8), batch).
//   transpose_f32_tiled  a 32x32 tile is staged in shared memory so that both the read of `in` and
//                        the write of `out` are coalesced rows. The tile is 32x33: the extra
//                        column puts the elements of a tile column in 32 different banks, so the
//                        column-wise read of the tile has no bank conflicts.
//                        Launch: block (32,8,1) (each thread moves 4 elements), grid
//                        (ceil(cols/32), ceil(rows/32), batch); 4224 bytes of static shared memory.
// FLOPs: 0. Bytes: 8 * rows * cols * batch (read once, write once) for both.
#include "common.cuh"

#define VQ_TILE 32
#define VQ_TILE_ROWS 8

extern "C" __global__ void transpose_f32_naive(const float* __restrict__ in, float* __restrict__ out, int rows, int cols) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    const int r = blockIdx.y * blockDim.y + threadIdx.y;
    in += blockIdx.z * rows * cols;
    out += blockIdx.z * rows * cols;
    if (r < rows && c < cols) out[c * rows + r] = in[r * cols + c];
}
VQ_KERNEL_NO_SYNC(transpose_f32_naive)

extern "C" __global__ void transpose_f32_tiled(const float* __restrict__ in, float* __restrict__ out, int rows, int cols) {
    __shared__ float tile[VQ_TILE][VQ_TILE + 1];
    in += blockIdx.z * rows * cols;
    out += blockIdx.z * rows * cols;
    int c = blockIdx.x * VQ_TILE + threadIdx.x;
    int r = blockIdx.y * VQ_TILE + threadIdx.y;
    for (int j = 0; j < VQ_TILE; j += VQ_TILE_ROWS)
        if (c < cols && r + j < rows) tile[threadIdx.y + j][threadIdx.x] = in[(r + j) * cols + c];
    __syncthreads();
    // The block now writes the transposed tile: out rows are in columns, out columns are in rows.
    c = blockIdx.y * VQ_TILE + threadIdx.x;
    r = blockIdx.x * VQ_TILE + threadIdx.y;
    for (int j = 0; j < VQ_TILE; j += VQ_TILE_ROWS)
        if (c < rows && r + j < cols) out[(r + j) * rows + c] = tile[threadIdx.x][threadIdx.y + j];
}
VQ_KERNEL_SYNC(transpose_f32_tiled)
