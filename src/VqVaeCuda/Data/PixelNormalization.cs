namespace VqVaeCuda.Data;

/// <summary>The value range a <see cref="BatchLoader"/> maps pixels to (data sets store [0, 1]).</summary>
public enum PixelNormalization
{
    /// <summary>Pixels as stored, in [0, 1].</summary>
    ZeroToOne,
    /// <summary>2·x − 1, in [−1, 1]: zero-centred, as tanh outputs and many VQ-VAE set-ups expect.</summary>
    MinusOneToOne,
}

/// <summary>Conversions between stored [0, 1] pixels and a <see cref="PixelNormalization"/> range.</summary>
public static class PixelNormalizationExtensions
{
    /// <summary>Maps a stored value in [0, 1] into the range.</summary>
    public static float Apply(this PixelNormalization normalization, float unit)
        => normalization == PixelNormalization.MinusOneToOne ? 2f * unit - 1f : unit;

    /// <summary>Maps a value of the range back to [0, 1] (e.g. a reconstruction, before saving it as an image).</summary>
    public static float Invert(this PixelNormalization normalization, float value)
        => normalization == PixelNormalization.MinusOneToOne ? (value + 1f) * 0.5f : value;
}
