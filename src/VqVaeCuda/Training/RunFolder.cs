using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using VqVaeCuda.Checkpoints;

namespace VqVaeCuda.Training;

/// <summary>A checkpoint could not be written; the message names the last good checkpoint, which is intact.</summary>
public sealed class CheckpointWriteException(string message, Exception inner) : IOException(message, inner);

/// <summary>A new run was pointed at a folder that already holds a run (or is being claimed by another one).</summary>
public sealed class RunFolderTakenException(string message) : IOException(message);

/// <summary>
/// The rules that keep a run folder's work safe: a new run claims a folder of its own (creating the directory is the
/// claim, so two runs started at once never share one), checkpoints are made durable (the folder is synced after the
/// atomic rename), the newest few are kept, and a resume finds the newest checkpoint that reads back whole.
/// </summary>
public static partial class RunFolder
{
    /// <summary>
    /// Claims <paramref name="path"/> for a new run: creates it, failing when it exists already (as a folder or a
    /// file). Creating the directory is atomic, so of two runs claiming the same name at once exactly one wins.
    /// </summary>
    /// <exception cref="RunFolderTakenException">The folder exists: a new run never writes into an existing one.</exception>
    public static void Claim(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        if (!TryCreateDirectory(full))
            throw new RunFolderTakenException(
                $"{path} exists already: a new run never writes into an existing run folder (pass --resume {path} to continue the run in it, or another --out)");
    }

    /// <summary>
    /// Claims <paramref name="basePath"/>, else <c>basePath-2</c>, <c>basePath-3</c>, ...: the first free one. Two runs
    /// started in the same second with the same default name get different folders.
    /// </summary>
    /// <returns>The folder claimed.</returns>
    public static string ClaimUnique(string basePath)
    {
        var full = Path.GetFullPath(basePath);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        for (int n = 1; ; n++)
        {
            var candidate = n == 1 ? basePath : $"{basePath}-{n}";
            if (TryCreateDirectory(Path.GetFullPath(candidate))) return candidate;
            if (n > 10_000) throw new RunFolderTakenException($"{basePath}: no free run folder name among {n} tried");
        }
    }

    /// <summary>
    /// Refuses a folder that already holds one of <paramref name="runFiles"/> (a run's metrics, config or checkpoints):
    /// what a new trainer checks so that a host's mistake cannot overwrite a run either.
    /// </summary>
    /// <exception cref="RunFolderTakenException">One of them is there.</exception>
    public static void RequireNoRun(string directory, params string[] runFiles)
    {
        foreach (var name in runFiles)
        {
            var path = Path.Combine(directory, name);
            if (File.Exists(path) || Directory.Exists(path))
                throw new RunFolderTakenException(
                    $"{directory} already holds a run ({name}): a new run never writes into an existing run folder; resume it, or train into a new folder");
        }
    }

    /// <summary>
    /// Makes a rename or a new file in <paramref name="directory"/> durable (fsync of the folder itself). After a crash
    /// of the machine, an atomically written file is then either the new whole file or the old one under its name.
    /// A no-op where folders cannot be synced (Windows).
    /// </summary>
    /// <exception cref="IOException">The sync failed (the message has the OS error).</exception>
    public static void SyncDirectory(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Open(Path.GetFullPath(directory), ReadOnly);  // a folder opens read-only without O_DIRECTORY (whose value differs by CPU)
        if (fd < 0) throw new IOException($"{directory}: cannot open the folder to sync it ({Marshal.GetLastPInvokeErrorMessage()})");
        try
        {
            // EINVAL: the file system does not sync folders (some network and FUSE ones); its renames are as durable as it makes them.
            if (Fsync(fd) != 0 && Marshal.GetLastPInvokeError() != EInval)
                throw new IOException($"{directory}: cannot sync the folder ({Marshal.GetLastPInvokeErrorMessage()})");
        }
        finally
        {
            Close(fd);
        }
    }

