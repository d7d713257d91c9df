using System.CommandLine;
using VqVaeCuda.Data;
using VqVaeCuda.Models;

namespace VqVaeCuda.Cli.Commands;

/// <summary>Options naming a data set, shared by train, reconstruct and encode.</summary>
internal sealed class DataOptions
{
    public Option<string> Dataset { get; } = new("--dataset")
    {
        Description = $"Training data: {string.Join(" | ", DatasetCatalog.Specs)}. shapes (white shapes on black) and shapes-varied (random tones on graded backgrounds: harder) are built in and need nothing installed; " +
                      "fashion-mnist reads /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist) unless --data is given.",
        DefaultValueFactory = _ => "shapes",
    };

    public Option<string?> Data { get; } = new("--data") { Description = "Folder holding the data set's files (IDX, CIFAR-10 binary batches)." };

    public void AddTo(Command command)
    {
        command.Options.Add(Dataset);
        command.Options.Add(Data);
    }

    public (ImageDataset Train, ImageDataset Test) Open(ParseResult result, VqVaeConfig config, int seed) =>
        DatasetCatalog.Open(result.GetValue(Dataset)!, result.GetValue(Data), config.ImageSize, config.InputChannels, seed);
}
