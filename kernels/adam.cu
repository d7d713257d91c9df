// adam.cu — one fused Adam step over every parameter of a model.
//
// The ParameterStore keeps all values and gradients in two flat buffers and Adam lays its two moments
// out the same way, so one grid-stride launch updates the whole model (or one launch per parameter
// when an optimizer holds only some of them). PyTorch's torch.optim.Adam (amsgrad=False,
// maximize=False), element by element, with t the step number (starting at 1):
//   g  = grad + weight_decay · θ             (PyTorch's L2 form: the decay enters the moments;
//                                              not AdamW's decoupled decay)
//   m  = m + (1 − β1) · (g − m)              (exp_avg.lerp_(g, 1 − β1))
//   v  = β2 · v + (1 − β2) · g²
//   θ -= step_size · m / (sqrt(v) / sqrt(bc2) + eps),   step_size = lr / bc1,
//   bc1 = 1 − β1^t, bc2 = 1 − β2^t
// The bias corrections change every step but are the same for every element: the host computes
// them in double and passes step_size and sqrt(bc2) as arguments. The gradient buffer is read,
// not modified (the caller zeroes it before the next backward).
// Padding elements between parameters stay zero: g = 0, m = v = 0, update 0 / eps = 0.
//
//   kernel         launch                                                   FLOPs   bytes
//   adam_step_f32  grid-stride over n: block (256,1,1),                     ~16n    28n (read θ, g, m, v; write θ, m, v)
//                  grid (min(ceil(n/256), 65535),1,1); barrier-free
//   adam_step_scheduled_f32  the same update with step_size and sqrt(bc2) read from schedule[0..1] in device
//                  memory (written by the host before the step) instead of passed as arguments: the form a
//                  captured CUDA graph replays, whose arguments are frozen at capture. Same launch; bytes 28n + 8.
//                  The same float values reach the same arithmetic, so both kernels give the same bits.
#include "common.cuh"

// One element's update, shared by both kernels so that they cannot drift apart.
__device__ __forceinline__ void adam_update_element(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ m,
                                                    float* __restrict__ v, int i, float one_minus_beta1, float beta2,
                                                    float one_minus_beta2, float eps, float weight_decay, float step_size,
                                                    float bias_correction2_sqrt) {
    const float theta = param[i];
    const float g = grad[i] + weight_decay * theta;
    const float mi = m[i] + one_minus_beta1 * (g - m[i]);
    const float vi = beta2 * v[i] + one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const float denom = sqrtf(vi) / bias_correction2_sqrt + eps;
    param[i] = theta - step_size * (mi / denom);
}

extern "C" __global__ void adam_step_f32(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ m,
                                         float* __restrict__ v, float one_minus_beta1, float beta2, float one_minus_beta2,
                                         float eps, float weight_decay, float step_size, float bias_correction2_sqrt, int n) {
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n))
        adam_update_element(param, grad, m, v, i, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, step_size,
                            bias_correction2_sqrt);
}
VQ_KERNEL_NO_SYNC(adam_step_f32)

extern "C" __global__ void adam_step_scheduled_f32(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ m,
                                                   float* __restrict__ v, const float* __restrict__ schedule, float one_minus_beta1,
                                                   float beta2, float one_minus_beta2, float eps, float weight_decay, int n) {
    const float step_size = schedule[0], bias_correction2_sqrt = schedule[1];
    for (int i = vq_grid_start(n); i < n; i = vq_grid_next(i, n))
        adam_update_element(param, grad, m, v, i, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, step_size,
                            bias_correction2_sqrt);
}
VQ_KERNEL_NO_SYNC(adam_step_scheduled_f32)
