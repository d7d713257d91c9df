using System.Globalization;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Data;
using VqVaeCuda.Models;

namespace VqVaeCuda.Training;

/// <summary>
/// What a code-map cache must have been made from to be reused: the VQ-VAE checkpoint (by the SHA-256 of its file),
/// the data set (a description naming its spec, folder and seed), and the code space.
/// </summary>
/// <param name="VqVaeSha256">Lower-case hex SHA-256 of the VQ-VAE checkpoint file.</param>
/// <param name="Dataset">The data set the codes were extracted from, as the caller describes it (e.g. <c>shapes, seed 0</c>).</param>
/// <param name="CodebookSize">K of the VQ-VAE: every cached code must be below it.</param>
/// <param name="LatentHeight">Rows of a code map.</param>
/// <param name="LatentWidth">Columns of a code map.</param>
public sealed record CodeMapCacheKey(string VqVaeSha256, string Dataset, int CodebookSize, int LatentHeight, int LatentWidth);

/// <summary>The code maps of both splits and how they were obtained.</summary>
/// <param name="Train">Training code maps.</param>
/// <param name="Test">Test code maps.</param>
/// <param name="Rebuilt">True when they were extracted now (and the cache written), false when read from the cache.</param>
/// <param name="Reason">Why: "reused …", "no cache yet", "made by another VQ-VAE checkpoint", "holds code 70 ≥ K = 64", ...</param>
public sealed record CodeMapCacheResult(CodeMapSet Train, CodeMapSet Test, bool Rebuilt, string Reason);

/// <summary>
/// The code maps of a data set's training and test splits under a frozen VQ-VAE, extracted once and kept in a safetensors
/// file (format <c>vqvaecuda-codemaps/1</c>): <c>train.codes</c> and <c>test.codes</c> int32 [N, h, w], <c>train.labels</c>
/// and <c>test.labels</c> int32 [N] when the data has labels; metadata: format, <c>vqvae_sha256</c>, <c>dataset</c>,
/// <c>codebook_size</c>, <c>latent_height</c>, <c>latent_width</c>, <c>classes</c>, <c>train_name</c>, <c>test_name</c>.
/// A cache is reused only when it matches the <see cref="CodeMapCacheKey"/> and every code is inside the codebook;
/// anything else (another checkpoint, another data set, a code ≥ K, a damaged file) makes it stale, and it is rebuilt.
/// </summary>
public static class CodeMapCache
{
    /// <summary>The format tag written in the metadata.</summary>
    public const string Format = "vqvaecuda-codemaps/1";

    /// <summary>
    /// The cached code maps when <paramref name="path"/> holds a cache made for <paramref name="key"/> with every code
    /// inside the codebook; otherwise null, with <paramref name="reason"/> saying why it cannot be used.
    /// </summary>
    public static (CodeMapSet Train, CodeMapSet Test)? TryLoad(string path, CodeMapCacheKey key, out string reason)
    {
        if (!File.Exists(path))
        {
            reason = "no cache yet";
            return null;
        }
        IReadOnlyDictionary<string, SafetensorsTensor> tensors;
        IReadOnlyDictionary<string, string> metadata;
        try
        {
            (tensors, metadata) = Safetensors.Read(path);
        }
        catch (CheckpointFormatException e)
        {
            reason = $"unreadable ({e.Message})";
            return null;
        }
        string Meta(string name) => metadata.TryGetValue(name, out var v) ? v : "";
        if (Meta("format") != Format)
        {
            reason = $"not a code-map cache (format '{Meta("format")}', expected '{Format}')";
            return null;
        }
        if (Meta("vqvae_sha256") != key.VqVaeSha256)
        {
            reason = $"made by another VQ-VAE checkpoint (SHA-256 {Short(Meta("vqvae_sha256"))}, this one is {Short(key.VqVaeSha256)})";
            return null;
        }
        if (Meta("dataset") != key.Dataset)
        {
            reason = $"made from another data set ('{Meta("dataset")}', now '{key.Dataset}')";
            return null;
        }
        if (Meta("codebook_size") != Text(key.CodebookSize) || Meta("latent_height") != Text(key.LatentHeight) || Meta("latent_width") != Text(key.LatentWidth))
        {
            reason = $"made for K = {Meta("codebook_size")} and {Meta("latent_height")}x{Meta("latent_width")} code maps, " +
                     $"now K = {key.CodebookSize} and {key.LatentHeight}x{key.LatentWidth}";
            return null;
        }
        try
        {
            int classes = int.Parse(Meta("classes"), CultureInfo.InvariantCulture);
            var train = Split(tensors, "train", metadata.GetValueOrDefault("train_name", "train"), key, classes);
            var test = Split(tensors, "test", metadata.GetValueOrDefault("test_name", "test"), key, classes);
            foreach (var set in new[] { train, test })
            {
                int min = set.Codes.Length == 0 ? 0 : set.Codes.Min(), max = set.MaxCode();
                if (min < 0 || max >= key.CodebookSize)
                {
                    reason = $"holds code {(min < 0 ? min : max)} in {set.Name}, outside this VQ-VAE's codebook 0..{key.CodebookSize - 1} (K = {key.CodebookSize})";
                    return null;
                }
            }
            reason = "reused: made by this VQ-VAE checkpoint from this data set";
            return (train, test);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException or OverflowException)
        {
            reason = $"malformed ({e.Message})";
            return null;
        }
    }

