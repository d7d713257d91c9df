namespace VqVaeCuda.Tests.Architecture;

/// <summary>
/// The folders of <c>src/VqVaeCuda</c> keep DESIGN.md's layers: each uses only the folders below it, and no
/// two folders use each other. Read from the sources, so a reference that breaks a layer fails here by name.
/// </summary>
[TestFixture, Category("Cpu")]
public class LayeringTests
{
    // DESIGN.md, "Layers (each may use only those below it)", read bottom-up, one folder per layer or part of one.
    private static readonly string[] UpToKernels = ["Kernels"];                    // kernels/*.cu: the sources and their signatures
    private static readonly string[] UpToDevice = [.. UpToKernels, "Device"];      // IDevice, CudaDevice, HostDevice
    private static readonly string[] UpToTensors = [.. UpToDevice, "Tensors"];     // tensors + memory
    private static readonly string[] UpToAutodiff = [.. UpToTensors, "Autodiff"];  // the tape ops record on
    private static readonly string[] UpToOps = [.. UpToAutodiff, "Ops"];           // functional ops, forward and backward
    private static readonly string[] UpToOptim = [.. UpToOps, "Optim"];            // Adam and clipping, beside ops: clipping is built from them
    private static readonly string[] UpToModules = [.. UpToOptim, "Modules"];      // the nn layer
    private static readonly string[] UpToModels = [.. UpToModules, "Models"];      // trees of modules
    private static readonly string[] UpToSampling = [.. UpToModels, "Sampling"];   // drawing code maps from the prior (naive and cached)
    // "Data loading, imaging and file formats sit beside Training and depend on nothing above Tensors."
    private static readonly string[] BesideTraining = ["Data", "Imaging", "Checkpoints"];

