namespace VqVaeCuda.Tests.HostExecution;

/// <summary>
/// A plain C# model of one warp's shuffles and votes, written from the CUDA Programming Guide's
/// definitions, to check the CPU target against. `lanes` is how many lanes the warp has (fewer than
/// 32 in the last warp of a block whose size is not a multiple of 32); all of them take part.
/// Where CUDA leaves a result undefined (the source lane does not exist) the CPU target returns the
/// caller's own value, and so does this model.
/// </summary>
public static class WarpModel
{
    public static int ShflIdx(int[] v, int lane, int srcLane, int width)
    {
        int segment = lane / width * width;
        return ValueOr(v, segment + Mod(srcLane, width), lane);
    }

    public static int ShflUp(int[] v, int lane, int delta, int width)
    {
        int segment = lane / width * width;
        return lane - delta >= segment ? ValueOr(v, lane - delta, lane) : v[lane];
    }

    public static int ShflDown(int[] v, int lane, int delta, int width)
    {
        int segment = lane / width * width;
        return lane + delta < segment + width ? ValueOr(v, lane + delta, lane) : v[lane];
    }

    public static int ShflXor(int[] v, int lane, int laneMask, int width)
    {
        int segment = lane / width * width;
        int src = lane ^ laneMask;
        return src < segment + width ? ValueOr(v, src, lane) : v[lane];
    }

    public static uint Ballot(int[] v, int threshold)
    {
        uint bits = 0;
        for (int l = 0; l < v.Length; l++)
            if (v[l] > threshold) bits |= 1u << l;
        return bits;
    }

    public static bool Any(int[] v, int threshold) => v.Any(x => x > threshold);

    public static bool All(int[] v, int threshold) => v.All(x => x > threshold);

    private static int ValueOr(int[] v, int src, int lane) => src >= 0 && src < v.Length ? v[src] : v[lane];

    private static int Mod(int a, int m) => ((a % m) + m) % m;
}
