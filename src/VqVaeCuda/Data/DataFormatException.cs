using VqVaeCuda.Tensors;

namespace VqVaeCuda.Data;

/// <summary>
/// A data set could not be read: a file or folder is missing, truncated, of the wrong format, or
/// inconsistent with its partner file. The message always names the file (or folder) and the problem,
/// because "invalid data" alone leaves the user guessing which of several files to look at.
/// </summary>
public sealed class DataFormatException : InvalidInputFileException
{
    /// <summary>An error about <paramref name="path"/>; the message is "path: problem".</summary>
    public DataFormatException(string path, string problem)
        : base(path, null, problem)
    {
    }

    /// <summary>An error about <paramref name="path"/> caused by <paramref name="inner"/>.</summary>
    public DataFormatException(string path, string problem, Exception inner)
        : base(path, null, problem, inner)
    {
    }
}
