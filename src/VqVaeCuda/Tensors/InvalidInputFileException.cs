namespace VqVaeCuda.Tensors;

/// <summary>
/// A file given to the program is not what it must be: missing, truncated, of another format, with a header that
/// contradicts itself or the file's length, or values that must not be there (NaN weights). The one exception every reader
/// of user files throws (<c>Data.DataFormatException</c> for data sets, <c>Checkpoints.CheckpointFormatException</c>
/// for safetensors files and what they hold), so a caller catches one type and prints one line. The message is
/// "path: where: problem", naming the file, then the byte offset or field, then what was found and what was expected.
/// It lives in Tensors, the lowest layer that both Data and Checkpoints may use.
/// </summary>
public abstract class InvalidInputFileException : IOException
{
    /// <summary>An error about <paramref name="path"/> at <paramref name="where"/> (an offset or a field; null when the whole file is at fault).</summary>
    protected InvalidInputFileException(string path, string? where, string problem, Exception? inner = null)
        : base(string.Join(": ", new[] { path, where, problem }.Where(part => !string.IsNullOrEmpty(part))), inner)
    {
        Path = path;
        Where = where;
        Problem = problem;
    }

    /// <summary>The file or folder the error is about.</summary>
    public string Path { get; }

    /// <summary>The byte offset or field at fault ("byte 8", "tensor 'w'", "metadata 'config'"), or null.</summary>
    public string? Where { get; }

    /// <summary>What was found and what was expected.</summary>
    public string Problem { get; }
}
