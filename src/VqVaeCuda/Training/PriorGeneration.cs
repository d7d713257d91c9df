using VqVaeCuda.Checkpoints;
using VqVaeCuda.Imaging;
using VqVaeCuda.Models;
using VqVaeCuda.Sampling;

namespace VqVaeCuda.Training;

/// <summary>Sampled code maps and the images the VQ-VAE decodes them into, on the host.</summary>
/// <param name="Codes">int32 [N, h, w] in raster order.</param>
/// <param name="Labels">The class of each sample (class-conditional priors), or null.</param>
/// <param name="Images">[N, C, H, W], clamped to [0, 1].</param>
/// <param name="Config">The VQ-VAE's config (gives the shapes).</param>
public sealed record GeneratedSamples(int[] Codes, int[]? Labels, float[] Images, VqVaeConfig Config)
{
    /// <summary>Number of samples.</summary>
    public int Count => Codes.Length / (Config.LatentSize * Config.LatentSize);

    /// <summary>
    /// Writes the images as a PNG grid, atomically: with several classes, one row per class (in the order the samples
    /// come); otherwise a near-square grid.
    /// </summary>
    public void SaveGrid(string path)
    {
        int per = Config.InputChannels * Config.ImageSize * Config.ImageSize, n = Count;
        var rows = new List<float[]>();
        if (Labels is not null && Labels.Distinct().Count() > 1)
        {
            for (int start = 0; start < n;)
            {
                int end = start;
                while (end < n && Labels[end] == Labels[start]) end++;
                rows.Add(Images.AsSpan(start * per, (end - start) * per).ToArray());
                start = end;
            }
        }
        else
        {
            int columns = Math.Max(1, (int)Math.Ceiling(Math.Sqrt(n)));
            for (int start = 0; start < n; start += columns)
                rows.Add(Images.AsSpan(start * per, Math.Min(columns, n - start) * per).ToArray());
        }
        var full = Path.GetFullPath(path);
        var temporary = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            ImageGrid.SavePng(temporary, rows, Config.InputChannels, Config.ImageSize, Config.ImageSize);
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temporary); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Writes the code maps (<c>codes</c> int32 [N, h, w], and <c>labels</c> int32 [N] when conditional) as safetensors, atomically.</summary>
    public void SaveCodes(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        long l = Config.LatentSize;
        var tensors = new List<SafetensorsTensor> { SafetensorsTensor.FromInts("codes", [Count, l, l], Codes) };
        if (Labels is not null) tensors.Add(SafetensorsTensor.FromInts("labels", [Count], Labels));
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>()) { ["config"] = Config.ToJson() };
        Safetensors.Write(path, tensors, meta);
    }
}

/// <summary>
/// Generation in one call: sample code maps from a prior (<see cref="PriorSampler"/>) and decode them with the VQ-VAE
/// whose codes the prior models (<see cref="VqVaeInference.DecodeCodes"/>). Used by <c>vqvae sample</c> and by the
/// prior trainer's end-of-run grid.
/// </summary>
public static class PriorGeneration
{
    /// <summary>
    /// Samples <see cref="SamplingOptions.Count"/> code maps and decodes them. The code maps have the VQ-VAE's latent size:
    /// <see cref="SamplingOptions.Height"/> and <see cref="SamplingOptions.Width"/> are set from it. <paramref name="progress"/>
    /// hears the sampler's positions done.
    /// </summary>
    /// <exception cref="ArgumentException">The prior models another K than the VQ-VAE's codebook, or the options are invalid (see <see cref="PriorSampler.Sample"/>).</exception>
    public static GeneratedSamples Generate(VqVae vqvae, GatedPixelCnn prior, SamplingOptions options, IProgress<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(vqvae);
        ArgumentNullException.ThrowIfNull(prior);
        ArgumentNullException.ThrowIfNull(options);
        if (prior.Config.CodebookSize != vqvae.Config.CodebookSize)
            throw new ArgumentException($"the prior models K = {prior.Config.CodebookSize} codes, the VQ-VAE has K = {vqvae.Config.CodebookSize}");
        int l = vqvae.Config.LatentSize;
        var sized = options with { Height = l, Width = l };
        var codes = PriorSampler.Sample(prior, sized, progress);
        var images = VqVaeInference.DecodeCodes(vqvae, codes);
        return new GeneratedSamples(codes, sized.Labels?.ToArray(), images, vqvae.Config);
    }

    /// <summary>
    /// Labels for <paramref name="count"/> samples that visit every class in turn, in blocks: class 0 first, then 1, ...;
    /// the first count mod classes classes get one sample more. The grid shows one row per class.
    /// </summary>
    public static int[] LabelsForEveryClass(int count, int classes)
    {
        if (count < 1) throw new ArgumentException($"count = {count}: must be at least 1");
        if (classes < 1) throw new ArgumentException($"classes = {classes}: must be at least 1");
        var labels = new int[count];
        int i = 0;
        for (int c = 0; c < classes; c++)
            for (int j = 0; j < count / classes + (c < count % classes ? 1 : 0); j++) labels[i++] = c;
        return labels;
    }
}
