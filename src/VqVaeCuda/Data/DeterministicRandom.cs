namespace VqVaeCuda.Data;

/// <summary>
/// SplitMix64: a tiny generator whose output is fixed by its published algorithm. The data layer uses it
/// instead of <see cref="System.Random"/> because shuffles, splits and the synthetic images must be
/// bit-identical on every machine and every .NET version, and System.Random's seeded sequence is an
/// implementation detail that the runtime does not promise to keep.
/// </summary>
internal struct DeterministicRandom
{
    private ulong _state;

    /// <summary>A generator whose whole sequence is fixed by <paramref name="seed"/>.</summary>
    public DeterministicRandom(ulong seed) => _state = seed;

    /// <summary>A generator for stream <paramref name="stream"/> of <paramref name="seed"/>: independent
    /// streams (per image, per epoch) without having to draw them one after another.</summary>
    public static DeterministicRandom ForStream(long seed, long stream)
        => new(Mix((ulong)seed ^ 0x6A09E667F3BCC909UL) ^ Mix((ulong)stream + 0xBB67AE8584CAA73BUL));

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [lo, hi).</summary>
    public double Uniform(double lo, double hi) => lo + (hi - lo) * NextDouble();

    /// <summary>Uniform integer in [0, n), without modulo bias (Lemire's multiply-and-reject).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "must be positive");
        ulong bound = (ulong)n;
        ulong threshold = (0UL - bound) % bound;
        while (true)
        {
            ulong r = NextUInt64();
            UInt128 m = (UInt128)r * bound;
            if ((ulong)m >= threshold) return (int)(m >> 64);
        }
    }

    /// <summary>A Fisher–Yates permutation of 0..n-1.</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
