namespace VqVaeCuda.Device.Cuda.Native;

// Enumerations used by the cuBLAS bindings, spelled as in cublas_api.h / library_types.h so they can
// be matched against NVIDIA's documentation by text search. Values checked against the CUDA 12.6
// headers; all exist unchanged since CUDA 11.0 (the compute types were introduced there).
#pragma warning disable CS1591 // Members mirror the C headers; the per-type summaries say what they are for.

/// <summary>cuBLAS status codes (<c>cublasStatus_t</c>). Public because it surfaces on <see cref="CublasException.Status"/>.</summary>
public enum cublasStatus_t
{
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    /// <summary>The operation needs a newer GPU (e.g. TF32/BF16 tensor cores before Ampere).</summary>
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16,
}

/// <summary>Whether an operand is used as stored, transposed or conjugate-transposed (<c>cublasOperation_t</c>). cuBLAS is column-major.</summary>
internal enum cublasOperation_t
{
    CUBLAS_OP_N = 0,
    CUBLAS_OP_T = 1,
    CUBLAS_OP_C = 2,
}

/// <summary>Element type of a matrix passed to the <c>...Ex</c> routines (<c>cudaDataType</c> from library_types.h).</summary>
internal enum cudaDataType
{
    CUDA_R_32F = 0,
    CUDA_R_64F = 1,
    CUDA_R_16F = 2,
    CUDA_R_8I = 3,
    CUDA_R_32I = 10,
    CUDA_R_16BF = 14,
}

/// <summary>Accumulation precision and permitted down-conversions for <see cref="Cublas.cublasGemmEx"/> (<c>cublasComputeType_t</c>).</summary>
internal enum cublasComputeType_t
{
    CUBLAS_COMPUTE_16F = 64,
    CUBLAS_COMPUTE_16F_PEDANTIC = 65,
    /// <summary>FP32 accumulate; inputs kept at full precision unless the handle's math mode allows TF32.</summary>
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_64F = 70,
    CUBLAS_COMPUTE_64F_PEDANTIC = 71,
    CUBLAS_COMPUTE_32I = 72,
    CUBLAS_COMPUTE_32I_PEDANTIC = 73,
    /// <summary>FP32 accumulate, inputs may be rounded to FP16 (tensor cores).</summary>
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    /// <summary>FP32 accumulate, inputs may be rounded to BF16 (tensor cores).</summary>
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    /// <summary>FP32 accumulate, inputs may be rounded to TF32 (Ampere+ tensor cores).</summary>
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
}

/// <summary>Algorithm selector for <see cref="Cublas.cublasGemmEx"/> (<c>cublasGemmAlgo_t</c>); only the heuristic default is used.</summary>
internal enum cublasGemmAlgo_t
{
    /// <summary>Let cuBLAS pick (tensor cores included when the compute type allows; the _TENSOR_OP variants are deprecated aliases).</summary>
    CUBLAS_GEMM_DEFAULT = -1,
}

/// <summary>Handle-wide math mode (<c>cublasMath_t</c>), set with <see cref="Cublas.cublasSetMathMode"/>.</summary>
internal enum cublasMath_t
{
    CUBLAS_DEFAULT_MATH = 0,
    CUBLAS_PEDANTIC_MATH = 2,
    /// <summary>Allows plain FP32 routines such as <see cref="Cublas.cublasSgemm_v2"/> to use TF32 tensor cores.</summary>
    CUBLAS_TF32_TENSOR_OP_MATH = 3,
}
#pragma warning restore CS1591