    /// <summary>Folder → the folders it may use. Every folder of the library has a row; a new folder needs one, placed as DESIGN.md places it.</summary>
    internal static readonly IReadOnlyDictionary<string, string[]> MayUse = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        ["Kernels"] = [],
        ["Device"] = UpToKernels,
        ["Tensors"] = UpToDevice,
        ["Autodiff"] = UpToTensors,
        ["Ops"] = UpToAutodiff,
        ["Optim"] = UpToOps,
        ["Modules"] = UpToOptim,
        ["Models"] = UpToModules,
        // "Training / Sampling / Tools": sampling is the lowest of the three, since the prior's trainer draws its sample grid
        // with it and the benchmarks time it.
        ["Sampling"] = UpToModels,
        ["Data"] = UpToTensors,
        ["Imaging"] = UpToTensors,
        ["Checkpoints"] = UpToTensors,
        // The trainers, benchmarks, and the reports about the machine and the kernels ("Reports about kernels sit above
        // Device, which never depends on them"). Side by side, except that the benchmarks time the trainer's own steps
        // (the graph-shaped step), so they sit just above Training, which never uses them.
        ["Training"] = [.. UpToSampling, .. BesideTraining],
        ["Benchmarks"] = [.. UpToSampling, .. BesideTraining, "Training"],
        ["Diagnostics"] = [.. UpToSampling, .. BesideTraining],
        // `vqvae verify` (DESIGN.md names it with the tools) sits on the benchmarks: it checks the op catalogue's cases and
        // the step benchmark's training step rather than keeping copies of them, and the trainer's graph-shaped step.
        ["Verification"] = [.. UpToSampling, .. BesideTraining, "Benchmarks", "Training"],
    };

    private static readonly Lazy<SourceDependencies> Library = new(SourceDependencies.OfLibrary);

    [Test]
    public void Every_folder_of_the_library_has_a_place_in_the_layer_table()
    {
        var folders = Library.Value.Folders;
        Assert.That(folders, Is.EquivalentTo(MayUse.Keys),
            "the folders of src/VqVaeCuda and the layer table (DESIGN.md's layers) must name the same folders");
        Assert.That(Library.Value.Files.Where(f => f.Folder.Length == 0).Select(f => f.File), Is.Empty,
            "every source file lives in the folder of its layer, none at the root of src/VqVaeCuda");
    }

    [Test]
    public void Every_file_declares_the_namespace_of_its_folder()
    {
        var wrong = Library.Value.Files
            .Select(f => (f.File, f.Namespace, Expected: "VqVaeCuda." + string.Join('.', f.File.Split('/')[..^1])))
            .Where(f => f.Namespace != f.Expected)
            .Select(f => $"{f.File}: namespace {f.Namespace ?? "(none)"}, expected {f.Expected}")
            .ToList();
        Assert.That(wrong, Is.Empty, "the layering is read from namespaces, so namespaces must be the folders:" + Environment.NewLine +
                                     string.Join(Environment.NewLine, wrong));
    }

    [Test]
    public void No_folder_uses_a_folder_above_it()
    {
        var violations = Library.Value.References
            .Where(r => !MayUse.TryGetValue(r.From, out var allowed) || !allowed.Contains(r.To))
            .Select(r => $"{r} — {r.From} uses {r.To}; {r.From} may use only " +
                         (MayUse.TryGetValue(r.From, out var allowed) ? (allowed.Length == 0 ? "nothing of the library" : string.Join(", ", allowed))
                                                                      : "(no row in the layer table)"))
            .ToList();
        Assert.That(violations, Is.Empty, string.Join(Environment.NewLine, violations));
    }

    [Test]
    public void No_folders_use_each_other()
    {
        var cycles = Cycles(Library.Value.Graph);
        Assert.That(cycles, Is.Empty, "folders that use each other cannot be layered:" + Environment.NewLine + string.Join(Environment.NewLine, cycles));
    }

    [Test]
    public void The_layer_table_itself_has_no_cycle()
    {
        var table = MayUse.ToDictionary(
            row => row.Key,
            row => (IReadOnlyDictionary<string, IReadOnlyList<FolderReference>>)row.Value.ToDictionary(
                to => to, to => (IReadOnlyList<FolderReference>)[new FolderReference("(table)", 0, row.Key, to, to)]));
        Assert.That(Cycles(table), Is.Empty);
    }

    [Test]
    public void The_reader_finds_usings_qualified_names_and_crefs_but_not_comments_or_strings()
    {
        var map = SourceDependencies.FromTexts(new Dictionary<string, string>
        {
            ["Device/IDevice.cs"] = "namespace VqVaeCuda.Device;\npublic interface IDevice { }\n",
            ["Device/Cuda/Native/Nvrtc.cs"] = "namespace VqVaeCuda.Device.Cuda.Native;\ninternal static class Nvrtc { }\n",
            ["Autodiff/Tape.cs"] = "namespace VqVaeCuda.Autodiff;\npublic sealed class Tape { }\n",
            ["Ops/Losses.cs"] = """
                using VqVaeCuda.Tensors;
                using Alias = VqVaeCuda.Models.VqVae;
                namespace VqVaeCuda.Ops;
                // VqVaeCuda.Training is only a comment, and so is Autodiff.Tape here.
                /// <summary>See <see cref="Device.IDevice"/>.</summary>
                public static class Losses
                {
                    private const string Text = "VqVaeCuda.Data and Device.IDevice in a string";
                    private static void F(Autodiff.Tape tape, global::VqVaeCuda.Checkpoints.Safetensors s) { }
                    private static int G(object Device) => Device.GetHashCode();
                    private static string H() => Device.Cuda.Native.Nvrtc.Name;
                }
                """,
        });

        var found = map.References.Where(r => r.File == "Ops/Losses.cs").Select(r => (r.Line, r.To)).ToList();

        Assert.That(found, Is.EquivalentTo(new[]
        {
            (1, "Tensors"), (2, "Models"), (5, "Device"), (9, "Autodiff"), (9, "Checkpoints"), (11, "Device"),
        }));
    }

    [Test]
    public void A_reference_to_a_higher_layer_is_reported_with_its_file_and_line()
    {
        var map = SourceDependencies.FromTexts(new Dictionary<string, string>
        {
            ["Device/Kernel.cs"] = "using VqVaeCuda.Diagnostics;\nnamespace VqVaeCuda.Device;\npublic sealed class Kernel { }\n",
            ["Diagnostics/KernelReport.cs"] = "using VqVaeCuda.Device;\nnamespace VqVaeCuda.Diagnostics;\npublic static class KernelReport { }\n",
        });

        var upward = map.References.Where(r => !MayUse[r.From].Contains(r.To)).Select(r => r.ToString()).ToList();

        Assert.That(upward, Is.EqualTo(new[] { "Device/Kernel.cs:1: VqVaeCuda.Diagnostics" }));
        Assert.That(Cycles(map.Graph), Has.Count.EqualTo(1).And.Some.Contains("Device → Diagnostics → Device"));
    }

    /// <summary>
    /// Each cycle of folders once, as "A → B → A", with one reference per step ("Device/Kernel.cs:1: VqVaeCuda.Kernels").
    /// A shortest cycle through each folder that lies on one is found by breadth-first search.
    /// </summary>
    private static List<string> Cycles(IReadOnlyDictionary<string, IReadOnlyDictionary<string, IReadOnlyList<FolderReference>>> graph)
    {
        var cycles = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var start in graph.Keys)
        {
            var previous = new Dictionary<string, string>(StringComparer.Ordinal);
            var queue = new Queue<string>([start]);
            string? closing = null;
            while (queue.Count > 0 && closing is null)
            {
                var node = queue.Dequeue();
                if (!graph.TryGetValue(node, out var edges)) continue;
                foreach (var next in edges.Keys.Order(StringComparer.Ordinal))
                {
                    if (next == start) { closing = node; break; }
                    if (previous.TryAdd(next, node)) queue.Enqueue(next);
                }
            }
            if (closing is null) continue;

            var path = new List<string> { start };
            for (var node = closing; node != start; node = previous[node]) path.Insert(1, node);
            // The same cycle is found from each of its folders: name it from its alphabetically first one.
            int first = path.IndexOf(path.Min(StringComparer.Ordinal)!);
            path = [.. path[first..], .. path[..first]];
            path.Add(path[0]);
            var steps = path.Zip(path.Skip(1), (from, to) => graph[from][to][0].ToString());
            cycles.Add($"{string.Join(" → ", path)} ({string.Join("; ", steps)})");
        }
        return cycles.ToList();
    }
}