    /// <summary>
    /// Extracts the code maps of both splits with <paramref name="vqvae"/> (<see cref="VqVaeInference.EncodeCodes"/>), keeping the labels.
    /// <paramref name="progress"/> hears the images encoded so far, over both splits.
    /// </summary>
    public static (CodeMapSet Train, CodeMapSet Test) Extract(VqVae vqvae, ImageDataset train, ImageDataset test, IProgress<int>? progress = null)
    {
        int l = vqvae.Config.LatentSize;
        // Both splits share one class count: the names of the classes when the source has them, else the largest label + 1.
        int classes = train.Labels is null || test.Labels is null ? 0
            : train.ClassNames?.Length ?? Math.Max(train.Labels.DefaultIfEmpty(-1).Max(), test.Labels.DefaultIfEmpty(-1).Max()) + 1;
        CodeMapSet One(ImageDataset set, int offset)
        {
            var report = progress is null ? null : new InlineProgress<int>(done => progress.Report(offset + done));
            var codes = VqVaeInference.EncodeCodes(vqvae, set, progress: report);
            return new CodeMapSet(set.Name, codes, classes > 0 ? set.Labels : null, set.Count, l, l, classes);
        }
        return (One(train, 0), One(test, train.Count));
    }

    /// <summary>Writes the cache atomically.</summary>
    public static void Save(string path, CodeMapCacheKey key, CodeMapSet train, CodeMapSet test)
    {
        var tensors = new List<SafetensorsTensor>();
        foreach (var (prefix, set) in new[] { ("train", train), ("test", test) })
        {
            tensors.Add(SafetensorsTensor.FromInts($"{prefix}.codes", [set.Count, set.Height, set.Width], set.Codes));
            if (set.Labels is not null) tensors.Add(SafetensorsTensor.FromInts($"{prefix}.labels", [set.Count], set.Labels));
        }
        Safetensors.Write(path, tensors, new Dictionary<string, string>
        {
            ["format"] = Format,
            ["vqvae_sha256"] = key.VqVaeSha256,
            ["dataset"] = key.Dataset,
            ["codebook_size"] = Text(key.CodebookSize),
            ["latent_height"] = Text(key.LatentHeight),
            ["latent_width"] = Text(key.LatentWidth),
            ["classes"] = Text(train.Classes),
            ["train_name"] = train.Name,
            ["test_name"] = test.Name,
        });
    }

    /// <summary>
    /// The cached code maps when the cache at <paramref name="path"/> fits <paramref name="key"/>; otherwise opens the data
    /// (<paramref name="openData"/>, called only then), extracts the code maps with <paramref name="vqvae"/> and writes the cache.
    /// </summary>
    public static CodeMapCacheResult LoadOrBuild(string path, CodeMapCacheKey key, VqVae vqvae, Func<(ImageDataset Train, ImageDataset Test)> openData,
                                                 IProgress<int>? progress = null)
    {
        var cached = TryLoad(path, key, out var reason);
        if (cached is { } sets) return new CodeMapCacheResult(sets.Train, sets.Test, Rebuilt: false, reason);
        var (trainImages, testImages) = openData();
        var (train, test) = Extract(vqvae, trainImages, testImages, progress);
        Save(path, key, train, test);
        return new CodeMapCacheResult(train, test, Rebuilt: true, reason);
    }

    private static CodeMapSet Split(IReadOnlyDictionary<string, SafetensorsTensor> tensors, string prefix, string name, CodeMapCacheKey key, int classes)
    {
        if (!tensors.TryGetValue($"{prefix}.codes", out var codes)) throw new FormatException($"no tensor '{prefix}.codes'");
        if (codes.DType != "I32" || codes.Shape.Length != 3 || codes.Shape[1] != key.LatentHeight || codes.Shape[2] != key.LatentWidth)
            throw new FormatException($"'{prefix}.codes' is {codes.DType} [{string.Join(",", codes.Shape)}], expected I32 [N,{key.LatentHeight},{key.LatentWidth}]");
        int[]? labels = null;
        if (classes > 0)
        {
            if (!tensors.TryGetValue($"{prefix}.labels", out var l) || l.DType != "I32") throw new FormatException($"no int32 tensor '{prefix}.labels'");
            labels = l.ToInts();
        }
        return new CodeMapSet(name, codes.ToInts(), labels, checked((int)codes.Shape[0]), key.LatentHeight, key.LatentWidth, classes);
    }

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Short(string hash) => hash.Length > 12 ? hash[..12] + "…" : hash.Length == 0 ? "(none)" : hash;
}