    /// <summary>
    /// Deletes the temporary files an atomic write leaves behind when its process is killed mid-write
    /// (<c>.NAME.PID.GUID.tmp</c>, see <see cref="Safetensors.Write"/>) in <paramref name="directory"/>.
    /// </summary>
    /// <returns>How many were removed.</returns>
    public static int RemoveTemporaryFiles(string directory)
    {
        if (!Directory.Exists(directory)) return 0;
        int removed = 0;
        foreach (var file in Directory.EnumerateFiles(directory, ".*.tmp"))
        {
            try
            {
                File.Delete(file);
                removed++;
            }
            catch (IOException)
            {
            }
        }
        return removed;
    }

    /// <summary>
    /// Removes what killed writes left in a run folder being resumed: the temporary files in it and in its checkpoints/.
    /// </summary>
    public static void RemoveTornWrites(string runDirectory)
    {
        RemoveTemporaryFiles(runDirectory);
        RemoveTemporaryFiles(Path.Combine(runDirectory, "checkpoints"));
    }

    /// <summary>
    /// Writes a run's checkpoint of <paramref name="step"/> the way both trainers do: <c>checkpoints/{prefix}NNNNNN.safetensors</c>,
    /// then <paramref name="latestName"/>, each by <paramref name="save"/> (an atomic write) with its folder synced; then the
    /// step checkpoints beyond the newest <paramref name="keep"/> go. <paramref name="first"/> runs before them (the trainers sync
    /// their metrics log there, so the log is never behind a checkpoint); its write failures count as the checkpoint's.
    /// <paramref name="lastGood"/> becomes the step checkpoint as soon as it is durable, so a failure writing the latest
    /// one names it.
    /// </summary>
    /// <exception cref="CheckpointWriteException">
    /// A write failed (a full disk, a size limit, no permission): training must stop; the message names the last good
    /// checkpoint, which the failed write never touched (it removed its own temporary file).
    /// </exception>
    public static void WriteCheckpoint(string runDirectory, string prefix, string latestName, int step, int keep, Action? first, Action<string> save,
                                       ref (string Path, int Step)? lastGood)
    {
        var path = Path.Combine(runDirectory, "checkpoints", $"{prefix}{step:D6}.safetensors");
        try
        {
            first?.Invoke();
            save(path);
            SyncDirectory(Path.GetDirectoryName(path)!);
            lastGood = (path, step);
            save(Path.Combine(runDirectory, latestName));
            SyncDirectory(runDirectory);
            PruneStepCheckpoints(runDirectory, prefix, keep);
        }
        catch (Exception e) when (IsWriteFailure(e))
        {
            throw new CheckpointWriteException(
                $"could not write the checkpoint of step {step} ({path}: {WriteFailureReason(e)}); training stopped. " +
                (lastGood is { } good
                    ? $"The last good checkpoint, {good.Path} (step {good.Step}), is intact: resume from it once the problem is fixed"
                    : "No checkpoint of this run had been written yet"), e);
        }
    }

