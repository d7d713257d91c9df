namespace VqVaeCuda.Modules;

/// <summary>
/// The quantizer's view of z_e on the host: [N, D, h, w] read as M = N·h·w vectors of D components,
/// vector m = image·h·w + position — the same numbering the quantizer's kernels use.
/// </summary>
internal static class EncoderVectors
{
    /// <summary>Copies vector <paramref name="m"/> of <paramref name="z"/> (NCHW, D channels, hw positions per image) into <paramref name="into"/>.</summary>
    public static void Copy(float[] z, int m, int d, int hw, Span<float> into)
    {
        int image = m / hw, position = m % hw;
        for (int j = 0; j < d; j++) into[j] = z[(image * d + j) * hw + position];
    }
}