    /// <summary>Writes a checkpoint by <paramref name="save"/> (an atomic write) and syncs its folder, so the rename is durable.</summary>
    public static void SaveDurably(string path, Action<string> save)
    {
        save(path);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>
    /// The step checkpoints <c>checkpoints/{prefix}NNNNNN.safetensors</c> of a run folder, newest first, with their step
    /// numbers (read from the names).
    /// </summary>
    public static IReadOnlyList<(int Step, string Path)> StepCheckpoints(string runDirectory, string prefix)
    {
        var folder = Path.Combine(runDirectory, "checkpoints");
        if (!Directory.Exists(folder)) return [];
        var pattern = new Regex("^" + Regex.Escape(prefix) + @"(\d+)\.safetensors$");
        return Directory.EnumerateFiles(folder, prefix + "*.safetensors")
                        .Select(p => (Match: pattern.Match(Path.GetFileName(p)), Path: p))
                        .Where(m => m.Match.Success && int.TryParse(m.Match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                        .Select(m => (int.Parse(m.Match.Groups[1].Value, CultureInfo.InvariantCulture), m.Path))
                        .OrderByDescending(c => c.Item1)
                        .ToList();
    }

    /// <summary>
    /// Deletes all but the newest <paramref name="keep"/> step checkpoints of a run (0 keeps them all).
    /// </summary>
    /// <returns>The files deleted.</returns>
    public static IReadOnlyList<string> PruneStepCheckpoints(string runDirectory, string prefix, int keep)
    {
        if (keep <= 0) return [];
        var deleted = new List<string>();
        foreach (var (_, path) in StepCheckpoints(runDirectory, prefix).Skip(keep))
        {
            File.Delete(path);
            deleted.Add(path);
        }
        return deleted;
    }

    /// <summary>
    /// The newest checkpoint of a run folder that reads back whole and passes <paramref name="check"/> (which reads
    /// its header and throws <see cref="CheckpointFormatException"/> for a bad one): the step checkpoints newest first,
    /// then <paramref name="latestName"/>, by the step each records (the latest file is preferred at a tie, the
    /// step file when latest is older). A torn or unreadable file is skipped and reported to
    /// <paramref name="skipped"/> with the reason.
    /// </summary>
    /// <typeparam name="THeader">What <paramref name="check"/> returns.</typeparam>
    /// <param name="runDirectory">The run folder.</param>
    /// <param name="prefix">The step checkpoints' name prefix (<c>step-</c>, <c>prior-step-</c>).</param>
    /// <param name="latestName">The latest checkpoint's name (<c>latest.safetensors</c>, <c>prior-latest.safetensors</c>).</param>
    /// <param name="check">Reads a checkpoint's header and its step.</param>
    /// <param name="skipped">Told of each checkpoint passed over, with why.</param>
    /// <exception cref="FileNotFoundException">No checkpoint of the run reads back.</exception>
    public static (string Path, THeader Header) NewestCheckpoint<THeader>(string runDirectory, string prefix, string latestName,
                                                                          Func<string, (THeader Header, int Step)> check, Action<string>? skipped = null)
    {
        var candidates = new List<(string Path, THeader Header, int Step)>();
        var paths = StepCheckpoints(runDirectory, prefix).Select(c => c.Path).ToList();
        var latest = Path.Combine(runDirectory, latestName);
        if (File.Exists(latest)) paths.Insert(0, latest);
        foreach (var path in paths)
        {
            try
            {
                var (header, step) = check(path);
                candidates.Add((path, header, step));
            }
            catch (CheckpointFormatException e)
            {
                skipped?.Invoke($"skipping {path}: {e.Message}");
            }
        }
        if (candidates.Count == 0)
            throw new FileNotFoundException($"{runDirectory}: no checkpoint that reads back whole ({latestName} or checkpoints/{prefix}*.safetensors)");
        // Stable: the latest file (first) wins a tie with the step file of the same step.
        var best = candidates.OrderByDescending(c => c.Step).First();
        return (best.Path, best.Header);
    }

    /// <summary>
    /// Whether <paramref name="e"/> is a failed file write: an I/O error (a full disk: ENOSPC), no permission, or a file
    /// grown past the process's file-size limit, which .NET reports as <see cref="ArgumentOutOfRangeException"/> (EFBIG).
    /// </summary>
    public static bool IsWriteFailure(Exception e) => e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException { ParamName: "value" };

    /// <summary>The reason of a failed write (<see cref="IsWriteFailure"/>) in words.</summary>
    public static string WriteFailureReason(Exception e) => e is ArgumentOutOfRangeException
        ? "the file would grow past the file-size limit (EFBIG)"
        : e.Message;

    private static bool TryCreateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            // No atomic create-or-fail there: the check and the create are separate (the claim is best effort).
            if (Directory.Exists(path) || File.Exists(path)) return false;
            Directory.CreateDirectory(path);
            return true;
        }
        if (MakeDirectory(path, 0x1FF /* 0777, less the umask */) == 0) return true;
        int error = Marshal.GetLastPInvokeError();
        if (error == EExist) return false;
        throw new IOException($"{path}: cannot create the run folder ({Marshal.GetLastPInvokeErrorMessage()})");
    }

    // Linux values (the only POSIX system the project runs on).
    private const int ReadOnly = 0, EExist = 17, EInval = 22;

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MakeDirectory(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
